"""Hostile uploads for the fuzz test: hundreds of files a stranger could send the Predict page.

`hostile_files(seed)` returns the same list for the same seed: random bytes, damaged
PNG / JPEG / GIF / WebP / BMP files (cut short, bits flipped, bytes overwritten),
headers that declare absurd sizes (crafted by hand, with valid checksums so the
lie reaches the decoder), tiny and very thin images, every Pillow mode in every
format that can store it, other file types in disguise, animations, EXIF
orientations 1-8 and broken EXIF blocks, compressed-metadata bombs, and odd file
names. Each case says what should happen to it: "accept", "reject" or None (either
is fine, as long as nothing else happens).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALL_MODES = ("1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "I;16B", "F", "LA", "PA", "RGBX", "RGBa")
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
ODD_NAMES = (
    "cat.png",
    "photo.JPG",
    "holiday.gif.exe",
    "../../etc/passwd",
    "C:\\Users\\x\\Desktop\\dog.bmp",
    "",
    "x" * 300 + ".png",
    "名前の写真.webp",
    "new\nline.png",
    "tab\there.jpg",
    "<img src=x onerror=alert(1)>.png",
    "**bold** [link](javascript:alert(1)).png",
    "nul\x00byte.png",
    "%2e%2e%2fsecret.png",
    "no_extension",
    "\u202egnp.exe",  # right-to-left override: displays as "exe.png"
)


@dataclass(frozen=True)
class Case:
    kind: str  # what the case is, for failure messages
    name: str  # the file name the upload claims
    data: bytes
    expect: str | None = None  # "accept", "reject" or None (either)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def crafted_png(width: int, height: int, bit_depth: int = 8, colour_type: int = 2, rows: bytes | None = None, extra: bytes = b"") -> bytes:
    """A PNG written by hand, so its header may say anything; `rows` defaults to a few zero bytes."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(rows if rows is not None else b"\x00" * 64, 1)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + extra + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def solid_png(width: int, height: int, channels: int) -> bytes:
    """A valid PNG of zeros (colour type 0, 4 or 6 for 1, 2 or 4 channels), compressed row by row: fast to make."""
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    row = b"\x00" * (1 + width * channels)
    compressor = zlib.compressobj(1)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def crafted_jpeg(width: int, height: int) -> bytes:
    """A JPEG header (SOI, a quantisation table, SOF0) that declares any size, then garbage scan data."""
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes(range(1, 65))
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + dqt + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x55" * 64 + b"\xff\xd9"


def crafted_gif(screen: tuple[int, int], frame: tuple[int, int]) -> bytes:
    """A GIF whose logical screen and first frame may declare different (huge) sizes."""
    header = b"GIF89a" + struct.pack("<HHBBB", screen[0], screen[1], 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, frame[0], frame[1], 0)
    return header + descriptor + b"\x02\x02\x4c\x01\x00" + b"\x3b"


def crafted_bmp(width: int, height: int, bit_count: int = 24, compression: int = 0, pixels: bytes = b"\x00" * 64) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bit_count, compression, len(pixels), 2835, 2835, 0, 0)
    header = b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return header + info + pixels


def crafted_webp(width: int, height: int) -> bytes:
    """A VP8X (extended) WebP header declaring a canvas of width x height, with no real image after it."""
    payload = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def noise_image(rng: np.random.Generator, width: int = 24, height: int = 17, mode: str = "RGB") -> Image.Image:
    image = Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))
    if mode == "RGB":
        return image
    if mode == "RGBA":
        alpha = Image.fromarray(rng.integers(0, 256, size=(height, width), dtype=np.uint8))
        image.putalpha(alpha)
        return image
    return image.convert(mode)


def _mode_image(rng: np.random.Generator, mode: str) -> Image.Image:
    base = noise_image(rng, 20, 13)
    if mode in ("I", "I;16", "I;16B", "F"):
        values = rng.integers(0, 65536, size=(13, 20))
        if mode == "F":
            values = values / 65535.0
        dtype = {"I": np.int32, "I;16": np.uint16, "I;16B": np.uint16, "F": np.float32}[mode]
        image = Image.fromarray(values.astype(dtype))
        return image if mode != "I;16B" else image.convert("I;16B")
    if mode == "PA":
        return base.convert("P").convert("PA")
    if mode == "RGBa":
        return noise_image(rng, 20, 13, "RGBA").convert("RGBa")
    return base.convert(mode)


def _saved(image: Image.Image, fmt: str, **options) -> bytes | None:
    try:
        return encode(image, fmt, **options)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # this format cannot store this mode; nothing to test


def valid_files(rng: np.random.Generator) -> list[Case]:
    """Every Pillow mode in every allowed format that stores it, plus the formats' own variants."""
    cases = []
    for mode in ALL_MODES:
        image = _mode_image(rng, mode)
        for fmt in FORMATS:
            data = _saved(image, fmt)
            if data is not None:
                cases.append(Case(f"mode {mode} as {fmt}", f"mode-{mode}.{fmt.lower()}", data, "accept"))
    picture = noise_image(rng)
    rgba = noise_image(rng, mode="RGBA")
    variants = {
        "progressive JPEG": encode(picture, "JPEG", progressive=True, quality=80),
        "JPEG quality 1": encode(picture, "JPEG", quality=1),
        "JPEG 4:4:4": encode(picture, "JPEG", subsampling=0),
        "lossless WebP": encode(rgba, "WEBP", lossless=True),
        "lossy WebP with alpha": encode(rgba, "WEBP", quality=50),
        "2-bit palette PNG": encode(picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=4), "PNG", bits=2),
        "PNG with a transparent colour key (RGB)": encode(picture, "PNG", transparency=(0, 0, 0)),
        "PNG with a transparent colour key (L)": encode(picture.convert("L"), "PNG", transparency=0),
        "PNG palette with a transparent index": encode(picture.convert("P"), "PNG", transparency=3),
        "GIF with a transparent index": encode(picture.convert("P"), "GIF", transparency=0),
        "BMP 1-bit": encode(picture.convert("1"), "BMP"),
        "BMP RLE8": crafted_bmp(4, 2, 8, 1, b"\x00" * 1024 + b"\x04\x01\x00\x00\x04\x02\x00\x01"),
        "PNG 16-bit RGB": crafted_png(3, 2, 16, 2, (b"\x00" + rng.integers(0, 256, 18, dtype=np.uint8).tobytes()) * 2),
        "PNG 16-bit RGBA": crafted_png(3, 2, 16, 6, (b"\x00" + rng.integers(0, 256, 24, dtype=np.uint8).tobytes()) * 2),
        "PNG 16-bit gray + alpha": crafted_png(3, 2, 16, 4, (b"\x00" + rng.integers(0, 256, 12, dtype=np.uint8).tobytes()) * 2),
    }
    cases += [Case(kind, f"variant-{index}.img", data, "accept") for index, (kind, data) in enumerate(variants.items())]
    return cases


def sizes(rng: np.random.Generator) -> list[Case]:
    cases = []
    for width, height in ((1, 1), (10000, 3), (3, 10000), (16383, 1), (2, 1)):
        image = noise_image(rng, width, height)
        for fmt in FORMATS:
            data = _saved(image, fmt)
            if data is not None:
                cases.append(Case(f"{width}x{height} {fmt}", f"size.{fmt.lower()}", data, "accept"))
    # At the pixel limit (25 megapixels decoded at full size): accepted, and the memory they need
    # is what the fuzz test's memory bound is about. Just over it: refused before a pixel is decoded.
    cases.append(Case("5000x5000 RGBA PNG (25 MP)", "big-rgba.png", solid_png(5000, 5000, 4), "accept"))
    cases.append(Case("5000x5000 gray + alpha PNG (25 MP)", "big-la.png", solid_png(5000, 5000, 2), "accept"))
    cases.append(Case("5001x5000 gray PNG (25.005 MP)", "over.png", solid_png(5001, 5000, 1), "reject"))
    # A 48-megapixel photo: JPEG decodes it at reduced scale, so it is welcome.
    cases.append(Case("8000x6000 JPEG (48 MP)", "phone.jpg", encode(Image.new("L", (8000, 6000), 128), "JPEG"), "accept"))
    return cases


def huge_headers() -> list[Case]:
    """Headers that lie about the size; the data behind them is tiny or garbage."""
    cases = []
    png_sizes = [
        (0, 0),
        (1, 0),
        (0, 1),
        (2**31 - 1, 1),
        (1, 2**31 - 1),
        (2**32 - 1, 2**32 - 1),
        (100_000, 100_000),
        (65535, 65535),
        (5_000, 5_001),
    ]
    cases += [Case(f"PNG header {w}x{h}", "huge.png", crafted_png(w, h), "reject") for w, h in png_sizes]
    cases += [
        Case(f"PNG bit depth {depth} colour type {kind}", "odd.png", crafted_png(4, 4, depth, kind), "reject")
        for depth, kind in ((3, 2), (8, 7), (16, 3), (1, 2), (0, 0))
    ]
    jpeg_sizes = [(65535, 65535), (0, 0), (65500, 1), (1, 65500), (40_000, 40_000)]
    cases += [Case(f"JPEG header {w}x{h}", "huge.jpg", crafted_jpeg(w, h), None) for w, h in jpeg_sizes]
    gif_sizes = [
        ((65535, 65535), (65535, 65535)),
        ((1, 1), (65535, 65535)),
        ((65535, 65535), (1, 1)),
        ((0, 0), (0, 0)),
        ((10, 10), (30_000, 30_000)),
    ]
    cases += [Case(f"GIF screen {s} frame {f}", "huge.gif", crafted_gif(s, f), None) for s, f in gif_sizes]
    bmp_headers = [
        (2**31 - 1, 1, 24, 0), (1, -(2**31), 24, 0), (100_000, 100_000, 24, 0), (-5, 5, 24, 0), (4, 4, 0, 0),
        (4, 4, 7, 0), (4, 4, 64, 0), (4, 4, 24, 99), (4, 4, 8, 1), (4, 4, 4, 2), (8000, 8000, 32, 3),
    ]  # fmt: skip
    cases += [
        Case(f"BMP header {w}x{h} {bits}-bit compression {comp}", "huge.bmp", crafted_bmp(w, h, bits, comp), None)
        for w, h, bits, comp in bmp_headers
    ]
    cases += [
        Case(f"WebP canvas {w}x{h}", "huge.webp", crafted_webp(w, h), "reject")
        for w, h in ((16384, 16384), (2**24, 2**24), (1, 1), (9000, 9000))
    ]
    return cases


def mutations(rng: np.random.Generator) -> list[Case]:
    """Valid files cut short, with bits flipped or bytes overwritten."""
    picture = noise_image(rng, 40, 30)
    frames = [noise_image(rng, 40, 30) for _ in range(3)]
    animated_gif = io.BytesIO()
    frames[0].save(animated_gif, "GIF", save_all=True, append_images=frames[1:], duration=50)
    animated_webp = io.BytesIO()
    frames[0].save(animated_webp, "WEBP", save_all=True, append_images=frames[1:], duration=50)
    exif = Image.Exif()
    exif[0x0112] = 6
    bases = {
        "PNG": encode(picture, "PNG"),
        "PNG RGBA": encode(noise_image(rng, 40, 30, "RGBA"), "PNG"),
        "PNG palette": encode(picture.convert("P"), "PNG", transparency=2),
        "PNG 16-bit gray": encode(_mode_image(rng, "I;16"), "PNG"),
        "JPEG": encode(picture, "JPEG", quality=85),
        "JPEG with EXIF": encode(picture, "JPEG", exif=exif.tobytes()),
        "progressive JPEG": encode(picture, "JPEG", progressive=True),
        "CMYK JPEG": encode(picture.convert("CMYK"), "JPEG"),
        "GIF": encode(picture, "GIF"),
        "animated GIF": animated_gif.getvalue(),
        "lossy WebP": encode(picture, "WEBP"),
        "lossless WebP": encode(noise_image(rng, 40, 30, "RGBA"), "WEBP", lossless=True),
        "animated WebP": animated_webp.getvalue(),
        "BMP": encode(picture, "BMP"),
        "BMP palette": encode(picture.convert("P"), "BMP"),
    }
    cases = []
    for label, data in bases.items():
        cuts = {8, 16, 33, len(data) // 2, len(data) - 1, *rng.integers(1, len(data), 3).tolist()}
        cases += [Case(f"{label} cut to {cut} bytes", f"cut.{label.split()[-1].lower()}", data[:cut]) for cut in sorted(cuts)]
        for _ in range(8):
            position, bit = int(rng.integers(0, len(data))), int(rng.integers(0, 8))
            flipped = bytearray(data)
            flipped[position] ^= 1 << bit
            cases.append(Case(f"{label}, bit {bit} of byte {position} flipped", "flip.img", bytes(flipped)))
        for _ in range(4):
            start = int(rng.integers(0, max(1, len(data) - 16)))
            damaged = bytearray(data)
            damaged[start : start + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
            cases.append(Case(f"{label}, 16 bytes overwritten at {start}", "overwritten.img", bytes(damaged)))
        insert_at = int(rng.integers(0, len(data)))
        inserted = data[:insert_at] + rng.integers(0, 256, 100, dtype=np.uint8).tobytes() + data[insert_at:]
        cases.append(Case(f"{label}, 100 random bytes inserted at {insert_at}", "inserted.img", inserted))
        cases.append(Case(f"{label} twice in a row", "double.img", data + data))
    return cases


def random_bytes(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case(
            f"{length} random bytes", "random.png", rng.integers(0, 256, length, dtype=np.uint8).tobytes(), "reject" if length < 8 else None
        )
        for length in (1, 2, 7, 16, 100, 1000, 5000, 65536)
    ]
    cases.append(Case("empty file", "empty.png", b"", "reject"))
    magics = {
        "PNG signature": PNG_SIGNATURE,
        "JPEG SOI": b"\xff\xd8\xff\xe0",
        "GIF89a": b"GIF89a",
        "GIF87a": b"GIF87a",
        "WebP RIFF": b"RIFF\x00\x10\x00\x00WEBPVP8 ",
        "BMP": b"BM",
        "TIFF": b"II*\x00",
        "PDF": b"%PDF-1.7\n",
        "zip": b"PK\x03\x04",
        "ELF": b"\x7fELF",
    }
    for label, magic in magics.items():
        for length in (0, 10, 200, 3000):
            tail = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
            cases.append(Case(f"{label} + {length} random bytes", "magic.png", magic + tail))
    return cases


def disguised(rng: np.random.Generator) -> list[Case]:
    """Other file types named like images; none of them is a format we decode."""
    picture = noise_image(rng)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("cat.png", encode(picture, "PNG"))
    others = {
        "SVG": b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><script>alert(1)</script><rect width="9" height="9"/></svg>',
        "SVG with a BOM": b"\xef\xbb\xbf<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>",
        "HTML": b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        "text": b"this is not a picture\n" * 20,
        "JSON": b'{"image": "cat"}',
        "zip with a PNG inside": archive.getvalue(),
        "PDF": b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n",
        "PostScript": b"%!PS-Adobe-3.0\n/x 1 def\nshowpage\n",
        "shell script": b"#!/bin/sh\nrm -rf /\n",
        "Python pickle": b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.",
        "HDF5 model": b"\x89HDF\r\n\x1a\n" + b"\x00" * 100,
        "Keras model (zip)": archive.getvalue().replace(b"cat.png", b"config.json"),
    }
    cases = [Case(label, "disguised.png", data, "reject") for label, data in others.items()]
    for fmt in ("TIFF", "ICO", "PPM", "TGA", "PCX", "IM", "SGI", "DDS", "JPEG2000", "QOI", "ICNS", "EPS", "PDF"):
        data = _saved(picture if fmt not in ("ICNS",) else picture.resize((16, 16)), fmt)
        if data is not None:
            cases.append(Case(f"real {fmt} named .png", "real-other.png", data, "reject"))
    gif_polyglot = b"GIF89a/*\x00\x00\x00\x00\x00\x00*/=alert(1);" + b"\x00" * 20
    cases.append(Case("GIF/JavaScript polyglot", "poly.gif", gif_polyglot, None))
    cases.append(Case("PNG with a zip appended", "appended.png", encode(picture, "PNG") + archive.getvalue(), None))
    cases.append(Case("JPEG with HTML appended", "appended.jpg", encode(picture, "JPEG") + b"<script>alert(1)</script>", None))
    return cases


def animations(rng: np.random.Generator) -> list[Case]:
    frames = [noise_image(rng, 30, 20) for _ in range(4)]
    cases = []
    for fmt in ("GIF", "WEBP", "PNG"):
        data = _saved(frames[0], fmt, save_all=True, append_images=frames[1:], duration=40, loop=0)
        cases.append(Case(f"animated {fmt}", f"anim.{fmt.lower()}", data, "accept"))
    many = [Image.new("P", (8, 8), index % 256) for index in range(300)]
    cases.append(Case("GIF with 300 frames", "many.gif", encode(many[0], "GIF", save_all=True, append_images=many[1:]), "accept"))
    # Frames of different sizes and disposal methods.
    mixed = [noise_image(rng, 30, 20), noise_image(rng, 60, 5), noise_image(rng, 4, 50)]
    cases.append(
        Case(
            "GIF with frames of different sizes",
            "mixed.gif",
            encode(mixed[0], "GIF", save_all=True, append_images=mixed[1:], disposal=2),
            "accept",
        )
    )
    apng = _saved(frames[0], "PNG", save_all=True, append_images=frames[1:], default_image=True)
    cases.append(Case("APNG with a default image", "default.png", apng, "accept"))
    return cases


def exif_cases(rng: np.random.Generator) -> list[Case]:
    picture = noise_image(rng, 40, 20)
    cases = []
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        for fmt in ("JPEG", "WEBP", "PNG"):
            data = _saved(picture, fmt, exif=exif.tobytes())
            cases.append(Case(f"{fmt} EXIF orientation {orientation}", f"exif{orientation}.{fmt.lower()}", data, f"accept:{orientation}"))
    for orientation in (0, 9, 255, 65535):
        exif = Image.Exif()
        exif[0x0112] = orientation
        cases.append(Case(f"JPEG EXIF orientation {orientation}", "exif-bad.jpg", encode(picture, "JPEG", exif=exif.tobytes()), "accept"))
    junk_exifs = {
        "random EXIF bytes": b"Exif\x00\x00" + rng.integers(0, 256, 200, dtype=np.uint8).tobytes(),
        "EXIF cut short": b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff",
        "EXIF with 65535 entries": b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff" + b"\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00" * 3,
        "EXIF orientation as text": b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x02\x00\x04\x00\x00\x00abc\x00\x00\x00\x00\x00",
        "EXIF pointing outside itself": b"Exif\x00\x00II*\x00\xff\xff\xff\x7f",
        "big-endian EXIF loop": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x87\x69\x00\x04\x00\x00\x00\x01\x00\x00\x00\x08\x00\x00\x00\x00",
    }
    for label, blob in junk_exifs.items():
        for fmt in ("JPEG", "WEBP", "PNG"):
            data = _saved(picture, fmt, exif=blob)
            if data is not None:
                cases.append(Case(f"{fmt} with {label}", "exif-junk.img", data, None))
    return cases


def metadata_bombs() -> list[Case]:
    """Small files whose metadata would inflate to hundreds of megabytes."""
    bomb = zlib.compress(b"\x00" * 64_000_000, 9)
    ztxt = png_chunk(b"zTXt", b"comment\x00\x00" + bomb)
    iccp = png_chunk(b"iCCP", b"icc\x00\x00" + bomb)
    itxt = png_chunk(b"iTXt", b"comment\x00\x01\x00\x00\x00" + bomb)
    many_text = b"".join(png_chunk(b"tEXt", b"k\x00" + b"v" * 100) for _ in range(5000))
    liar = struct.pack(">I", 0x7FFFFFFF) + b"tEXt" + b"a" * 32
    rows = (b"\x00" + b"\x80" * 12) * 4
    return [
        Case("PNG with a zTXt bomb", "ztxt.png", crafted_png(4, 4, rows=rows, extra=ztxt), None),
        Case("PNG with an iCCP bomb", "iccp.png", crafted_png(4, 4, rows=rows, extra=iccp), None),
        Case("PNG with an iTXt bomb", "itxt.png", crafted_png(4, 4, rows=rows, extra=itxt), None),
        Case("PNG with 5,000 text chunks", "chatty.png", crafted_png(4, 4, rows=rows, extra=many_text), None),
        Case("PNG chunk claiming 2 GB", "liar.png", crafted_png(4, 4, rows=rows, extra=liar), None),
        Case("PNG IDAT inflating to 64 MB for a 4x4 image", "idat-bomb.png", crafted_png(4, 4, rows=b"\x00" * 64_000_000), None),
    ]


def hostile_files(seed: int = 2024) -> list[Case]:
    """The fuzz set: the same files, in the same order, for the same seed; odd names spread over them."""
    rng = np.random.default_rng(seed)
    cases = [
        *random_bytes(rng),
        *disguised(rng),
        *valid_files(rng),
        *sizes(rng),
        *huge_headers(),
        *mutations(rng),
        *animations(rng),
        *exif_cases(rng),
        *metadata_bombs(),
    ]
    # Every 7th case claims an odd file name; the content decides the outcome, never the name.
    return [Case(c.kind, ODD_NAMES[(i // 7) % len(ODD_NAMES)], c.data, c.expect) if i % 7 == 0 else c for i, c in enumerate(cases)]

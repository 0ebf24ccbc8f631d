"""Predict: turn an uploaded file into the 32x32 picture a model sees, and read its answer.

Uploaded bytes come from strangers, so `decode_image` is defensive: it refuses
files that are too large, formats outside a short allow-list, and images whose
declared size would need gigabytes of memory once decoded (a "decompression
bomb": a few kilobytes on disk that claim to be 20,000 x 20,000 pixels). Every
refusal is an `ImageRejected` whose message is one sentence a student can act
on; no upload ever ends in a traceback.

What survives is normalised to plain 8-bit RGB: the EXIF orientation a phone
wrote is applied, transparent pixels are laid on white, CMYK, 16-bit and
grayscale pictures become RGB, and an animated GIF or WebP gives its first frame.

Memory is bounded per upload: a JPEG is decoded at 1/2, 1/4 or 1/8 scale when that
still leaves plenty of pixels, and any big picture is shrunk (by an integer
factor, averaging) right after decoding, before the conversions that would copy
it at full size. So the peak is about one decoded copy: at most MAX_PIXELS x 4 bytes.

`to_model_input` then squeezes the whole picture into 32 x 32 pixels, the size
of a CIFAR-10 image, and `top_k` reads the model's k most probable classes.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lab.config import CLASS_NAMES, task_class_names
from lab.evaluate.metrics import as_class_probabilities

# Formats Pillow may try. Anything else (SVG, PDF, TIFF, PSD, ...) is refused
# before a decoder runs, which keeps rarely used, rarely audited decoders out of reach.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
UPLOAD_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp", "gif")  # for st.file_uploader(type=...)
MAX_BYTES = 10 * 1024 * 1024  # bytes: a phone photo is 2-8 MB
MAX_FILES = 12  # images classified per request; more are left out with a note
PREVIEW_SIDE = 256  # pixels: the longest side of the preview shown next to the model's view
# Pixels (width x height) decoded at full size: Pillow keeps 4 bytes per RGB or RGBA pixel,
# so 25 megapixels (a 5,000 x 5,000 PNG, or an 8K screenshot's worth) is 100 MB per upload.
MAX_PIXELS = 25_000_000
# A JPEG is decoded at reduced scale, so its declared size may be larger: a 200-megapixel phone
# photo decodes at 1/8 scale. Pillow itself refuses anything above about 179 megapixels.
MAX_JPEG_PIXELS = 150_000_000
# JPEGs can be decoded at 1/2, 1/4 or 1/8 scale for free; we ask for at least this many
# pixels per side, plenty for a 32 x 32 model input and a sharp preview.
JPEG_DRAFT_SIDE = 512  # pixels
# After decoding, a picture whose shorter side is at least twice this is shrunk by an integer
# factor (averaging blocks of pixels) before anything else copies it.
WORK_SIDE = 512  # pixels
MAX_NAME_CHARS = 60  # characters of a file name quoted in a refusal message
CIFAR_SIZE = 32  # pixels per side of a CIFAR-10 image
WHITE = (255, 255, 255)

_UNREADABLE = "is not an image we can read: use a PNG, JPEG, WebP, BMP or GIF file."


class ImageRejected(ValueError):
    """An upload we refuse to decode; the message is one sentence meant for the user."""


def decode_image(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS, name: str = "This file") -> Image.Image:
    """Decode uploaded bytes into an 8-bit RGB Pillow image, or raise ImageRejected.

    `name` starts the refusal messages ("cat.png is not an image we can read: ...").
    A big picture comes back shrunk (its shorter side at least WORK_SIDE pixels);
    `image.info["original_size"]` keeps its real (upright) width and height.
    """
    name = display_name(name)
    if not data:
        raise ImageRejected(f"{name} is empty: choose a PNG, JPEG, WebP, BMP or GIF image.")
    if len(data) > max_bytes:
        raise ImageRejected(f"{name} is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB, so resize or compress it first.")
    try:
        # First pass: the header only (Image.open is lazy), then verify() checks the
        # file's structure (PNG checksums, for example) without keeping pixels.
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as probe:
            _check_pixels(probe, _declared_limit(probe, max_pixels), name)
            probe.verify()
        # verify() leaves the image unusable, so open it again to decode the pixels.
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        original_size = image.size
        if image.format == "JPEG":
            image.draft(image.mode, (JPEG_DRAFT_SIDE, JPEG_DRAFT_SIDE))
        _check_pixels(image, max_pixels, name)  # the size that will really be decoded
        image.seek(0)  # the first frame of an animation
        image.load()
        image = shrink_for_work(image)
        before = image.size
        image = _apply_orientation(image)
        if image.size != before:  # turned a quarter: width and height swap places
            original_size = original_size[::-1]
        image = to_rgb(image)
        image.info["original_size"] = original_size
        return image
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(_too_many_pixels(name, max_pixels)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, KeyError, MemoryError) as error:
        raise ImageRejected(f"{name} {_UNREADABLE}") from error
    except Exception as error:  # noqa: BLE001 - a decoder bug must still end in a sentence, never a traceback
        raise ImageRejected(f"{name} {_UNREADABLE}") from error


def display_name(name: str) -> str:
    """A file name made safe to quote in one line of text: no control or direction-changing characters, not too long."""
    text = "".join(" " if unicodedata.category(character)[0] in "CZ" else character for character in str(name or ""))
    text = re.sub(r"\s+", " ", text).strip() or "This file"
    return text if len(text) <= MAX_NAME_CHARS else text[: MAX_NAME_CHARS - 3] + "..."


def _declared_limit(image: Image.Image, max_pixels: int) -> int:
    """The largest declared size accepted: a JPEG decodes at up to 1/8 scale, so it may declare more."""
    return max(max_pixels, MAX_JPEG_PIXELS) if image.format == "JPEG" else max_pixels


def _check_pixels(image: Image.Image, limit: int, name: str) -> None:
    # The header declares the size before a single pixel is decoded: refuse there.
    width, height = image.size
    if width * height > limit:
        raise ImageRejected(_too_many_pixels(name, limit, width, height))
    if width < 1 or height < 1:
        raise ImageRejected(f"{name} {_UNREADABLE}")


def shrink_for_work(image: Image.Image, work_side: int = WORK_SIDE) -> Image.Image:
    """Shrink a freshly decoded picture by an integer factor while its shorter side stays >= work_side.

    This runs before orientation and colour conversion, each of which would copy the
    picture at full size. Averaging blocks of pixels (`reduce`) is what a good
    downscale does anyway; palettes, packed bits and 16-bit gray cannot be averaged
    as they are stored, so those pick one pixel per block instead.
    """
    factor = min(image.size) // work_side
    if factor < 2:
        return image
    if image.mode == "1":
        image = image.convert("L")  # also one byte per pixel, and averaging gives greys
    if image.mode in ("P", "PA") or image.mode.startswith("I;16"):
        size = (max(1, image.width // factor), max(1, image.height // factor))
        return image.resize(size, Image.Resampling.NEAREST)
    return image.reduce(factor)


def _too_many_pixels(name: str, max_pixels: int, width: int | None = None, height: int | None = None) -> str:
    size = f" ({width} x {height} pixels)" if width else ""
    return f"{name} is too large to decode safely{size}; the limit is {max_pixels / 1e6:g} megapixels, so resize it first."


def _apply_orientation(image: Image.Image) -> Image.Image:
    """Rotate / mirror as the EXIF orientation tag says (phones store photos sideways)."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not cost the user their picture
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparent pixels become white."""
    if image.mode in ("RGBa", "La"):  # premultiplied alpha: undo it first
        image = image.convert(image.mode.upper())
    if image.mode == "P" or ("transparency" in image.info and image.mode in ("L", "RGB")):
        # Palette images (and L / RGB with a transparent colour key) expand to RGBA so
        # that a transparent index shows as white rather than as its palette colour.
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _wide_gray_to_rgb(image)
    if image.mode == "RGB":
        return image
    # CMYK, YCbCr, LAB, HSV, L and 1 all have a direct conversion to RGB.
    return image.convert("RGB")


def _wide_gray_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float grayscale -> 8-bit RGB, keeping the full range.

    Pillow's own conversion clips values above 255 (a 16-bit photo turns white), so
    16-bit data is scaled by 255 / 65535 instead; other wide data is scaled by its maximum.
    """
    values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if image.mode.startswith("I;16") or (image.mode == "I" and values.max(initial=0) > 255):
        values = values / 257.0  # 65535 / 255
    elif image.mode == "F" and values.max(initial=0) <= 1.0:
        values = values * 255.0
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([gray] * 3, axis=-1))


def to_model_input(image: Image.Image, size: int = CIFAR_SIZE, *, crop: bool = False) -> np.ndarray:
    """The (size, size, 3) uint8 array a model sees.

    By default the whole picture is resized to a square, like CIFAR-10's own
    images, which show the whole scene: a wide photo gets squeezed sideways.
    With `crop=True` the centre square is cut out first, which keeps proportions
    but loses the edges. Lanczos filtering averages the many pixels that fall
    into each output pixel, so fine detail blurs rather than aliasing into noise.
    """
    image = to_rgb(image)
    if crop:
        image = ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS)
    else:
        # reducing_gap first shrinks by an integer factor (fast), then filters properly.
        image = image.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(image, dtype=np.uint8).copy()


def probabilities(model, images_uint8: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """(N, num_classes) float64 class probabilities for uint8 images; rows sum to 1.

    The model normalises its input itself (preprocessing lives inside the model),
    so the raw 0-255 pixels go in as they are. A binary model's single sigmoid
    unit p becomes the two columns [1 - p, p].
    """
    images = np.asarray(images_uint8)
    if images.ndim == 3:
        images = images[np.newaxis]
    chunks = []
    for start in range(0, len(images), batch_size):
        # predict_on_batch runs Keras' traced (graph) prediction step, traced once for a batch size;
        # calling the model eagerly dispatches each layer from Python, and model.predict builds a data
        # pipeline per call: both are several times slower for one picture (python -m bench.predict_latency).
        batch = images[start : start + batch_size].astype(np.float32)
        chunks.append(np.asarray(model.predict_on_batch(batch), dtype=np.float64))
    raw = np.concatenate(chunks) if chunks else np.zeros((0, 1))
    probs = np.clip(as_class_probabilities(raw).astype(np.float64), 0.0, None)
    # Re-normalise: float16 (mixed precision) outputs can drift a little from a sum of 1.
    return probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)


def top_k(model, images_uint8: np.ndarray, class_names: Sequence[str], k: int = 5) -> list[list[tuple[str, float]]]:
    """For each image, its k most probable (class name, probability), most probable first.

    k is capped to the number of classes, so a binary model answers with two entries.
    """
    probs = probabilities(model, images_uint8)
    if probs.shape[1] != len(class_names):
        raise ValueError(
            f"the model gives {probs.shape[1]} probabilities but {len(class_names)} class names were passed; use the run's own class names."
        )
    k = max(1, min(int(k), len(class_names)))
    answers = []
    for row in probs:
        # A stable sort on the negated probability: ties keep the class order.
        order = np.argsort(-row, kind="stable")[:k]
        answers.append([(str(class_names[index]), float(row[index])) for index in order])
    return answers


def predict_image(model, data: bytes, class_names: Sequence[str], k: int = 5, *, crop: bool = False, name: str = "This file") -> dict:
    """Decode an upload and classify it: {"image": (32, 32, 3) uint8, "top": [(class, prob), ...], "original_size": (w, h)}.

    Raises ImageRejected (with a message for the user) when the bytes are not an image we accept.
    """
    picture = decode_image(data, name=name)
    size = _model_input_size(model)
    image = to_model_input(picture, size, crop=crop)
    return {"image": image, "top": top_k(model, image, class_names, k)[0], "original_size": picture.info.get("original_size", picture.size)}


def predict_files(model, files: Sequence[tuple[str, bytes]], class_names: Sequence[str], k: int = 5, *, crop: bool = False) -> list[dict]:
    """Classify several uploads in one model call; a bad file gets an error, the others still get answers.

    Each result is {"name", "image", "top", "original_size", "preview"} or {"name", "error"}
    (the ImageRejected message). At most MAX_FILES files are read.
    """
    size = _model_input_size(model)
    results, inputs = [], []
    for name, data in list(files)[:MAX_FILES]:
        try:
            picture = decode_image(data, name=name)
        except ImageRejected as error:
            results.append({"name": name, "error": str(error)})
            continue
        preview = picture.copy()
        preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
        original_size = picture.info.get("original_size", picture.size)
        result = {"name": name, "image": to_model_input(picture, size, crop=crop), "original_size": original_size, "preview": preview}
        results.append(result)
        inputs.append(result)
    if inputs:
        answers = top_k(model, np.stack([result["image"] for result in inputs]), class_names, k)
        for result, answer in zip(inputs, answers, strict=True):
            result["top"] = answer
    return results


def read_model_card(folder) -> dict:
    """What a model folder's records say about its model: class names, test accuracy, task, name and all its metrics.

    `folder` is a lab.store.run_folder.ModelFolder (which owns a model folder's layout): its config.json and
    metrics.json are read once each, when present. Missing facts fall back to CIFAR-10's ten classes, the name
    to the folder's, and the metrics to {}.
    """
    metrics = _json_or_nothing(folder.metrics)
    facts = {**_json_or_nothing(folder.config), **metrics}
    task = facts.get("task", "cifar10")
    try:
        class_names = tuple(facts.get("class_names") or task_class_names(task))
    except ValueError:
        class_names = CLASS_NAMES
    return {
        "class_names": class_names,
        "accuracy": facts.get("accuracy"),
        "task": task,
        "model": facts.get("model", folder.path.name),
        "metrics": metrics,
    }


def _json_or_nothing(path: Path) -> dict:
    """A JSON file's object, or {} when it is missing, unreadable or not an object."""
    try:
        found = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _model_input_size(model) -> int:
    """The side length a model's input expects (CIFAR-10's 32 unless the model says otherwise)."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return CIFAR_SIZE
    side = shape[1] if isinstance(shape, tuple) and len(shape) == 4 else None
    return int(side) if side else CIFAR_SIZE


def upscale_nearest(images: np.ndarray, scale: int) -> np.ndarray:
    """Enlarge (H, W, C) or (N, H, W, C) images by an integer factor without smoothing.

    Each pixel becomes a scale x scale block, so a 32 x 32 image stays honest on a
    projector instead of being blurred by the browser.
    """
    images = np.asarray(images)
    return images.repeat(scale, axis=-3).repeat(scale, axis=-2)

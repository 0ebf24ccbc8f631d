"""lab.evaluate.predict: defensive image decoding, the 32x32 model input, and top-k answers.

Every image here is made in memory with Pillow (or by hand, for the hostile
ones), so the tests need no files and no data set.
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import keras
import numpy as np
import pytest
from keras import layers
from PIL import Image

from lab.config import CLASS_NAMES
from lab.evaluate.predict import (
    ImageRejected,
    decode_image,
    predict_image,
    probabilities,
    read_model_card,
    to_model_input,
    to_rgb,
    top_k,
    upscale_nearest,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def two_colour_image(width: int = 40, height: int = 30) -> Image.Image:
    """Left half red, right half blue: easy to check after any lossy round trip."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = RED
    pixels[:, width // 2 :] = BLUE
    return Image.fromarray(pixels)


def close_to(pixel, colour, tolerance: int = 40) -> bool:
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel, colour, strict=True))


# --- Formats we accept ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_every_allowed_format_round_trips_to_rgb(fmt):
    decoded = decode_image(encode(two_colour_image(), fmt))
    assert decoded.mode == "RGB"
    assert decoded.size == (40, 30)
    pixels = np.asarray(decoded)
    assert close_to(pixels[15, 5], RED)
    assert close_to(pixels[15, 35], BLUE)


def test_rgba_transparent_pixels_become_white():
    pixels = np.zeros((8, 8, 4), dtype=np.uint8)
    pixels[:, :4] = (255, 0, 0, 255)  # opaque red
    pixels[:, 4:] = (0, 0, 255, 0)  # fully transparent blue
    decoded = np.asarray(decode_image(encode(Image.fromarray(pixels), "PNG")))
    assert tuple(decoded[0, 0]) == RED
    assert tuple(decoded[0, 7]) == WHITE


def test_la_half_transparent_black_becomes_mid_grey():
    image = Image.new("LA", (4, 4), (0, 128))  # black at ~50% opacity over white
    decoded = np.asarray(decode_image(encode(image, "PNG")))
    assert decoded.shape == (4, 4, 3)
    assert 120 <= decoded[0, 0, 0] <= 135
    assert decoded[0, 0, 0] == decoded[0, 0, 1] == decoded[0, 0, 2]


def test_palette_image_with_transparent_index_becomes_white():
    image = Image.new("P", (6, 6), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))  # index 0 black, index 1 red
    image.paste(1, (0, 0, 3, 6))  # left half red
    for fmt in ("PNG", "GIF"):
        decoded = np.asarray(decode_image(encode(image, fmt, transparency=0)))
        assert tuple(decoded[0, 0]) == RED, fmt
        assert tuple(decoded[0, 5]) == WHITE, fmt  # index 0 is transparent, not black


def test_cmyk_jpeg_becomes_rgb():
    image = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # no cyan, full magenta + yellow = red
    decoded = decode_image(encode(image, "JPEG", quality=95))
    assert decoded.mode == "RGB"
    assert close_to(np.asarray(decoded)[8, 8], RED, tolerance=60)


def test_16_bit_grayscale_keeps_its_full_range():
    # Pillow's own I;16 -> L conversion clips at 255, which would turn mid-grey white.
    values = np.array([[0, 128 * 257], [255 * 257, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(values), "PNG")
    decoded = np.asarray(decode_image(data))
    assert decoded[:, :, 0].tolist() == [[0, 128], [255, 255]]


def test_32_bit_integer_grayscale_is_scaled_like_16_bit():
    image = Image.fromarray(np.array([[0, 128 * 257]], dtype=np.int32))
    assert np.asarray(to_rgb(image))[:, :, 1].tolist() == [[0, 128]]


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_and_one_bit_become_rgb(mode):
    image = Image.new(mode, (10, 10), 0)
    image.paste(255 if mode == "L" else 1, (5, 0, 10, 10))
    decoded = np.asarray(decode_image(encode(image, "PNG")))
    assert decoded.shape == (10, 10, 3)
    assert tuple(decoded[0, 0]) == (0, 0, 0)
    assert tuple(decoded[0, 9]) == WHITE


def test_exif_orientation_6_rotates_the_photo_upright():
    # A camera held upright stores a landscape sensor image plus "rotate 90 clockwise".
    image = two_colour_image(width=40, height=20)  # wide: red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_image(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert decoded.size == (20, 40)  # now tall
    pixels = np.asarray(decoded)
    # Rotating 90 degrees clockwise puts the left (red) half on top.
    assert close_to(pixels[5, 10], RED)
    assert close_to(pixels[35, 10], BLUE)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), colour) for colour in (RED, GREEN, BLUE)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(buffer.getvalue())).n_frames == 3
    decoded = np.asarray(decode_image(buffer.getvalue()))
    assert close_to(decoded[4, 4], RED, tolerance=10)


# --- Files we refuse -----------------------------------------------------------------------


def noisy_png() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG")


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


@pytest.mark.parametrize(
    ("label", "data"),
    [
        ("random bytes", os.urandom(2000)),
        ("truncated PNG", noisy_png()[: len(noisy_png()) // 2]),
        ("text", b"hello, this is not a picture\n" * 10),
        ("SVG", SVG),
        ("TIFF (not allowed)", encode(Image.new("RGB", (8, 8)), "TIFF")),
        ("PNG signature only", b"\x89PNG\r\n\x1a\n"),
    ],
)
def test_unreadable_files_are_refused_with_a_readable_message(label, data):
    with pytest.raises(ImageRejected) as caught:
        decode_image(data, name="upload.png")
    message = str(caught.value)
    assert message.startswith("upload.png is not an image we can read"), label
    assert "PNG, JPEG, WebP, BMP or GIF" in message
    assert "\n" not in message and "Traceback" not in message


def test_empty_file_is_refused():
    with pytest.raises(ImageRejected, match="is empty"):
        decode_image(b"")


def test_file_over_the_byte_limit_is_refused():
    with pytest.raises(ImageRejected, match="the limit is"):
        decode_image(noisy_png(), max_bytes=1000)


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit grayscale PNG of width x height black pixels: tiny on disk, huge decoded."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [20_000, 10_000])
def test_decompression_bomb_is_refused_before_decoding(side):
    # 20,000^2 trips Pillow's own DecompressionBombError; 10,000^2 only its warning,
    # which our own pixel limit turns into a refusal.
    data = png_bomb(side, side)
    assert len(data) < 100_000  # small on disk ...
    with pytest.raises(ImageRejected, match="too large to decode safely"):  # ... refused all the same
        decode_image(data)


def test_pixel_limit_is_configurable():
    with pytest.raises(ImageRejected, match=r"64 x 64 pixels"):
        decode_image(noisy_png(), max_pixels=1000)
    assert decode_image(noisy_png(), max_pixels=64 * 64).size == (64, 64)


# --- The model input --------------------------------------------------------------------------


def three_stripes(width: int = 96, height: int = 32) -> Image.Image:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    third = width // 3
    pixels[:, :third], pixels[:, third : 2 * third], pixels[:, 2 * third :] = RED, GREEN, BLUE
    return Image.fromarray(pixels)


def test_to_model_input_squeezes_the_whole_picture_by_default():
    array = to_model_input(three_stripes())
    assert array.shape == (32, 32, 3) and array.dtype == np.uint8
    assert close_to(array[16, 1], RED) and close_to(array[16, 16], GREEN) and close_to(array[16, 30], BLUE)


def test_to_model_input_can_crop_the_centre_square():
    array = to_model_input(three_stripes(), crop=True)
    assert close_to(array[16, 1], GREEN) and close_to(array[16, 30], GREEN)


def test_upscale_nearest_makes_blocks_without_smoothing():
    image = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    big = upscale_nearest(image, 3)
    assert big.shape == (6, 6, 3)
    assert (big[:3, :3] == image[0, 0]).all() and (big[3:, 3:] == image[1, 1]).all()
    assert upscale_nearest(np.stack([image, image]), 2).shape == (2, 4, 4, 3)


# --- Top-k answers ---------------------------------------------------------------------------


def tiny_model(units: int, activation: str) -> keras.Model:
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(units, activation=activation)]
    )


def random_images(n: int) -> np.ndarray:
    return np.random.default_rng(2).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def test_top_k_on_a_ten_class_model():
    model = tiny_model(10, "softmax")
    images = random_images(3)
    answers = top_k(model, images, CLASS_NAMES, k=5)
    expected_best = np.asarray(model.predict(images, verbose=0)).argmax(axis=1)
    assert len(answers) == 3
    for answer, best in zip(answers, expected_best, strict=True):
        assert len(answer) == 5
        probs = [p for _, p in answer]
        assert probs == sorted(probs, reverse=True)
        assert 0 < sum(probs) <= 1 + 1e-9
        assert len({name for name, _ in answer}) == 5
        assert answer[0][0] == CLASS_NAMES[best]


def test_top_k_on_a_binary_sigmoid_model_gives_both_classes():
    model = tiny_model(1, "sigmoid")
    image = random_images(1)
    p = float(np.asarray(model.predict(image, verbose=0))[0, 0])
    (answer,) = top_k(model, image, ("animal", "vehicle"), k=5)
    assert len(answer) == 2
    assert sum(prob for _, prob in answer) == pytest.approx(1.0)
    assert dict(answer)["vehicle"] == pytest.approx(p, abs=1e-6)


def test_probabilities_accept_one_image_and_batches_larger_than_batch_size():
    model = tiny_model(10, "softmax")
    assert probabilities(model, random_images(1)[0]).shape == (1, 10)
    many = probabilities(model, random_images(7), batch_size=3)
    assert many.shape == (7, 10)
    np.testing.assert_allclose(many.sum(axis=1), 1.0)


def test_students_predicting_at_once_with_one_shared_model_get_their_own_answers():
    # The Streamlit server loads each model once and every session's thread calls it: Keras' traced
    # prediction step (predict_on_batch) is created by whichever call comes first and then shared.
    from concurrent.futures import ThreadPoolExecutor

    model = tiny_model(10, "softmax")
    batches = [random_images(n) for n in (1, 3, 2, 5, 4)]  # each student a different number of images
    expected = [np.asarray(model(batch.astype(np.float32), training=False), dtype=np.float64) for batch in batches]
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda batch: probabilities(model, batch), batches * 4))
    for got, want in zip(answers, expected * 4, strict=True):
        np.testing.assert_allclose(got, want / want.sum(axis=1, keepdims=True), atol=1e-6)


def test_top_k_refuses_class_names_that_do_not_match_the_model():
    with pytest.raises(ValueError, match="use the run's own class names"):
        top_k(tiny_model(10, "softmax"), random_images(1), ("cat", "dog"))


def test_predict_image_from_png_bytes():
    result = predict_image(tiny_model(10, "softmax"), encode(two_colour_image(), "PNG"), CLASS_NAMES)
    assert result["image"].shape == (32, 32, 3) and result["image"].dtype == np.uint8
    assert result["original_size"] == (40, 30)
    assert len(result["top"]) == 5
    assert sum(prob for _, prob in result["top"]) <= 1 + 1e-9


def test_predict_image_passes_refusals_through():
    with pytest.raises(ImageRejected, match="notes.txt is not an image"):
        predict_image(tiny_model(10, "softmax"), b"just text", CLASS_NAMES, name="notes.txt")


def test_a_model_card_reads_the_folder_s_records_and_falls_back_when_they_are_missing(tmp_path):
    from lab.store.run_folder import ModelFolder

    folder = ModelFolder(tmp_path / "truck-model")
    folder.path.mkdir()
    card = read_model_card(folder)  # nothing written yet: CIFAR-10's classes, the folder's name, no metrics
    assert card == {"class_names": tuple(CLASS_NAMES), "accuracy": None, "task": "cifar10", "model": "truck-model", "metrics": {}}
    folder.config.write_text('{"task": "one-vs-rest:truck", "model": "seed-cnn"}')
    folder.metrics.write_text('{"accuracy": 0.95, "positive_f1": 0.7}')
    card = read_model_card(folder)
    assert card["task"] == "one-vs-rest:truck" and card["model"] == "seed-cnn" and card["accuracy"] == 0.95
    assert card["metrics"] == {"accuracy": 0.95, "positive_f1": 0.7} and len(card["class_names"]) == 2
    folder.metrics.write_text("[1, 2]")  # not a JSON object: read as no metrics, never a crash
    assert read_model_card(folder)["metrics"] == {} and read_model_card(folder)["accuracy"] is None

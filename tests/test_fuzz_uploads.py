"""Fuzz the Predict page's way in: hundreds of hostile uploads, and not one crash.

Every file of `tests/hostile_images.py` (about 600, the same ones each time) goes
through `predict_files` with a tiny Keras model, a dozen at a time as the page
sends them. Each must come back either as a valid answer (all ten classes, the
probabilities summing to 1) or as a refusal whose message is one plain sentence.
Any other exception is a bug, and so is memory that keeps growing: the whole run
happens in a fresh process whose peak memory (`ru_maxrss`) is measured before and
after, so earlier tests cannot hide or inflate it.
"""

from __future__ import annotations

import math
import multiprocessing
import re
import resource
import time
import traceback
from concurrent.futures import ProcessPoolExecutor

import pytest

from tests.hostile_images import hostile_files

MAX_GROWTH_MB = 300  # peak memory the whole fuzz run may add on top of TensorFlow and the model
MAX_SECONDS_PER_FILE = 5.0  # a slow decode is a denial of service on a shared classroom server
INTERNALS = re.compile(r"Traceback|File \"|<[\w.]+ object at 0x|\bPIL\.|Error:|\\x[0-9a-f]{2}|\n")


def _message_problem(message: str) -> str | None:
    """Why a refusal message is not one readable sentence, or None when it is."""
    if not isinstance(message, str) or not 20 <= len(message) <= 400:
        return f"length {len(message) if isinstance(message, str) else type(message)}"
    if INTERNALS.search(message):
        return "shows internals"
    if not message.rstrip().endswith("."):
        return "is not a sentence"
    if any(ord(character) < 32 or 0x202A <= ord(character) <= 0x202E for character in message):
        return "has control characters"
    return None


def _answer_problem(result: dict, class_names) -> str | None:
    """Why an accepted file's answer is not a valid top-k, or None when it is."""
    image, top = result.get("image"), result.get("top")
    if image is None or image.shape != (32, 32, 3) or str(image.dtype) != "uint8":
        return f"model input {getattr(image, 'shape', None)} {getattr(image, 'dtype', None)}"
    if not top or len(top) != len(class_names) or sorted(name for name, _ in top) != sorted(class_names):
        return f"top-k {top!r}"
    probabilities = [p for _, p in top]
    if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probabilities):
        return f"probabilities {probabilities}"
    if abs(sum(probabilities) - 1.0) > 1e-6 or probabilities != sorted(probabilities, reverse=True):
        return f"probabilities sum to {sum(probabilities)} or are out of order"
    return None


def _expectation_problem(case, result: dict) -> str | None:
    if case.expect is None:
        return None
    accepted = "top" in result
    if case.expect.startswith("accept") and not accepted:
        return f"refused a valid file: {result.get('error')}"
    if case.expect == "reject" and accepted:
        return "accepted a file it should refuse"
    if case.expect.startswith("accept:"):  # an EXIF orientation: 5-8 turn the 40 x 20 picture upright
        width, height = result["original_size"]
        wanted = (20, 40) if int(case.expect.split(":")[1]) >= 5 else (40, 20)
        if (width, height) != wanted:
            return f"orientation not applied: {width}x{height}, wanted {wanted[0]}x{wanted[1]}"
    return None


def run_fuzz(cases: list) -> dict:
    """Run every case through predict_files; return counts, problems, timings and memory.

    The cases are made by the caller, so making them (a 48-megapixel JPEG is encoded
    from a full-size picture) does not raise the peak this function measures against.
    """
    import keras
    import numpy as np
    from keras import layers

    from lab.config import CLASS_NAMES
    from lab.evaluate.predict import MAX_FILES, predict_files

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(10, activation="softmax")]
    )
    model(np.zeros((2, 32, 32, 3), "float32"))  # build and warm up before the memory baseline
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {"cases": len(cases), "accepted": 0, "rejected": 0, "problems": [], "slowest": (0.0, "")}
    started = time.perf_counter()
    for start in range(0, len(cases), MAX_FILES):
        batch = cases[start : start + MAX_FILES]
        batch_started = time.perf_counter()
        try:
            results = predict_files(model, [(case.name, case.data) for case in batch], CLASS_NAMES, k=len(CLASS_NAMES))
        except Exception:  # noqa: BLE001 - the point of the test: find which file did this
            results = []
            for case in batch:
                try:
                    results += predict_files(model, [(case.name, case.data)], CLASS_NAMES, k=len(CLASS_NAMES))
                except Exception as error:  # noqa: BLE001
                    detail = traceback.format_exception_only(type(error), error)[-1].strip()
                    report["problems"].append(f"{case.kind}: raised {detail}")
                    results.append({"name": case.name, "crashed": True})
        seconds = (time.perf_counter() - batch_started) / len(batch)
        if seconds > report["slowest"][0]:
            report["slowest"] = (seconds, batch[0].kind)
        for case, result in zip(batch, results, strict=True):
            if result.get("crashed"):
                continue
            if "top" in result:
                report["accepted"] += 1
                problem = _answer_problem(result, CLASS_NAMES)
            else:
                report["rejected"] += 1
                problem = _message_problem(result.get("error"))
                problem = problem and f"message {problem}: {result.get('error')!r}"
            problem = problem or _expectation_problem(case, result)
            if problem:
                report["problems"].append(f"{case.kind}: {problem}")
    report["seconds"] = time.perf_counter() - started
    report["baseline_mb"] = baseline_kb / 1024
    report["growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_kb) / 1024
    return report


@pytest.mark.slow
def test_hostile_uploads_never_crash_and_memory_stays_bounded():
    # A fresh process: its peak memory belongs to this fuzz run alone.
    cases = hostile_files(seed=2024)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        report = pool.submit(run_fuzz, cases).result(timeout=600)
    summary = (
        f"{report['cases']} files: {report['accepted']} accepted, {report['rejected']} refused in {report['seconds']:.1f} s; "
        f"peak memory grew {report['growth_mb']:.0f} MB over {report['baseline_mb']:.0f} MB; "
        f"slowest batch {report['slowest'][0]:.2f} s per file ({report['slowest'][1]})"
    )
    print(summary)
    assert report["cases"] >= 500
    assert not report["problems"], summary + "\n" + "\n".join(report["problems"])
    assert report["accepted"] + report["rejected"] == report["cases"]
    assert report["growth_mb"] < MAX_GROWTH_MB, summary
    assert report["slowest"][0] < MAX_SECONDS_PER_FILE, summary


# ---------------------------------------------------------------- the pieces the fuzz run leans on


def test_every_pillow_mode_becomes_8_bit_rgb():
    import numpy as np
    from PIL import Image

    from lab.evaluate.predict import to_rgb

    modes = (
        "1",
        "L",
        "P",
        "RGB",
        "RGBA",
        "CMYK",
        "YCbCr",
        "LAB",
        "HSV",
        "I",
        "I;16",
        "I;16B",
        "I;16L",
        "F",
        "LA",
        "PA",
        "RGBX",
        "RGBa",
        "La",
    )
    for mode in modes:
        rgb = to_rgb(Image.new(mode, (5, 4)))
        assert (rgb.mode, rgb.size) == ("RGB", (5, 4)), mode
    # Not-a-number and infinite float pixels become black instead of undefined bytes.
    weird = np.array([[np.nan, np.inf], [-np.inf, 0.5]], dtype=np.float32)
    assert np.asarray(to_rgb(Image.fromarray(weird, mode="F")))[:, :, 0].tolist() == [[0, 0], [0, 128]]


def test_file_names_are_quoted_on_one_short_line():
    from lab.evaluate.predict import MAX_NAME_CHARS, ImageRejected, decode_image, display_name

    assert display_name("cat.png") == "cat.png"
    assert display_name("") == display_name(None) == "This file"
    assert display_name("new\nline\t.png") == "new line .png"
    assert display_name("\u202egnp.exe") == "gnp.exe"  # no right-to-left override to disguise the name
    assert len(display_name("x" * 500)) == MAX_NAME_CHARS
    try:
        decode_image(b"not an image", name="a\x00b\n" + "y" * 300)
    except ImageRejected as error:
        message = str(error)
    assert message.startswith("a b yyy") and "\n" not in message and "\x00" not in message and len(message) < 200


def test_a_big_phone_jpeg_is_decoded_small_but_reports_its_real_size():
    import io

    from PIL import Image

    from lab.evaluate.predict import MAX_PIXELS, WORK_SIDE, decode_image

    buffer = io.BytesIO()
    Image.new("RGB", (8000, 6000), (10, 200, 30)).save(buffer, "JPEG", quality=70)
    assert MAX_PIXELS < 8000 * 6000  # over the full-size limit, yet JPEG decodes it at 1/8 scale
    picture = decode_image(buffer.getvalue())
    assert picture.info["original_size"] == (8000, 6000)
    assert WORK_SIDE <= min(picture.size) < 2 * WORK_SIDE
    assert max(abs(a - b) for a, b in zip(picture.getpixel((5, 5)), (10, 200, 30), strict=True)) < 6


def test_big_pictures_shrink_before_conversion_in_every_decoded_mode():
    from PIL import Image

    from lab.evaluate.predict import WORK_SIDE, shrink_for_work

    for mode in ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I", "F", "I;16", "I;16B"):
        small = shrink_for_work(Image.new(mode, (3000, 1600)))
        # Shrunk by 3, the largest factor that keeps the shorter side at WORK_SIDE or more (reduce rounds up).
        assert small.width == 1000 and small.height in (533, 534) and min(small.size) >= WORK_SIDE, mode
    assert shrink_for_work(Image.new("RGB", (10000, 3))).size == (10000, 3)  # thin: nothing to gain
    palette = Image.new("P", (2000, 2000), 7)
    palette.info["transparency"] = 7
    assert shrink_for_work(palette).info.get("transparency") == 7  # the transparent index survives

"""The teacher's pre-flight: what this server has for a lesson, checked before anyone presses Start.

A lesson stalls when a job fails for a reason known beforehand: no CIFAR-10 on the server, or a
pretrained backbone whose ImageNet weights cannot be downloaded (a classroom server is often
offline). So before the lesson the teacher sees the data found and, for each pretrained backbone,
whether the file Keras looks for is in its folder. For a missing file the teacher can

- install it through the page (`install_weights_file`): the file is checked against what Keras
  expects (its exact name, an HDF5 file, the published checksum where Keras has one, and that it
  loads as weights into the backbone built with random weights) before it goes into Keras's folder;
- or switch that backbone to weights "none" for the class (`switch_weights_none`): its runs then
  start from random numbers, so they learn slowly, but they run.

In classroom mode a run that still needs a missing file is never queued: `lab.jobs.queue.ask_for_run`
refuses it with `weights_refusal`'s sentence, and the Train page does not offer such a preset.
In a classroom the weights are fetched once, by the teacher, not by thirty jobs at the same time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab.classroom.limits import ClassLimits, fit_to_limits, load_limits, save_limits
from lab.config import INPUT_SIZES, PRESETS, PRETRAINED_BACKBONES, RunConfig, config_for_preset
from lab.data.cifar10 import describe_data_source
from lab.store.interface import RunStore
from lab.store.owners import Person, check_teacher

# Every HDF5 file starts with these eight bytes (the format's signature); Keras's ImageNet files are HDF5.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
WEIGHTS_NONE_NOTE = (
    'With weights "none" the backbone starts from random numbers instead of what it learned from a million '
    "ImageNet photos: the run still trains, but it learns slowly and scores far below the report's pretrained rows "
    "(a frozen random backbone learns almost nothing: only its new head trains)."
)


class NotReadyError(ValueError):
    """A run this server cannot start yet (a weights file is missing); the message says what the teacher can do."""


class WeightsFileRejected(ValueError):
    """An uploaded weights file that is not the one Keras expects; the message says why, in a sentence."""


@dataclass(frozen=True)
class BackboneWeights:
    """One pretrained backbone's ImageNet weights on this server."""

    backbone: str
    file_name: str  # the name Keras looks for (at the presets' input size)
    folder: Path  # where Keras looks for it
    found: Path | None  # where it lies, or None when it is missing
    switched_to_none: bool  # the teacher chose weights "none" for this backbone
    presets: tuple[str, ...]  # the presets that use it with ImageNet weights

    @property
    def ready(self) -> bool:
        return self.found is not None or self.switched_to_none


def data_status(data_dir: str | None = None) -> dict:
    """Where CIFAR-10 comes from on this server (lab.data.cifar10.describe_data_source): kind, path, found, message."""
    return describe_data_source(data_dir)


def weights_status(limits: ClassLimits, input_size: int = 32) -> list[BackboneWeights]:
    """Each pretrained backbone's ImageNet file at `input_size` (the presets' size): its name, its folder, found or not."""
    from lab.models.pretrained import cached_imagenet_weights, imagenet_weights_file, keras_home  # loads Keras: only when asked

    rows = []
    for backbone in PRETRAINED_BACKBONES:
        presets = tuple(
            name
            for name, preset in PRESETS.items()
            if preset["fields"].get("backbone") == backbone and preset["fields"].get("weights") == "imagenet"
        )
        rows.append(
            BackboneWeights(
                backbone=backbone,
                file_name=imagenet_weights_file(backbone, input_size).file_name,
                folder=keras_home() / "models",
                found=cached_imagenet_weights(backbone, input_size),
                switched_to_none=backbone in limits.weights_none,
                presets=presets,
            )
        )
    return rows


def weights_refusal(config: RunConfig) -> str | None:
    """Why `config` cannot start on this server because of its weights, in a sentence saying what to do; None when it can."""
    if not config.is_pretrained or config.weights == "none":
        return None
    if config.weights != "imagenet":
        if Path(config.weights).expanduser().is_file():
            return None
        return f"the weights file {config.weights} is not on this server: choose weights imagenet or none."
    from lab.models.pretrained import cached_imagenet_weights, imagenet_weights_file

    if cached_imagenet_weights(config.backbone, config.input_size) is not None:
        return None
    file_name = imagenet_weights_file(config.backbone, config.input_size).file_name
    return (
        f"{config.model} cannot start yet: the ImageNet weights for {config.backbone} ({file_name}) are not on this server. "
        'The teacher can provide the file on the Teacher page, or switch this backbone to weights "none" for the class.'
    )


def prepare_for_class(config: RunConfig, limits: ClassLimits) -> RunConfig:
    """`config` with the class's weights switch applied: a backbone the teacher switched to "none" starts from random numbers."""
    if config.weights == "imagenet" and config.backbone in limits.weights_none:
        return dataclasses.replace(config, weights="none")
    return config


def preset_refusal(name: str, limits: ClassLimits) -> str | None:
    """Why preset `name`, as the class would run it, cannot start on this server; None when it can."""
    if name not in PRESETS:
        return None
    return weights_refusal(fit_to_limits(config_for_preset(name), limits)[0])


def runnable_presets(limits: ClassLimits) -> list[str]:
    """The presets a student may be offered: those that can start on this server as the class runs them."""
    return [name for name in PRESETS if preset_refusal(name, limits) is None]


def switch_weights_none(store: RunStore, backbone: str, on: bool, *, by: Person) -> ClassLimits:
    """Switch `backbone` to weights "none" for the class (or back to ImageNet); only the teacher may."""
    check_teacher(by, "switch the class's pretrained weights")
    if backbone not in PRETRAINED_BACKBONES:
        raise ValueError(f"{backbone!r} is not a pretrained backbone; choose one of: {', '.join(PRETRAINED_BACKBONES)}.")
    limits = load_limits(store)
    chosen = set(limits.weights_none) | {backbone} if on else set(limits.weights_none) - {backbone}
    changed = dataclasses.replace(limits, weights_none=tuple(name for name in PRETRAINED_BACKBONES if name in chosen))
    save_limits(store, changed, by=by)
    return changed


def expected_file_names(backbone: str) -> set[str]:
    """Every name Keras may look for `backbone`'s ImageNet weights under (MobileNetV2 has one per published input size)."""
    from lab.models.pretrained import imagenet_weights_file

    return {imagenet_weights_file(backbone, size).file_name for size in INPUT_SIZES}


def install_weights_file(backbone: str, file_name: str, data: bytes, *, by: Person) -> Path:
    """Check an uploaded ImageNet weights file against what Keras expects, then put it where Keras looks; only the teacher may.

    Checked in order, each refusal a WeightsFileRejected with one sentence: the exact file name
    Keras looks for; the HDF5 signature; the checksum Keras verifies after a download, where it
    has one; and that it loads as weights into the backbone built with random weights (only
    arrays are read from it: no model, no code). Written beside its final place, then renamed, so
    Keras never sees half a file. Returns where it lies.
    """
    check_teacher(by, "install weights files")
    from lab.models.pretrained import build_pretrained_backbone, imagenet_weights_file, keras_home

    shown = repr(Path(str(file_name)).name[:80])
    expected = expected_file_names(backbone) if backbone in PRETRAINED_BACKBONES else set()
    if not expected:
        raise WeightsFileRejected(f"{backbone!r} has no ImageNet weights file: choose one of {', '.join(PRETRAINED_BACKBONES)}.")
    if file_name not in expected:
        wanted = imagenet_weights_file(backbone).file_name
        raise WeightsFileRejected(f"Keras looks for {backbone}'s ImageNet weights in a file named {wanted}; this one is called {shown}.")
    if not data.startswith(HDF5_SIGNATURE):
        raise WeightsFileRejected(f"{shown} is not an HDF5 (.h5) file, so it cannot hold Keras weights.")
    known_md5 = next(wanted.md5 for size in INPUT_SIZES if (wanted := imagenet_weights_file(backbone, size)).file_name == file_name)
    if known_md5 is not None and hashlib.md5(data).hexdigest() != known_md5:
        raise WeightsFileRejected(
            f"{shown} is not the ImageNet file Keras downloads (its checksum differs): download it again from "
            f"{imagenet_weights_file(backbone).url}"
        )
    folder = keras_home() / "models"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".upload-", suffix=".h5", dir=folder)  # Keras reads a .h5 name as weights
    except OSError as error:
        raise WeightsFileRejected(f"the server cannot write into {folder} ({error.strerror}): copy the file there by hand.") from error
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        backbone_model = build_pretrained_backbone(backbone, 32, None)  # random weights, the layers the lab builds
        try:
            backbone_model.load_weights(temporary)
        except Exception as error:  # noqa: BLE001 - h5py and Keras raise many kinds for a file that does not fit
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise WeightsFileRejected(f"{shown} does not load as {backbone} weights without the classifier top ({first_line}).") from error
        final = folder / file_name
        os.replace(temporary, final)
        return final
    finally:
        Path(temporary).unlink(missing_ok=True)

"""Pre-trained backbones from keras.applications, their preprocessing and their weight files.

Every pre-trained backbone is built the same way: with `weights=None` (random
numbers), then `backbone.load_weights(file)`. The file is the ImageNet download
(found in the Keras cache, or downloaded into it) or a file the user names. One
code path means the backbone has the same layers whatever its weights, so the
freeze-depth slider's layer numbers always mean the same thing.

Offline, the ImageNet download fails; `WeightsUnavailableError` then says which
file to fetch, from where, and where to put it, before any training starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

APPLICATIONS = {
    "vgg16": keras.applications.VGG16,
    "resnet50": keras.applications.ResNet50,
    "mobilenetv2": keras.applications.MobileNetV2,
    "efficientnetb0": keras.applications.EfficientNetB0,
}
# keras.applications refuses inputs smaller than this many pixels per side.
PRETRAINED_MIN_INPUT_SIZE = 32

# The ImageNet mean of each channel, in BGR order, on the 0-255 scale: what
# `keras.applications.vgg16.preprocess_input` (mode "caffe") subtracts.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
# The per-channel numbers Keras's EfficientNet divides by a second time when it
# loads ImageNet weights (see `efficientnet_imagenet_fix`).
EFFICIENTNET_IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)

GOOGLE_STORAGE = "https://storage.googleapis.com/"


class WeightsUnavailableError(RuntimeError):
    """Pre-trained weights could not be found or downloaded; the message says what to do."""


@dataclass(frozen=True)
class WeightsFile:
    """One ImageNet weight file of keras.applications, without the classifier top."""

    file_name: str  # the name Keras caches it under, in ~/.keras/models/
    url: str  # where Keras downloads it from
    md5: str | None  # the checksum Keras verifies after downloading (MobileNetV2 has none)


def imagenet_weights_file(backbone: str, input_size: int = 32) -> WeightsFile:
    """The file keras.applications downloads for `backbone` (names and checksums as in Keras 3.15)."""
    if backbone == "vgg16":
        name = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
        return WeightsFile(name, f"{GOOGLE_STORAGE}tensorflow/keras-applications/vgg16/{name}", "6d6bbae143d832006294945121d1f1fc")
    if backbone == "resnet50":
        name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
        return WeightsFile(name, f"{GOOGLE_STORAGE}tensorflow/keras-applications/resnet/{name}", "4d473c1dd8becc155b73f8504c6f6626")
    if backbone == "mobilenetv2":
        # MobileNetV2 was published for five input sizes; for any other size Keras
        # falls back to the 224-pixel weights (the convolutions fit every size).
        rows = input_size if input_size in (96, 128, 160, 192, 224) else 224
        name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
        return WeightsFile(name, f"{GOOGLE_STORAGE}tensorflow/keras-applications/mobilenet_v2/{name}", None)
    if backbone == "efficientnetb0":
        name = "efficientnetb0_notop.h5"
        return WeightsFile(name, f"{GOOGLE_STORAGE}keras-applications/{name}", "50bc09e76180e00e4465e1a485ddc09d")
    raise ValueError(f"backbone {backbone!r} has no ImageNet weights; choose one of: {', '.join(APPLICATIONS)}.")


def keras_home() -> Path:
    """The folder Keras caches downloads in: $KERAS_HOME, else ~/.keras."""
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()


def _cache_folders() -> list[Path]:
    # Keras falls back to /tmp/.keras when the home folder is read-only.
    return [keras_home() / "models", Path("/tmp/.keras/models")]


def resolve_weights(backbone: str, weights: str, input_size: int = 32) -> Path | None:
    """The weights file a backbone should load: None for "none", else an existing file.

    Raises WeightsUnavailableError when the file is missing and cannot be downloaded.
    """
    if weights == "none":
        return None
    if backbone not in APPLICATIONS:
        raise ValueError(
            f"weights {weights!r} only apply to pretrained backbones ({', '.join(APPLICATIONS)}); {backbone} learns from scratch."
        )
    if weights == "imagenet":
        return imagenet_weights_path(backbone, input_size)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(
            f"the weights file {path} does not exist. Give the path of a .h5 or .weights.h5 file "
            f"holding {backbone} weights (without the classifier top), or use weights 'imagenet' or 'none'."
        )
    return path


def cached_imagenet_weights(backbone: str, input_size: int = 32) -> Path | None:
    """Where the ImageNet file for `backbone` already lies in the Keras cache, or None."""
    file_name = imagenet_weights_file(backbone, input_size).file_name
    return next((folder / file_name for folder in _cache_folders() if (folder / file_name).is_file()), None)


def imagenet_weights_path(backbone: str, input_size: int = 32) -> Path:
    """The cached ImageNet file for `backbone`, downloading it first when it is not cached yet."""
    # An offline user who copied the file into the cache needs no network at all.
    cached = cached_imagenet_weights(backbone, input_size)
    if cached is not None:
        return cached
    wanted = imagenet_weights_file(backbone, input_size)
    try:
        downloaded = keras.utils.get_file(
            fname=wanted.file_name,
            origin=wanted.url,
            file_hash=wanted.md5,
            cache_dir=str(keras_home()),
            cache_subdir="models",
        )
    except Exception as error:  # Keras raises a bare Exception for URL errors, ValueError for a bad checksum.
        raise WeightsUnavailableError(offline_message(backbone, wanted, error)) from error
    return Path(downloaded)


def offline_message(backbone: str, wanted: WeightsFile, error: BaseException | None = None) -> str:
    """What a student can do when the ImageNet weights cannot be downloaded."""
    folder = keras_home() / "models"
    reason = f" ({str(error).strip().splitlines()[0]})" if error is not None and str(error).strip() else ""
    return (
        f"The ImageNet weights for {backbone} are not available: downloading {wanted.file_name} failed{reason}.\n"
        f"To use them without internet, download\n    {wanted.url}\n"
        f"on a machine that has internet and copy the file into {folder}/ (by default ~/.keras/models/), "
        f"or give its path as the weights setting (--weights /path/to/{wanted.file_name}).\n"
        'Or train without pre-trained weights: --weights none on the command line, or choose "none" under weights in the app.'
    )


@keras.saving.register_keras_serializable(package="lab")
class InferenceModeBackbone(keras.Model):
    """A pre-trained backbone that always runs its layers in inference mode.

    Fine-tuning unfreezes some layers, but their BatchNormalization statistics
    (moving mean and variance) should keep the values ImageNet taught them: a few
    noisy CIFAR batches would otherwise overwrite them and wreck the features
    (Keras transfer-learning guide). Inference mode does exactly that, while the
    unfrozen layers' weights, BatchNorm's scale and shift included, still learn.
    It also switches off the dropout inside EfficientNet's blocks.

    The guide's recipe, `backbone(x, training=False)`, is not enough in Keras 3:
    during `fit`, the outer model passes training=True down to every nested layer
    and overrides it (keras-team/keras#20285). So this model enforces it itself.
    """

    def call(self, inputs, training=None, mask=None, **kwargs):
        return super().call(inputs, training=False, mask=mask, **kwargs)


def build_pretrained_backbone(backbone: str, input_size: int, weights_path: Path | None) -> keras.Model:
    """A keras.applications network without its classifier top, named "backbone".

    With a weights file it comes back as an InferenceModeBackbone holding the same layers.
    """
    if input_size < PRETRAINED_MIN_INPUT_SIZE:
        raise ValueError(f"input_size must be at least {PRETRAINED_MIN_INPUT_SIZE} pixels for {backbone}; got {input_size}.")
    # Its input is named as the scratch backbones name theirs: Keras would number a default name per network built.
    images = keras.Input(shape=(input_size, input_size, 3), name="backbone_input")
    model = APPLICATIONS[backbone](include_top=False, weights=None, input_tensor=images, name="backbone")
    if weights_path is None:
        # Random weights have no statistics worth keeping: BatchNorm trains normally.
        return model
    load_backbone_weights(model, backbone, weights_path)
    return InferenceModeBackbone(model.input, model.output, name="backbone")


def load_backbone_weights(model: keras.Model, backbone: str, path: Path) -> None:
    """Load a weights file into a backbone, turning Keras's errors into advice."""
    try:
        model.load_weights(str(path))
    except (ValueError, KeyError) as error:
        raise ValueError(
            f"the weights file {path} does not fit the {backbone} backbone: {str(error).strip().splitlines()[0]} "
            f"It must hold keras.applications {backbone} weights without the classifier top "
            f"(for example {imagenet_weights_file(backbone).file_name})."
        ) from error
    except OSError as error:
        raise WeightsUnavailableError(
            f"the weights file {path} could not be read ({error}). If it is an interrupted download, delete it and try again."
        ) from error


@keras.saving.register_keras_serializable(package="lab")
class CaffePreprocess(layers.Layer):
    """VGG16's and ResNet50's `preprocess_input` ("caffe" mode) as a layer.

    These networks were trained in the Caffe framework on BGR images with the
    ImageNet mean subtracted, so their weights only make sense for inputs
    prepared the same way: swap RGB to BGR and subtract each channel's mean.
    A registered layer (not a Lambda) keeps the saved model loadable with safe_mode.
    """

    def call(self, images):
        images = ops.cast(images, self.compute_dtype)
        bgr = ops.flip(images, axis=-1)
        return bgr - ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def preprocessing_layers(backbone: str, model: keras.Model, pretrained: bool) -> list[layers.Layer]:
    """The layers that turn 0-255 RGB pixels into what `backbone` was trained on."""
    if backbone in ("vgg16", "resnet50"):
        return [CaffePreprocess(name="caffe_preprocess")]
    if backbone == "mobilenetv2":
        # Mode "tf" of preprocess_input: scale 0..255 to -1..1.
        return [layers.Rescaling(1 / 127.5, offset=-1.0, name="tf_preprocess")]
    if backbone == "efficientnetb0" and pretrained:
        return [efficientnet_imagenet_fix(model)]
    # EfficientNet rescales and normalises inside its own first layers.
    return []


def efficientnet_imagenet_fix(model: keras.Model) -> layers.Rescaling:
    """Reproduce the extra scaling Keras's EfficientNet adds only when it loads ImageNet weights.

    With `weights="imagenet"`, Keras inserts Rescaling(1/sqrt(s)) right after the
    backbone's Normalization layer (the ImageNet weights were trained that way,
    see tensorflow/tensorflow#49930). We build the backbone with weights=None, so
    the same scaling is applied in front of it instead. The backbone computes
    (x/255 - m)/sqrt(v) from its input x (m, v: the loaded mean and variance), so
    feeding it x' = (x - 255 m)/sqrt(s) + 255 m gives exactly
    (x/255 - m)/sqrt(v)/sqrt(s), the ImageNet model's value.
    """
    normalization = next(layer for layer in model.layers if isinstance(layer, layers.Normalization))
    mean_255 = 255.0 * np.asarray(normalization.adapt_mean).reshape(-1)
    scale = 1.0 / np.sqrt(np.asarray(EFFICIENTNET_IMAGENET_STDDEV_RGB))
    offset = mean_255 * (1.0 - scale)
    return layers.Rescaling(scale=scale.tolist(), offset=offset.tolist(), name="efficientnet_imagenet_fix")

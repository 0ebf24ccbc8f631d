"""Will a run fit in memory? A rough estimate before it starts, and a refusal that says what to change.

A run that needs more memory than the machine has does not fail politely: the
kernel's out-of-memory killer ends it, and on a small cloud machine (Streamlit
Community Cloud gives an app less than 2.7 GB) it can take the web server with it.
So `training.preflight` and the Train page estimate a run's peak first:

    TensorFlow and Keras themselves       TF_BASELINE_MB (measured: import, plus a small model)
  + the data set, as uint8                the loaded CIFAR-10 arrays, plus the task's own split of them
  + one batch's activations               batch x pixels x floats-per-pixel x 4 bytes (on a GPU they live
                                          in the GPU's memory instead, where running out is an error, not a kill)
  + the frozen backbone's features        when training uses the feature cache (float16 vectors)
  + weights, gradients, optimizer slots   parameters x 4 bytes x (2 + slots), plus a copy for weight averaging

"floats per pixel" is the sum of all the backbone's layer outputs per input pixel
(measured on the Keras 3.15 models; it hardly depends on the input size): the
backward pass needs them all. When the backbone only runs forward, about three of
its largest layer outputs are alive at once. The estimate was checked against measured
peaks (docs/DECISIONS.md, "The memory estimate"). It refuses runs that clearly will not
fit, such as VGG16 upscaled to 224 pixels on a small machine, never the classroom presets.

No TensorFlow here: the page and the command line can ask before anything is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lab.config import DEFAULT_FAST_CNN_WIDTH, OPTIMIZER_STATE, RunConfig
from lab.system import hardware

TF_BASELINE_MB = 800  # RSS of a process that imported TensorFlow + Keras and built a small model (2-core CPU, TF 2.21)
CIFAR10_TRAIN_IMAGES = 50_000
CIFAR10_TEST_IMAGES = 10_000
IMAGE_BYTES = 32 * 32 * 3  # one uint8 CIFAR-10 image
FLOAT_BYTES = 4
GRADIENT_FACTOR = 1.0  # activations kept for the backward pass (their gradients are freed as it goes)
FORWARD_FACTOR = 3.0  # a forward pass holds a layer's input, its output and a temporary
ATTENTION_COPIES = 3  # attention scores, their softmax and its gradient, per head and block (not layer outputs)
FEATURE_CACHE_BATCH = 256  # images per batch when lab/train/feature_cache.py computes features
EVALUATION_BATCH = 256  # images per batch when lab/evaluate/metrics.py predicts the test split
VIT_PATCH_SIZE, VIT_HEADS, VIT_DEPTH = 4, 4, 4  # as in lab/models/scratch.py
MB = 2**20
MEASURED_FAST_CNN_WIDTH = DEFAULT_FAST_CNN_WIDTH  # the fast-cnn width BACKBONES["fast-cnn"] was measured at


@dataclass(frozen=True)
class BackboneMemory:
    """What a backbone costs, measured once on the Keras 3.15 models (10 classes, linear head)."""

    params: int  # whole model's parameters
    floats_per_pixel: float  # sum of the backbone's layer outputs, per input pixel
    largest_per_pixel: float  # its largest single layer output, per input pixel
    feature_width: int  # numbers per image after global average pooling


BACKBONES: dict[str, BackboneMemory] = {
    "seed-cnn": BackboneMemory(356_810, 53, 28.1, 128),
    "fast-cnn": BackboneMemory(498_690, 198, 30.0, 128),  # at width 0.5 (MEASURED_FAST_CNN_WIDTH)
    "vit-tiny": BackboneMemory(545_930, 291, 16.0, 128),
    "vgg16": BackboneMemory(14_719_818, 304, 64.0, 512),
    "resnet50": BackboneMemory(23_608_202, 744, 20.2, 2048),
    "mobilenetv2": BackboneMemory(2_270_794, 443, 27.1, 1280),
    "efficientnetb0": BackboneMemory(4_062_381, 551, 27.1, 1280),
}


def backbone_memory(config: RunConfig) -> BackboneMemory:
    """The backbone's costs; a fast-cnn of another width scales from the measured half-width one.

    Layer outputs grow with the channel count (the width), parameters with its square.
    """
    facts = BACKBONES[config.backbone]
    if config.width is None or config.backbone != "fast-cnn":
        return facts
    scale = config.width / MEASURED_FAST_CNN_WIDTH
    return BackboneMemory(
        round(facts.params * scale**2), facts.floats_per_pixel * scale, facts.largest_per_pixel * scale, round(facts.feature_width * scale)
    )


def uses_feature_cache(config: RunConfig) -> bool:
    """The rule of lab.train.feature_cache.cache_decision, without importing Keras."""
    return config.is_pretrained and config.freeze_depth is None and not (config.augment or config.tta or config.fine_labels)


def estimate_parts_mb(
    config: RunConfig, n_train: int = CIFAR10_TRAIN_IMAGES, n_test: int = CIFAR10_TEST_IMAGES, *, on_gpu: bool = False
) -> dict[str, float]:
    """The estimate's parts in MB of host memory (see the module docstring); `n_train` is the data set's training images."""
    facts = backbone_memory(config)
    pixels = config.input_size**2
    used_train = min(config.subset or n_train, n_train)
    parts = {"TensorFlow": float(TF_BASELINE_MB)}
    # The whole data set stays loaded (a job worker keeps it for its next run), and the task's split is a copy.
    parts["data"] = ((n_train + n_test) + (used_train + n_test)) * IMAGE_BYTES / MB

    frozen = config.is_pretrained and config.freeze_depth is None
    forward_only = FORWARD_FACTOR * facts.largest_per_pixel * pixels * FLOAT_BYTES / MB  # per image
    if uses_feature_cache(config):
        training = FEATURE_CACHE_BATCH * forward_only
        parts["cached features"] = (used_train + n_test) * facts.feature_width * 2 / MB
    elif frozen:
        training = config.batch_size * forward_only
    else:
        training = config.batch_size * GRADIENT_FACTOR * facts.floats_per_pixel * pixels * FLOAT_BYTES / MB
        if config.backbone == "vit-tiny":  # attention scores: one tokens x tokens matrix per head and block
            tokens = (config.input_size // VIT_PATCH_SIZE) ** 2
            training += config.batch_size * ATTENTION_COPIES * VIT_HEADS * VIT_DEPTH * tokens**2 * FLOAT_BYTES / MB
    # Testing comes after training, so only the larger of the two counts.
    if not on_gpu:
        parts["activations"] = max(training, EVALUATION_BATCH * forward_only)

    head = facts.feature_width * (256 if config.head == "dense256" else 10)
    trainable = head if frozen else facts.params
    copies = 2 + OPTIMIZER_STATE[config.optimizer] + (1 if config.ema else 0)  # weights, gradients, slots, average
    parts["weights"] = (facts.params + trainable * (copies - 1)) * FLOAT_BYTES / MB
    return parts


def estimate_run_memory_mb(config: RunConfig, n_train: int = CIFAR10_TRAIN_IMAGES, *, on_gpu: bool = False) -> int:
    """Roughly how many MB of memory a run needs at its peak, TensorFlow included."""
    return math.ceil(sum(estimate_parts_mb(config, n_train, on_gpu=on_gpu).values()))


def check_fits(config: RunConfig, n_train: int = CIFAR10_TRAIN_IMAGES, available_mb: float | None = None, *, on_gpu: bool = False) -> None:
    """Raise ValueError (what to change, in a sentence) when a run will not fit in memory.

    `available_mb` defaults to `hardware.memory_budget_mb()`: what this machine has free, plus
    what this process already holds (a run reuses it). Where the free memory cannot
    be read, nothing is refused.
    """
    if available_mb is None:
        available_mb = hardware.memory_budget_mb()
    if available_mb is None:
        return
    parts = estimate_parts_mb(config, n_train, on_gpu=on_gpu)
    needed = sum(parts.values())
    if needed <= available_mb:
        return
    biggest = max((name for name in parts if name != "TensorFlow"), key=parts.get)
    raise ValueError(
        f"this run needs about {needed / 1024:.1f} GB of memory but the machine has {available_mb / 1024:.1f} GB free: "
        f"lower input_size ({config.input_size}), batch_size ({config.batch_size}) or subset "
        f"({config.subset or 'all'}) (the largest part is the {biggest}, about {parts[biggest] / 1024:.1f} GB)."
    )

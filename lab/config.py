"""RunConfig: one frozen dataclass that fully describes a training run.

Every field is typed, has a default, and carries its unit in a comment. A config
is validated in one place (`RunConfig.__post_init__`), so the app, the command
line and the job runner all refuse the same bad settings with the same message.
Change a config with `dataclasses.replace(config, epochs=5)`; that re-validates.

Presets are named recipes: `config_for_preset("vgg16-finetune", epochs=3)`
returns a RunConfig with that preset's architecture and optimiser settings and
your overrides on top.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# CIFAR-10's classes, in label order (label 0 is "airplane").
CLASS_NAMES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# Every CIFAR-10 image: 32 x 32 pixels, 3 colour channels (RGB), stored as uint8 0-255.
IMAGE_SHAPE = (32, 32, 3)

# The lab report's binary task: vehicles (label 1) against animals (label 0).
VEHICLE_CLASSES: tuple[str, ...] = ("airplane", "automobile", "ship", "truck")

# Architectures the model registry can build (see lab/models/registry.py).
SCRATCH_BACKBONES = ("seed-cnn", "fast-cnn", "vit-tiny")
PRETRAINED_BACKBONES = ("vgg16", "resnet50", "mobilenetv2", "efficientnetb0")
BACKBONES = SCRATCH_BACKBONES + PRETRAINED_BACKBONES

HEADS = ("linear", "dense256")  # linear: GAP + Dense; dense256: GAP + Dense256 relu + Dropout + Dense
OPTIMIZERS = ("adam", "adamw", "sgd", "muon")
# Numbers an optimiser keeps per learning parameter besides the weight and its gradient: Adam's
# two running averages (mean and mean square), or the one momentum of SGD and Muon.
OPTIMIZER_STATE = {"adam": 2, "adamw": 2, "sgd": 1, "muon": 1}
LR_SCHEDULES = ("constant", "cosine", "plateau", "onecycle", "linear")
INPUT_SIZES = (32, 64, 96, 128, 160, 224)  # pixels per side after upscaling inside the model
WEIGHT_CHOICES = ("imagenet", "none")  # or a path to a local weights file
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
# fast-cnn's channels relative to airbench94's: half on a CPU (lab/models/scratch.py has the speeds),
# 1.0 on a GPU. Allowed: from an eighth to twice airbench94's channels (32 to 512 in its widest blocks).
DEFAULT_FAST_CNN_WIDTH = 0.5
MIN_WIDTH, MAX_WIDTH = 0.125, 2.0


@dataclass(frozen=True)
class RunConfig:
    """Everything needed to reproduce one training run."""

    # What to learn.
    task: str = "cifar10"  # "cifar10" | "binary" (vehicles vs animals) | "pair:CLASS_A,CLASS_B" | "one-vs-rest:CLASS"
    model: str = "seed-cnn"  # the preset this run started from, or "custom"

    # The network.
    backbone: str = "seed-cnn"  # one of BACKBONES
    head: str = "linear"  # one of HEADS; only used by pretrained backbones
    freeze_depth: int | None = 0  # backbone layers kept frozen, from the input up; None = all
    input_size: int = 32  # pixels per side the backbone sees (images are upscaled inside the model)
    weights: str = "none"  # "imagenet" | "none" | path to a local weights file
    dropout: float = 0.5  # fraction of units dropped in the dense256 head
    width: float | None = None  # fast-cnn only: channels relative to airbench94; None = DEFAULT_FAST_CNN_WIDTH (0.5)

    # How to learn.
    epochs: int = 10  # passes over the training split
    batch_size: int = 64  # images per gradient step
    optimizer: str = "adam"  # one of OPTIMIZERS
    learning_rate: float = 1e-3  # peak learning rate
    weight_decay: float = 0.0  # decoupled weight decay (adamw) or L2 factor (sgd); 0 = off
    lr_schedule: str = "constant"  # one of LR_SCHEDULES
    label_smoothing: float = 0.0  # 0 = plain cross-entropy
    augment: bool = False  # random horizontal flip + translation (crop) during training
    tta: bool = False  # average predictions over the image and its mirror at test time
    ema: bool = False  # evaluate an exponential moving average of the weights (weight averaging)
    keep_best: bool = True  # keep the weights of the epoch with the best validation accuracy, not the last
    fine_labels: bool = False  # binary task only: also learn the 10 classes through a training-only output (lab/train/fine_labels.py)

    # Which data.
    subset: int | None = None  # training images drawn (stratified) before the split; None = all
    val_fraction: float = 0.1  # share of the training images held out for validation
    seed: int = 0  # seeds the subset, the split, shuffling, augmentation and initialisation

    # Hardware.
    precision: str = "auto"  # "auto": mixed_float16 on a GPU; on a CPU see lab/devices.choose_precision

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Build a config from a stored dict, ignoring keys this version does not know."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @property
    def is_pretrained(self) -> bool:
        return self.backbone in PRETRAINED_BACKBONES

    @property
    def class_names(self) -> tuple[str, ...]:
        """The task's class names, in label order."""
        return task_class_names(self.task)


ONE_VS_REST = "one-vs-rest:"  # a task's prefix: one CIFAR-10 class (label 1) against the nine others (label 0)


def task_class_names(task: str) -> tuple[str, ...]:
    """Class names of a task, in label order; raises ValueError for an unknown task."""
    if task == "cifar10":
        return CLASS_NAMES
    if task == "binary":
        return ("animal", "vehicle")
    if task.startswith(ONE_VS_REST):
        name = task[len(ONE_VS_REST) :].strip().lower()
        if name not in CLASS_NAMES:
            raise ValueError(
                f"task {task!r}: a one-vs-rest task names one CIFAR-10 class, for example 'one-vs-rest:cat'. "
                f"Known classes: {', '.join(CLASS_NAMES)}."
            )
        return (f"not {name}", name)
    if task.startswith("pair:"):
        names = [name.strip().lower() for name in task[len("pair:") :].split(",")]
        unknown = [name for name in names if name not in CLASS_NAMES]
        if len(names) != 2 or unknown or names[0] == names[1]:
            raise ValueError(
                f"task {task!r}: a pair task names two different CIFAR-10 classes, "
                f"for example 'pair:cat,dog'. Known classes: {', '.join(CLASS_NAMES)}."
            )
        return (names[0], names[1])
    raise ValueError(
        f"task {task!r} is unknown: use 'cifar10', 'binary' (vehicles vs animals), 'pair:CLASS_A,CLASS_B' "
        "(for example 'pair:cat,dog') or 'one-vs-rest:CLASS' (for example 'one-vs-rest:cat')."
    )


# The lab report's "binary" run: one class against the other nine, not vehicles vs animals. Its log (training and
# test accuracy after each of its 5 epochs) fits this class best of the ten (docs/DECISIONS.md, "The report's binary task").
REPORT_BINARY_TASK = "one-vs-rest:ship"
REPORT_BINARY_EPOCHS = 5


def groups_every_class(task: str) -> bool:
    """Whether a two-label task sorts all ten classes into its two groups (so it trains on every image)."""
    return task == "binary" or task.startswith(ONE_VS_REST)


def positive_class(task: str) -> int | None:
    """The label of the one class a one-vs-rest task looks for (1), or None for a task without one."""
    return 1 if task.startswith(ONE_VS_REST) else None


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def validate(config: RunConfig) -> None:
    """Refuse settings that cannot work, naming the setting and its valid range (the first one found)."""
    _validate_network(config)
    _validate_training(config)
    _validate_data(config)


def _validate_network(config: RunConfig) -> None:
    """The task, and the network that learns it: preset, backbone, head, frozen layers, input size, weights, width."""
    task_class_names(config.task)
    _check(config.backbone in BACKBONES, f"backbone {config.backbone!r} is unknown; choose one of: {', '.join(BACKBONES)}.")
    _check(
        config.model == "custom" or config.model in PRESETS,
        f"model {config.model!r} is unknown; choose a preset ({', '.join(PRESETS)}) or 'custom'.",
    )
    _check(config.head in HEADS, f"head {config.head!r} is unknown; choose one of: {', '.join(HEADS)}.")
    _check(
        config.freeze_depth is None or (isinstance(config.freeze_depth, int) and config.freeze_depth >= 0),
        f"freeze_depth must be a whole number >= 0 (0 = every layer learns) or 'all'; got {config.freeze_depth!r}.",
    )
    _check(config.input_size in INPUT_SIZES, f"input_size must be one of {INPUT_SIZES} pixels; got {config.input_size!r}.")
    if config.backbone == "vit-tiny":
        _check(config.input_size % 4 == 0, "input_size must be a multiple of the ViT patch size (4).")
    _check(
        config.weights in WEIGHT_CHOICES or config.weights.endswith((".h5", ".keras")),
        f"weights must be 'imagenet', 'none' or a path to a .h5 / .weights.h5 file; got {config.weights!r}.",
    )
    _check(
        config.weights == "none" or config.is_pretrained,
        f"weights {config.weights!r} only apply to pretrained backbones ({', '.join(PRETRAINED_BACKBONES)}); "
        f"{config.backbone} is trained from scratch, so use weights 'none'.",
    )
    _check(0.0 <= config.dropout < 1.0, f"dropout must be in [0, 1); got {config.dropout!r}.")
    if config.width is not None:
        _check(
            config.backbone == "fast-cnn",
            f"width only applies to the fast-cnn backbone (its channel count); {config.backbone} has a fixed shape, so leave width unset.",
        )
        _check(
            isinstance(config.width, int | float) and MIN_WIDTH <= config.width <= MAX_WIDTH,
            f"width must be from {MIN_WIDTH} to {MAX_WIDTH} (1.0 = airbench94's channels, 0.5 = half, the CPU default); got {config.width!r}.",
        )


def _validate_training(config: RunConfig) -> None:
    """How it learns: epochs, batch size, optimiser, learning rate and its schedule, regularisation, fine labels."""
    _check(
        isinstance(config.epochs, int) and 1 <= config.epochs <= 1000,
        f"epochs must be a whole number from 1 to 1000; got {config.epochs!r}.",
    )
    _check(
        isinstance(config.batch_size, int) and 1 <= config.batch_size <= 4096,
        f"batch_size must be from 1 to 4096 images; got {config.batch_size!r}.",
    )
    _check(config.optimizer in OPTIMIZERS, f"optimizer {config.optimizer!r} is unknown; choose one of: {', '.join(OPTIMIZERS)}.")
    _check(
        not (config.optimizer == "muon" and config.is_pretrained and config.weights != "none" and config.freeze_depth is not None),
        "optimizer 'muon' rescales every convolution filter it trains to a fixed size, which would erase what pretrained "
        "filters learned; fine-tune a pretrained backbone with sgd or adam, or freeze the whole backbone.",
    )
    _check(0.0 < config.learning_rate <= 10.0, f"learning_rate must be > 0 and <= 10; got {config.learning_rate!r}.")
    _check(0.0 <= config.weight_decay < 1.0, f"weight_decay must be in [0, 1); got {config.weight_decay!r}.")
    _check(config.lr_schedule in LR_SCHEDULES, f"lr_schedule {config.lr_schedule!r} is unknown; choose one of: {', '.join(LR_SCHEDULES)}.")
    _check(0.0 <= config.label_smoothing < 0.5, f"label_smoothing must be in [0, 0.5); got {config.label_smoothing!r}.")
    _check(
        not config.fine_labels or groups_every_class(config.task),
        f"fine_labels only applies to the binary task or a one-vs-rest task, whose two labels group the 10 classes; "
        f"task {config.task!r} has no finer labels.",
    )


def _validate_data(config: RunConfig) -> None:
    """What it learns from, and how it is computed: the validation split, the subset, the seed, the precision."""
    _check(0.0 < config.val_fraction < 0.5, f"val_fraction must be between 0 and 0.5 (exclusive); got {config.val_fraction!r}.")
    num_classes = len(task_class_names(config.task))
    if config.subset is not None:
        _check(isinstance(config.subset, int), f"subset must be a whole number of images; got {config.subset!r}.")
        smallest = max(10 * num_classes, 20)
        _check(
            config.subset >= smallest,
            f"subset must be at least {smallest} images for task {config.task!r} (a few per class); got {config.subset}.",
        )
        train_images = int(config.subset * (1 - config.val_fraction))
        _check(
            config.batch_size <= train_images,
            f"batch_size ({config.batch_size}) is larger than the {train_images} training images the subset leaves; lower batch_size or raise subset.",
        )
    _check(isinstance(config.seed, int) and config.seed >= 0, f"seed must be a whole number >= 0; got {config.seed!r}.")
    _check(config.precision in PRECISIONS, f"precision {config.precision!r} is unknown; choose one of: {', '.join(PRECISIONS)}.")


# The fast from-scratch recipe, after airbench94 (Keller Jordan, 2024; the CIFAR-10 speed record):
# its network (lab/models/scratch.py), a high learning rate decaying linearly to zero, strong
# weight decay, batch 1024, label smoothing 0.2, flip + 2-pixel shift augmentation, lookahead
# weight averaging (lab/train/schedules.py) and test-time augmentation over mirror images and 1-pixel
# shifts (lab/evaluate/metrics.py). The optimiser is the record's later Muon (lab/train/muon.py): SGD with
# Nesterov momentum, whose convolution steps are orthogonalised; it reaches in fewer epochs what
# SGD reaches (docs/DECISIONS.md, "Muon for the convolution filters"). Only 2%
# of the training images are held out for validation: this recipe keeps its last weights, so
# validation only reports progress.
FAST_RECIPE: dict[str, Any] = {
    "backbone": "fast-cnn",
    "batch_size": 1024,
    "optimizer": "muon",
    # For the weights that are not convolutions (batch norm shifts, the classifier): airbench94's
    # 11.5 "per 1,024 examples" with momentum 0.85, restated for Keras' SGD (mean loss, momentum
    # 0.9): the same step size once momentum has built up. Muon's filter steps follow its schedule.
    "learning_rate": 1.0,
    "weight_decay": 0.013,  # per step at the peak learning rate, about airbench94's 0.0153 per 1,024 images
    # Straight down from the peak, as the record's Muon version does: no warm-up steps at a small
    # rate, which a run of a few epochs cannot spare (docs/DECISIONS.md, "Learning-rate schedule").
    "lr_schedule": "linear",
    "label_smoothing": 0.2,
    "augment": True,
    "tta": True,
    "ema": True,
    "keep_best": False,
    "val_fraction": 0.02,
}

# Named recipes. The first five and "seed-cnn" on the binary task reproduce the lab
# report; "fast-cnn" and "quick-demo" go beyond it. Each entry holds only the fields
# that differ from RunConfig's defaults, plus a one-line description for the UI.
PRESETS: dict[str, dict[str, Any]] = {
    "seed-cnn": {
        "description": "The report's small CNN from scratch: 3 conv + 2 dense layers (356,810 parameters).",
        "fields": {"backbone": "seed-cnn", "freeze_depth": 0, "weights": "none"},
    },
    "vgg16-frozen": {
        "description": "VGG16 pre-trained on ImageNet, base frozen, new GAP + Dense head.",
        "fields": {"backbone": "vgg16", "freeze_depth": None, "weights": "imagenet"},
    },
    "resnet50-frozen": {
        "description": "ResNet50 pre-trained on ImageNet, base frozen, new GAP + Dense head.",
        "fields": {"backbone": "resnet50", "freeze_depth": None, "weights": "imagenet"},
    },
    "mobilenetv2-frozen": {
        "description": "MobileNetV2 pre-trained on ImageNet, base frozen, new GAP + Dense head.",
        "fields": {"backbone": "mobilenetv2", "freeze_depth": None, "weights": "imagenet"},
    },
    "vgg16-finetune": {
        "description": "VGG16 fine-tuned: blocks 4-5 learn, Dense 256 + dropout head, learning rate 1e-4.",
        # VGG16's first 11 layers (input + blocks 1-3) stay frozen; blocks 4 and 5 learn.
        "fields": {
            "backbone": "vgg16",
            "freeze_depth": 11,
            "weights": "imagenet",
            "head": "dense256",
            "dropout": 0.5,
            "learning_rate": 1e-4,
        },
    },
    "fast-cnn": {
        "description": "The CIFAR-10 speed record's network and tricks (airbench94, at three-quarter width on a CPU): "
        "whitening layer, flip + shift augmentation, Muon, linearly decaying learning rate, label smoothing, weight averaging, "
        "test-time augmentation. About 90% in about 10 minutes on a CPU with bfloat16 instructions (AVX512-BF16 or AMX); "
        "about three times as long on most laptops (AVX2), where width 0.5 and 6 epochs reach about 87% in 10 minutes.",
        # Three-quarter width for 9 epochs beat full width for fewer epochs and half width for more in
        # about the same time: wide enough to keep learning, narrow enough for 9 passes over the data
        # (docs/DECISIONS.md, "fast-cnn at three-quarter width for 9 epochs").
        "fields": {**FAST_RECIPE, "width": 0.75, "epochs": 9},
    },
    "fast-cnn-full": {
        "description": "airbench94's own network and 8 epochs of Muon, as in the speed record (airbench94_muon): the one to "
        "run on a GPU (seconds there). On a 2-core CPU it takes about a quarter of an hour and more memory than "
        "Streamlit Community Cloud leaves beside the app.",
        # On the JPEG copy of CIFAR-10 in ../shared it stops short of the record's accuracy on the original
        # data (docs/DECISIONS.md, "The gap to 94%").
        "fields": {**FAST_RECIPE, "width": 1.0, "epochs": 8},
    },
    "fast-cnn-quick": {
        "description": "The fast recipe cut down for a classroom: a quarter-width network, 3 epochs, about 80% in about 2 minutes "
        "on a laptop CPU.",
        # A quarter of airbench94's channels trains faster per image than half width, so a 2-minute budget
        # buys whole epochs of the full set at batch 512 (learning rate halved with the batch: the same step
        # per image); 3 epochs, not 4, so that a CPU without bfloat16 instructions (most laptops) also
        # finishes in about 2 minutes (docs/DECISIONS.md, "fast-cnn-quick").
        "fields": {**FAST_RECIPE, "width": 0.25, "epochs": 3, "batch_size": 512, "learning_rate": FAST_RECIPE["learning_rate"] / 2},
    },
    "quick-demo": {
        "description": "A classroom demo: 3 epochs on a 10,000-image subset, under a minute on a laptop CPU.",
        "fields": {"backbone": "seed-cnn", "subset": 10000, "epochs": 3, "batch_size": 64},
    },
}


def config_for_preset(name: str, **overrides: Any) -> RunConfig:
    """A RunConfig for preset `name`, with `overrides` applied on top."""
    if name not in PRESETS:
        raise ValueError(f"model {name!r} is unknown; choose a preset: {', '.join(PRESETS)}.")
    fields = {"model": name, **PRESETS[name]["fields"], **overrides}
    return RunConfig(**fields)

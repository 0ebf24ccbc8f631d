"""The network of a run, written out as plain Keras code a student can read, layer by layer.

`network_code(config, num_classes)` returns Python source that defines `build_network()`: the same
layers, in the same order, with the same names and sizes as lab/models/registry.py builds for that
config (tests/test_notebook.py checks the parameter count). Where the app uses a layer of its own,
the code carries that layer's source (through `helper_sources`), so it runs with only TensorFlow.
The app's faster training versions of batch norm and GELU (lab/models/fused_layers.py) compute the
same numbers as Keras' own layers, so the code uses Keras' own.
"""

from __future__ import annotations

import inspect
import textwrap

from lab.config import DEFAULT_FAST_CNN_WIDTH, IMAGE_SHAPE, RunConfig
from lab.models import pretrained, scratch


def source_of(*objects) -> str:
    """The source code of functions and classes of this project, as they are, one after the other."""
    return "\n\n".join(textwrap.dedent(inspect.getsource(item)).strip() for item in objects)


def helper_sources(config: RunConfig) -> list[str]:
    """The lab's own layers the network code needs, as source, with the constants they use."""
    parts: list[str] = []
    if config.backbone == "fast-cnn":
        parts.append(
            f"WHITENING_PATCH_SIZE = {scratch.WHITENING_PATCH_SIZE}\n"
            f"WHITENING_EPSILON = {scratch.WHITENING_EPSILON!r}\n\n" + source_of(scratch.DiracInitializer, scratch.PatchWhitening)
        )
    if config.backbone == "vit-tiny":
        parts.append(source_of(scratch.PositionEmbedding))
    if config.backbone in ("vgg16", "resnet50"):
        parts.append(f"IMAGENET_BGR_MEAN = {pretrained.IMAGENET_BGR_MEAN!r}\n\n" + source_of(pretrained.CaffePreprocess))
    if config.is_pretrained and config.weights != "none":
        parts.append(source_of(pretrained.InferenceModeBackbone))
    return parts


def network_code(config: RunConfig, num_classes: int) -> str:
    """Source of `build_backbone()` and `build_network()` for `config`'s network."""
    return _backbone_code(config) + "\n\n\n" + _network_code(config, num_classes)


def _backbone_code(config: RunConfig) -> str:
    size = config.input_size
    if config.backbone == "seed-cnn":
        return f'''def build_backbone():
    """The lab report's CNN: three 3x3 convolutions, the first two followed by 2x2 max pooling."""
    images = keras.Input(shape=({size}, {size}, 3), name="backbone_input")
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(images)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    features = layers.Conv2D(128, 3, activation="relu", name="conv3")(x)
    return keras.Model(images, features, name="backbone")'''
    if config.backbone == "fast-cnn":
        width = config.width if config.width is not None else DEFAULT_FAST_CNN_WIDTH
        widths = {block: max(8, round(channels * width)) for block, channels in scratch.FAST_CNN_WIDTHS.items()}
        blocks = ", ".join(f'("{block}", {filters})' for block, filters in widths.items())
        return f'''def build_backbone():
    """airbench94's network at width {width}: fixed whitening, then three blocks of two 3x3 convolutions."""
    images = keras.Input(shape=({size}, {size}, 3), name="backbone_input")
    x = PatchWhitening(name="whitening")(images)
    x = layers.Activation("gelu", name="whitening_gelu")(x)
    for block, filters in ({blocks}):
        for step in (1, 2):
            # No bias: batch norm's shift (beta) does its job. Dirac: each filter starts as "copy one channel".
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=DiracInitializer(), name=f"{{block}}_conv{{step}}")(x)
            if step == 1:
                x = layers.MaxPooling2D(2, name=f"{{block}}_pool")(x)  # halve the picture: 31 -> 15 -> 7 -> 3
            # momentum {scratch.FAST_CNN_BN_MOMENTUM}: batch norm's running statistics keep up with weights that change fast.
            x = layers.BatchNormalization(momentum={scratch.FAST_CNN_BN_MOMENTUM}, epsilon=1e-5, scale=False, name=f"{{block}}_bn{{step}}")(x)
            x = layers.Activation("gelu", name=f"{{block}}_gelu{{step}}")(x)
    return keras.Model(images, x, name="backbone")'''
    if config.backbone == "vit-tiny":
        tokens = (size // scratch.VIT_PATCH_SIZE) ** 2
        dim, heads, mlp = scratch.VIT_DIM, scratch.VIT_HEADS, scratch.VIT_MLP_DIM
        return f'''def transformer_block(tokens, name):
    """One pre-norm encoder block: attention, then an MLP, each added back onto its input."""
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{{name}}_norm1")(tokens)
    x = layers.MultiHeadAttention(num_heads={heads}, key_dim={dim // heads}, name=f"{{name}}_attention")(x, x)
    tokens = layers.Add(name=f"{{name}}_add1")([tokens, x])
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{{name}}_norm2")(tokens)
    x = layers.Dense({mlp}, activation="gelu", name=f"{{name}}_mlp1")(x)
    x = layers.Dense({dim}, name=f"{{name}}_mlp2")(x)
    return layers.Add(name=f"{{name}}_add2")([tokens, x])


def build_backbone():
    """A tiny Vision Transformer: {scratch.VIT_PATCH_SIZE}x{scratch.VIT_PATCH_SIZE} patches become {tokens} tokens, then {scratch.VIT_DEPTH} encoder blocks."""
    images = keras.Input(shape=({size}, {size}, 3), name="backbone_input")
    # A convolution whose stride equals its size cuts the picture into patches and turns each into {dim} numbers.
    patches = layers.Conv2D({dim}, {scratch.VIT_PATCH_SIZE}, strides={scratch.VIT_PATCH_SIZE}, name="patch_embedding")(images)
    tokens = layers.Reshape(({tokens}, {dim}), name="patch_tokens")(patches)
    tokens = PositionEmbedding(name="position_embedding")(tokens)
    for block in range(1, {scratch.VIT_DEPTH + 1}):
        tokens = transformer_block(tokens, f"block{{block}}")
    features = layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")(tokens)
    return keras.Model(images, features, name="backbone")'''
    return _pretrained_backbone_code(config)


APPLICATION_NAMES = {"vgg16": "VGG16", "resnet50": "ResNet50", "mobilenetv2": "MobileNetV2", "efficientnetb0": "EfficientNetB0"}


def _pretrained_backbone_code(config: RunConfig) -> str:
    size, name = config.input_size, APPLICATION_NAMES[config.backbone]
    build = f'    backbone = keras.applications.{name}(include_top=False, weights=None, input_shape=({size}, {size}, 3), name="backbone")'
    if config.weights == "none":
        return f'''def build_backbone():
    """keras.applications' {name} without its classifier, starting from random numbers."""
{build}
    return backbone'''
    if config.weights == "imagenet":
        wanted = pretrained.imagenet_weights_file(config.backbone, size)
        file_hash = f'"{wanted.md5}"' if wanted.md5 else "None"
        fetch = (
            f'    weights_file = keras.utils.get_file("{wanted.file_name}", "{wanted.url}", file_hash={file_hash}, cache_subdir="models")'
        )
    else:
        fetch = f"    weights_file = {config.weights!r}  # the weights file this run started from: copy it next to this code"
    return f'''def build_backbone():
    """keras.applications' {name} without its classifier, starting from weights learned on ImageNet."""
{build}
{fetch}
    backbone.load_weights(weights_file)
    # Batch norm keeps ImageNet's statistics even where the backbone learns (see InferenceModeBackbone).
    return InferenceModeBackbone(backbone.input, backbone.output, name="backbone")'''


def _preprocessing_lines(config: RunConfig) -> list[str]:
    lines = []
    if config.input_size != IMAGE_SHAPE[0]:
        size = config.input_size
        lines.append(
            f'    x = layers.Resizing({size}, {size}, interpolation="bilinear", name="upscale")(x)  # the backbone sees {size}x{size}'
        )
    if config.backbone in ("seed-cnn", "fast-cnn", "vit-tiny"):
        lines.append('    x = layers.Rescaling(1 / 255, name="rescale")(x)  # pixels 0-255 become 0-1')
    elif config.backbone in ("vgg16", "resnet50"):
        lines.append('    x = CaffePreprocess(name="caffe_preprocess")(x)  # RGB to BGR, minus ImageNet\'s mean colour')
    elif config.backbone == "mobilenetv2":
        lines.append('    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="tf_preprocess")(x)  # pixels 0-255 become -1..1')
    elif config.weights != "none":  # efficientnetb0 with loaded weights: lab/models/pretrained.efficientnet_imagenet_fix
        lines += [
            "    # Keras' EfficientNet divides by ImageNet's spread once more when it loads ImageNet weights itself;",
            "    # the weights were trained that way, so the same scaling goes in front of the backbone.",
            "    mean_255 = 255.0 * np.asarray(next(layer for layer in backbone.layers if isinstance(layer, layers.Normalization)).adapt_mean).reshape(-1)",
            f"    scale = 1.0 / np.sqrt(np.asarray({pretrained.EFFICIENTNET_IMAGENET_STDDEV_RGB!r}))",
            '    x = layers.Rescaling(scale=scale.tolist(), offset=(mean_255 * (1.0 - scale)).tolist(), name="efficientnet_imagenet_fix")(x)',
        ]
    return lines


def _head_lines(config: RunConfig) -> list[str]:
    if config.backbone == "seed-cnn":
        return ['    x = layers.Flatten(name="flatten")(features)', '    x = layers.Dense(128, activation="relu", name="dense128")(x)']
    if config.backbone == "fast-cnn":
        return [
            '    x = layers.GlobalMaxPooling2D(name="global_max_pool")(features)  # "does this feature appear anywhere?"',
            f'    x = layers.Rescaling({scratch.FAST_CNN_HEAD_SCALE!r}, name="head_scale")(x)  # a smaller output scale trains faster',
        ]
    if config.backbone == "vit-tiny":
        return ['    x = layers.GlobalAveragePooling1D(name="token_average")(features)']
    lines = ['    x = layers.GlobalAveragePooling2D(name="global_average_pool")(features)']
    if config.head == "dense256":
        lines += [
            '    x = layers.Dense(256, activation="relu", name="dense256")(x)',
            f'    x = layers.Dropout({config.dropout!r}, name="dropout")(x)',
        ]
    return lines


def _freeze_lines(config: RunConfig) -> list[str]:
    if config.freeze_depth is None:
        return ["    backbone.trainable = False  # the whole backbone stays as it is: only the head learns"]
    if config.freeze_depth == 0:
        return []
    return [
        f"    # The first {config.freeze_depth} layers of the backbone stay as they are; the layers after them learn.",
        "    for index, layer in enumerate(backbone.layers):",
        f"        layer.trainable = index >= {config.freeze_depth}",
    ]


def _network_code(config: RunConfig, num_classes: int) -> str:
    units = 1 if num_classes == 2 else num_classes
    activation = "sigmoid" if units == 1 else "softmax"
    meaning = "the probability of the second class" if units == 1 else "one probability per class"
    pretrained_start = config.is_pretrained and config.weights != "none"
    call = "backbone(x, training=False)" if pretrained_start else "backbone(x)"
    lines = [
        "def build_network():",
        '    """Pictures in (32x32 RGB, numbers 0-255), probabilities out: preprocessing, backbone, head."""',
        '    images = keras.Input(shape=(32, 32, 3), dtype="float32", name="image")',
        "    x = images",
        "    backbone = build_backbone()",
        *_freeze_lines(config),
        *_preprocessing_lines(config),
        f"    features = {call}",
        *_head_lines(config),
        f"    # {units} output{'s' if units > 1 else ''}: {meaning}.",
        f'    outputs = layers.Dense({units}, activation="{activation}", dtype="float32", name="predictions")(x)',
        f'    return keras.Model(images, outputs, name="{config.backbone.replace("-", "_")}_classifier")',
    ]
    return "\n".join(lines)

"""Backbones trained from scratch: the report's seed CNN, a fast ResNet-style CNN and a tiny ViT.

A backbone is a nested Keras model named "backbone" that turns preprocessed
images into features; lab/models.py puts the preprocessing in front of it and
a classification head behind it. Each builder here returns only the backbone,
so the freeze-depth slider and the layer table can count its layers.

The pre-trained backbones (VGG16, ResNet50, ...) live in lab/pretrained.py.
"""

from __future__ import annotations

import keras
from keras import layers, ops

# The smallest input (pixels per side) each from-scratch backbone can shrink to a
# non-empty feature map. The seed CNN loses 2 pixels per 3x3 "valid" convolution
# and halves the size at each pooling step (18 -> 16 -> 8 -> 6 -> 3 -> 1); the fast
# CNN halves it three times; the ViT needs at least one 4x4 patch.
SCRATCH_MIN_INPUT_SIZE = {"seed-cnn": 18, "fast-cnn": 8, "vit-tiny": 4}

# fast-cnn: the channel widths of the ResNet-9 design that trains CIFAR-10 to about
# 94% in a few GPU minutes (stem, then three stages), scaled by a multiplier.
# Training speed measured on this project's 2-core CPU (batch 64, float32):
#   x1.0  (64/128/256/512 channels, 6.6 M parameters):  ~31 images/s, 24 min per 45k-image epoch
#   x0.5  (32/64/128/256 channels,  1.6 M parameters): ~150 images/s,  5 min per epoch
#   x0.25 (16/32/64/128 channels,   0.4 M parameters): ~370 images/s,  2 min per epoch
# 0.5 keeps the design's depth at a CPU-friendly cost (how much accuracy each width
# gives up is for bench/ to measure); on a GPU, set it to 1.0 for the full network.
FAST_CNN_WIDTHS = {"stem": 64, "stage1": 128, "stage2": 256, "stage3": 512}
FAST_CNN_WIDTH_MULTIPLIER = 0.5
# Short runs need BatchNorm's moving averages to catch up quickly, so they forget
# 10% of the old value per step instead of Keras's default 1%.
FAST_CNN_BN_MOMENTUM = 0.9

# vit-tiny: 4x4-pixel patches (64 tokens for a 32x32 image), 128 numbers per token,
# 4 encoder blocks with 4 attention heads and a 256-unit MLP.
VIT_PATCH_SIZE = 4
VIT_DIM = 128
VIT_DEPTH = 4
VIT_HEADS = 4
VIT_MLP_DIM = 256


@keras.saving.register_keras_serializable(package="lab")
class PositionEmbedding(layers.Layer):
    """Adds a learned vector to every token, so attention can tell where each patch came from.

    Self-attention treats its tokens as an unordered set; without this, a ViT could
    not tell the top-left patch from the bottom-right one.
    """

    def __init__(self, initializer_stddev: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.initializer_stddev = initializer_stddev

    def build(self, input_shape):
        num_tokens, dim = input_shape[-2], input_shape[-1]
        self.embedding = self.add_weight(
            name="embedding",
            shape=(num_tokens, dim),
            initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_stddev),
        )

    def call(self, tokens):
        # Inside call, Keras casts the float32 weight to the layer's compute dtype
        # (float16 under mixed precision), so the sum has one dtype.
        return tokens + ops.expand_dims(self.embedding, axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "initializer_stddev": self.initializer_stddev}


def build_scratch_backbone(name: str, input_size: int) -> keras.Model:
    """The from-scratch backbone called `name`, for square images of `input_size` pixels."""
    builders = {"seed-cnn": seed_cnn_backbone, "fast-cnn": fast_cnn_backbone, "vit-tiny": vit_tiny_backbone}
    return builders[name](input_size)


def seed_cnn_backbone(input_size: int = 32) -> keras.Model:
    """The lab report's CNN: three 3x3 convolutions, the first two followed by 2x2 max pooling."""
    images = keras.Input(shape=(input_size, input_size, 3), name="backbone_input")
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(images)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    features = layers.Conv2D(128, 3, activation="relu", name="conv3")(x)
    return keras.Model(images, features, name="backbone")


def _conv_bn_relu(x, filters: int, name: str):
    # The bias is left out because BatchNormalization's own shift (beta) replaces it.
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=FAST_CNN_BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _fast_cnn_stage(x, filters: int, name: str, *, residual: bool):
    """Conv-BN-ReLU, halve the size with max pooling, then (optionally) a two-conv residual block."""
    x = _conv_bn_relu(x, filters, name)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    if residual:
        shortcut = x
        x = _conv_bn_relu(x, filters, f"{name}_res1")
        x = _conv_bn_relu(x, filters, f"{name}_res2")
        # Adding the input back lets the gradient skip the two convolutions, which
        # is what makes deeper networks train quickly.
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def fast_cnn_backbone(input_size: int = 32, width_multiplier: float | None = None) -> keras.Model:
    """A ResNet-9 style CNN (David Page's DAWNBench design, the ancestor of airbench).

    stem conv -> stage 1 (conv, pool, residual) -> stage 2 (conv, pool) -> stage 3
    (conv, pool, residual). The head (global max pooling + Dense) is added by lab/models.py.
    """
    if width_multiplier is None:
        width_multiplier = FAST_CNN_WIDTH_MULTIPLIER  # read at call time, so changing the constant takes effect
    widths = {part: max(8, round(width * width_multiplier)) for part, width in FAST_CNN_WIDTHS.items()}
    images = keras.Input(shape=(input_size, input_size, 3), name="backbone_input")
    x = _conv_bn_relu(images, widths["stem"], "stem")
    x = _fast_cnn_stage(x, widths["stage1"], "stage1", residual=True)
    x = _fast_cnn_stage(x, widths["stage2"], "stage2", residual=False)
    features = _fast_cnn_stage(x, widths["stage3"], "stage3", residual=True)
    return keras.Model(images, features, name="backbone")


def _transformer_block(tokens, name: str):
    """One pre-norm encoder block: attention, then an MLP, each wrapped in a residual sum."""
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(tokens)
    x = layers.MultiHeadAttention(num_heads=VIT_HEADS, key_dim=VIT_DIM // VIT_HEADS, name=f"{name}_attention")(x, x)
    tokens = layers.Add(name=f"{name}_add1")([tokens, x])
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(tokens)
    x = layers.Dense(VIT_MLP_DIM, activation="gelu", name=f"{name}_mlp1")(x)
    x = layers.Dense(VIT_DIM, name=f"{name}_mlp2")(x)
    return layers.Add(name=f"{name}_add2")([tokens, x])


def vit_tiny_backbone(input_size: int = 32) -> keras.Model:
    """A small Vision Transformer: 4x4 patches -> tokens + positions -> 4 encoder blocks.

    The output is one 128-number vector per patch; the head averages them. Attention
    compares every token with every other, so its cost grows with the square of the
    token count: 64 tokens at 32x32, but 3,136 at 224x224, which is far too slow on a CPU.
    """
    if input_size % VIT_PATCH_SIZE:
        raise ValueError(f"input_size must be a multiple of the ViT patch size ({VIT_PATCH_SIZE}); got {input_size}.")
    num_patches = (input_size // VIT_PATCH_SIZE) ** 2
    images = keras.Input(shape=(input_size, input_size, 3), name="backbone_input")
    # A convolution whose stride equals its kernel size cuts the image into
    # non-overlapping patches and projects each one to VIT_DIM numbers in one step.
    patches = layers.Conv2D(VIT_DIM, VIT_PATCH_SIZE, strides=VIT_PATCH_SIZE, name="patch_embedding")(images)
    tokens = layers.Reshape((num_patches, VIT_DIM), name="patch_tokens")(patches)
    tokens = PositionEmbedding(name="position_embedding")(tokens)
    for block in range(1, VIT_DEPTH + 1):
        tokens = _transformer_block(tokens, f"block{block}")
    features = layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")(tokens)
    return keras.Model(images, features, name="backbone")

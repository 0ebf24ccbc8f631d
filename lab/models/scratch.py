"""Backbones trained from scratch: the report's seed CNN, the fast CNN of the speed record, and a tiny ViT.

A backbone is a nested Keras model named "backbone" that turns preprocessed
images into features; lab/models/registry.py puts the preprocessing in front of it and
a classification head behind it. Each builder here returns only the backbone,
so the freeze-depth slider and the layer table can count its layers.

The pre-trained backbones (VGG16, ResNet50, ...) live in lab/models/pretrained.py.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from lab.config import DEFAULT_FAST_CNN_WIDTH
from lab.models.fused_layers import FusedBatchNormalization, Gelu

# The smallest input (pixels per side) each from-scratch backbone can shrink to a
# non-empty feature map. The seed CNN loses 2 pixels per 3x3 "valid" convolution
# and halves the size at each pooling step (18 -> 16 -> 8 -> 6 -> 3 -> 1); the fast
# CNN loses 1 pixel to its 2x2 whitening layer, then halves three times (9 -> 8 -> 4 -> 2 -> 1);
# the ViT needs at least one 4x4 patch.
SCRATCH_MIN_INPUT_SIZE = {"seed-cnn": 18, "fast-cnn": 9, "vit-tiny": 4}

# fast-cnn: the design of airbench94 (Keller Jordan, 2024), which holds the CIFAR-10 speed
# record on one GPU: a fixed "whitening" first layer, then three blocks of two 3x3 convolutions
# with max pooling, batch norm and GELU. The channels of its three blocks are scaled by
# RunConfig.width: 1.0 is the record's own network (for a GPU); a CPU trains a narrower one in
# the time a lesson allows (docs/DECISIONS.md, "The fast recipe"; speeds in docs/BENCHMARKS.md).
# Batch norm and GELU run as one kernel each while training (lab/models/fused_layers.py).
FAST_CNN_WIDTHS = {"block1": 64, "block2": 256, "block3": 256}
FAST_CNN_WIDTH_MULTIPLIER = DEFAULT_FAST_CNN_WIDTH  # RunConfig.width overrides it per run
# Batch norm forgets 40% of its running statistics per step (Keras' default is 1%): a run of
# a few hundred steps needs statistics that keep up with weights that change quickly.
FAST_CNN_BN_MOMENTUM = 0.6
# The whitening layer looks at 2x2 pixel patches: 2 x 2 x 3 colours = 12 numbers per patch.
WHITENING_PATCH_SIZE = 2
WHITENING_EPSILON = 5e-4  # added to each eigenvalue, so near-empty directions are not blown up
# The classifier's inputs are divided by 9: a smaller output scale that the speed record found
# to train faster (it slows the last layer's learning relative to the convolutions).
FAST_CNN_HEAD_SCALE = 1 / 9

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


def build_scratch_backbone(name: str, input_size: int, width: float | None = None) -> keras.Model:
    """The from-scratch backbone called `name`, for square images of `input_size` pixels.

    `width` scales fast-cnn's channels (None = FAST_CNN_WIDTH_MULTIPLIER); the others have one shape.
    """
    if name == "fast-cnn":
        return fast_cnn_backbone(input_size, width)
    builders = {"seed-cnn": seed_cnn_backbone, "vit-tiny": vit_tiny_backbone}
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


@keras.saving.register_keras_serializable(package="lab")
class DiracInitializer(keras.initializers.Initializer):
    """Start a 3x3 convolution as (nearly) the identity: each output channel copies one input channel.

    The first min(inputs, outputs) filters hold a single 1 at their centre; the other filters
    start random, uniform within +-1/sqrt(fan-in) as PyTorch's default (which the record used). A deep network built from such
    layers starts out passing its input straight through, so the first steps already learn
    something useful instead of untangling random noise (a trick of the speed record).
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        height, width, inputs, outputs = shape
        # VarianceScaling with scale 1/3 draws uniformly within +-sqrt(3 * scale / fan_in) = +-1/sqrt(fan_in).
        kernel = keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform", seed=self.seed)(shape, dtype="float32")
        identity = min(inputs, outputs)
        centre = ops.one_hot(height // 2 * width + width // 2, height * width)  # 1 at the centre pixel
        eye = ops.reshape(centre, (height, width, 1, 1)) * ops.eye(inputs, outputs)
        keep_random = ops.concatenate([ops.zeros((identity,)), ops.ones((outputs - identity,))])
        return ops.cast(kernel * keep_random + eye, dtype or "float32")

    def get_config(self):
        return {"seed": self.seed}


@keras.saving.register_keras_serializable(package="lab")
class PatchWhitening(layers.Layer):
    """A fixed first layer that decorrelates the pixels of every 2x2 patch ("whitening").

    Neighbouring pixels of a photo are strongly correlated, so most of a raw patch's 12
    numbers repeat each other. `adapt(images)` measures the patches' covariance on training
    images and sets the kernel to its eigenvectors divided by the square roots of their
    eigenvalues: each output channel is then one independent direction of variation at unit
    scale, from coarse colour to fine edges. The kernel is never trained (only the bias is);
    each direction appears twice, with both signs, so the GELU after it loses nothing.
    """

    def __init__(self, patch_size: int = WHITENING_PATCH_SIZE, epsilon: float = WHITENING_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size
        self.epsilon = epsilon

    def build(self, input_shape):
        patch_numbers = self.patch_size * self.patch_size * input_shape[-1]
        self.filters = 2 * patch_numbers
        # Until adapt() runs, the layer just passes the patch through (each number, both signs).
        start = ops.reshape(
            ops.concatenate([ops.eye(patch_numbers), -ops.eye(patch_numbers)], axis=1),
            (self.patch_size, self.patch_size, input_shape[-1], self.filters),
        )
        self.kernel = self.add_weight(name="kernel", shape=start.shape, initializer=keras.initializers.Constant(start), trainable=False)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, images):
        return ops.conv(images, ops.cast(self.kernel, images.dtype), padding="valid") + ops.cast(self.bias, images.dtype)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        shrink = self.patch_size - 1  # a "valid" 2x2 convolution loses one row and one column

        def smaller(size):
            return None if size is None else size - shrink

        return (batch, smaller(height), smaller(width), self.filters)

    def adapt(self, images: np.ndarray, chunk: int = 500) -> None:
        """Set the kernel from float images (N, H, W, C), already scaled as the layer will see them."""
        size = self.patch_size
        total, sums, count = 0.0, 0.0, 0
        for start in range(0, len(images), chunk):  # chunks keep the patch copies small (~25 MB)
            batch = np.asarray(images[start : start + chunk], dtype=np.float64)
            patches = np.lib.stride_tricks.sliding_window_view(batch, (size, size), axis=(1, 2))  # (N, H', W', C, size, size)
            patches = patches.transpose(0, 1, 2, 4, 5, 3).reshape(-1, size * size * batch.shape[-1])  # (row, column, colour) order
            sums = sums + patches.sum(axis=0)
            total = total + patches.T @ patches
            count += len(patches)
        mean = sums / count
        covariance = total / count - np.outer(mean, mean)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        directions = eigenvectors / np.sqrt(np.maximum(eigenvalues, 0.0) + self.epsilon)
        kernel = np.concatenate([directions, -directions], axis=1)
        self.kernel.assign(kernel.reshape(size, size, -1, self.filters).astype("float32"))
        # Centre every output channel: subtract what the average patch would give.
        self.bias.assign((-(mean @ kernel)).astype("float32"))

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "epsilon": self.epsilon}


def _activation(name: str) -> layers.Layer:
    """fast-cnn's activation layer: GELU, compiled into one kernel for training (lab/models/fused_layers.py)."""
    return Gelu(name=name)


def _batch_norm(name: str) -> layers.Layer:
    """Batch norm without scale (gamma), fused into one kernel for training."""
    return FusedBatchNormalization(momentum=FAST_CNN_BN_MOMENTUM, epsilon=1e-5, scale=False, name=name)


def _conv_block(x, filters: int, name: str):
    """conv -> halve with max pooling -> batch norm -> GELU -> conv -> batch norm -> GELU."""
    for step in (1, 2):
        # The bias is left out because batch norm's own shift (beta) replaces it; its scale
        # (gamma) is left out too: the next convolution can rescale just as well.
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=DiracInitializer(), name=f"{name}_conv{step}")(x)
        if step == 1:
            x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
        x = _batch_norm(f"{name}_bn{step}")(x)
        x = _activation(f"{name}_gelu{step}")(x)
    return x


def fast_cnn_backbone(input_size: int = 32, width_multiplier: float | None = None) -> keras.Model:
    """The airbench94 network: whitening, then three conv blocks (32 -> 31 -> 15 -> 7 -> 3 pixels).

    The head (global max pooling, the 1/9 scale and the classifier) is added by lab/models/registry.py.
    Call `adapt_whitening(model, images)` before training, so the first layer fits the data.
    """
    if width_multiplier is None:
        width_multiplier = FAST_CNN_WIDTH_MULTIPLIER
    widths = {block: max(8, round(width * width_multiplier)) for block, width in FAST_CNN_WIDTHS.items()}
    images = keras.Input(shape=(input_size, input_size, 3), name="backbone_input")
    x = PatchWhitening(name="whitening")(images)
    x = _activation("whitening_gelu")(x)
    for block, filters in widths.items():
        x = _conv_block(x, filters, block)
    return keras.Model(images, x, name="backbone")


def adapt_whitening(model: keras.Model, images_uint8: np.ndarray, max_images: int = 5000) -> bool:
    """Fit every PatchWhitening layer of `model` to training images; True when there was one.

    The layer sits after the model's preprocessing (pixels / 255), so the images are scaled
    the same way first. 5,000 images give a steady covariance (the speed record uses as many).
    """
    found = False
    backbone = model.get_layer("backbone") if "backbone" in [layer.name for layer in model.layers] else model
    for layer in backbone.layers:
        if isinstance(layer, PatchWhitening):
            sample = np.asarray(images_uint8[:max_images], dtype=np.float32) / 255.0
            layer.adapt(sample)
            found = True
    return found


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

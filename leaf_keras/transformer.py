"""A Transformer encoder over the frames of time-frequency features.

The Transformer backbone of the LEAF Speech Commands reproduction, as an encoder of
`models.AudioClassifier`: every frame (its bins and channels) is embedded by a dense layer,
fixed sinusoidal positional encodings are added, and post-norm self-attention blocks follow
(Vaswani et al., "Attention Is All You Need", NeurIPS 2017,
https://arxiv.org/abs/1706.03762). The classifier pools the frames it returns (the
reproduction uses global average pooling, ``AudioClassifier.pooling = 'avg'``).
"""

import math

import keras
from keras import ops

from leaf_keras import layer_stack

# The wavelengths of the positional encodings form a geometric progression from 2*pi to
# 10000 * 2*pi (Vaswani et al., Section 3.5).
MAX_WAVELENGTH = 10000.0
# As in tensor2tensor, the reference implementation of Vaswani et al. (Keras' default,
# 1e-3, is large next to the unit variance that the normalization produces).
LAYER_NORM_EPSILON = 1e-6


def sinusoidal_encoding(frames, depth, dtype="float32"):
    """The fixed positional encodings of Vaswani et al. (2017), Section 3.5.

    ``encoding[t, 2 * i] = sin(t / 10000 ** (2 * i / depth))`` and
    ``encoding[t, 2 * i + 1] = cos(t / 10000 ** (2 * i / depth))``; an odd ``depth`` ends
    with a sine.

    Args:
        frames: Number of positions: a Python integer or a scalar tensor such as
            ``ops.shape(x)[1]`` (so it works with a dynamic frame count).
        depth: Size of each encoding (the model width).
        dtype: Dtype of the result. The angles are computed in float32 whatever it is:
            positions above 2048 are not even representable in float16.

    Returns:
        A tensor of shape ``(frames, depth)``.

    Example:

    >>> keras.ops.convert_to_numpy(sinusoidal_encoding(2, 2)).round(4)
    array([[0.    , 1.    ],
           [0.8415, 0.5403]], dtype=float32)
    """
    positions = ops.arange(frames, dtype="float32")
    dims = ops.arange(depth, dtype="int32")
    exponents = ops.cast(2 * (dims // 2), "float32") / float(depth)
    inverse_wavelengths = ops.exp(-math.log(MAX_WAVELENGTH) * exponents)
    angles = positions[:, None] * inverse_wavelengths[None, :]
    encoding = ops.where(ops.equal(dims % 2, 0), ops.sin(angles), ops.cos(angles))
    return ops.cast(encoding, dtype)


def _check_heads(owner, d_model, num_heads):
    if d_model % num_heads:
        raise ValueError(
            f"{owner}: `num_heads` must divide `d_model` (each head attends in "
            f"d_model / num_heads dimensions), got num_heads={num_heads!r} and "
            f"d_model={d_model!r}."
        )


@keras.saving.register_keras_serializable(package=layer_stack.PACKAGE)
class TransformerBlock(keras.layers.Layer):
    """A post-norm Transformer encoder block (Vaswani et al., 2017, Section 3.1).

    ``x = LayerNorm(x + Dropout(SelfAttention(x)))``, then
    ``x = LayerNorm(x + Dropout(Dense(Dense(x, ff_dim, relu), d_model)))``. The dropout
    is the paper's residual dropout: on the output of each sub-layer, before the residual
    addition (the attention weights themselves are not dropped).

    Args:
        d_model: Width of the inputs and outputs.
        num_heads: Number of attention heads; must divide ``d_model``.
        ff_dim: Width of the hidden layer of the feed-forward sub-layer.
        dropout: Dropout rate of both sub-layers (0 disables it).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Input shape:
        ``(batch, frames, d_model)``.

    Output shape:
        ``(batch, frames, d_model)``.

    Example:

    >>> TransformerBlock(8, 2, 16)(keras.ops.ones((2, 5, 8))).shape
    (2, 5, 8)
    """

    def __init__(self, d_model, num_heads, ff_dim, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("d_model", d_model), ("num_heads", num_heads), ("ff_dim", ff_dim)):
            layer_stack.check_positive_int("TransformerBlock", name, value)
        _check_heads("TransformerBlock", d_model, num_heads)
        layer_stack.check_rate("TransformerBlock", "dropout", dropout)
        self.d_model = d_model
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.dropout = float(dropout)
        self.attention = keras.layers.MultiHeadAttention(
            num_heads, key_dim=d_model // num_heads, name="attention"
        )
        self.attention_dropout = keras.layers.Dropout(self.dropout)
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, name="attention_norm"
        )
        self.ff_hidden = keras.layers.Dense(ff_dim, activation="relu", name="ff_hidden")
        self.ff_output = keras.layers.Dense(d_model, name="ff_output")
        self.ff_dropout = keras.layers.Dropout(self.dropout)
        self.ff_norm = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="ff_norm")

    def build(self, input_shape):
        layer_stack.check_rank("TransformerBlock", input_shape, (3,), "(batch, frames, d_model)")
        if input_shape[-1] != self.d_model:
            raise ValueError(
                f"TransformerBlock: expects inputs of width d_model={self.d_model}, got "
                f"shape {tuple(input_shape)}."
            )
        shape = tuple(input_shape)
        self.attention.build(shape, shape)
        self.attention_norm.build(shape)
        self.ff_hidden.build(shape)
        self.ff_output.build(shape[:-1] + (self.ff_dim,))
        self.ff_norm.build(shape)
        self.built = True

    def call(self, inputs, training=None):
        attended = self.attention(inputs, inputs, training=training)
        outputs = self.attention_norm(inputs + self.attention_dropout(attended, training=training))
        transformed = self.ff_output(self.ff_hidden(outputs))
        return self.ff_norm(outputs + self.ff_dropout(transformed, training=training))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "d_model": self.d_model,
                "num_heads": self.num_heads,
                "ff_dim": self.ff_dim,
                "dropout": self.dropout,
            }
        )
        return config


@keras.saving.register_keras_serializable(package=layer_stack.PACKAGE)
class TransformerEncoder(keras.layers.Layer):
    """Transformer encoder of time-frequency features: frame embedding, positions, blocks.

    The bins and channels of each frame are merged and embedded to ``d_model`` by a dense
    layer; the sinusoidal positional encodings of Vaswani et al. (2017)
    (`sinusoidal_encoding`) are added, computed in ``call`` for the actual number of
    frames, so the frame axis stays ``None`` and clips of any length work; dropout is
    applied to that sum (as in the paper); ``num_blocks`` post-norm `TransformerBlock`s
    follow. The embedding is not scaled by ``sqrt(d_model)``: the paper does that for
    token embeddings shared with its output layer, which a dense projection of audio
    features has no counterpart of. No mask: every frame attends to every frame.

    Defaults: width 256 and 4 blocks, the smallest depth of the LEAF Speech Commands
    reproduction (which uses 4 to 8); 8 heads, a feed-forward width of ``4 * d_model`` and
    dropout 0.1 as in the paper's base model (which is wider, 512, and 6 blocks deep).

    Args:
        d_model: Width of the frame embeddings and of every block.
        num_heads: Number of attention heads; must divide ``d_model``.
        num_blocks: Number of Transformer blocks.
        ff_dim: Width of the hidden feed-forward layers; None (the default) is
            ``4 * d_model`` (1024 for the default width), the paper's ratio.
        dropout: Dropout rate of the embeddings and of every sub-layer (0 disables it).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Input shape:
        ``(batch, frames, bins, channels)`` with known ``bins`` and ``channels``.

    Output shape:
        ``(batch, frames, d_model)``.

    Example:

    >>> encoder = TransformerEncoder(d_model=16, num_heads=2, num_blocks=1)
    >>> encoder(keras.ops.ones((2, 10, 6, 1))).shape
    (2, 10, 16)
    """

    def __init__(
        self,
        d_model=256,
        num_heads=8,
        num_blocks=4,
        ff_dim=None,
        dropout=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        layer_stack.check_positive_int("TransformerEncoder", "d_model", d_model)
        layer_stack.check_positive_int("TransformerEncoder", "num_heads", num_heads)
        _check_heads("TransformerEncoder", d_model, num_heads)
        layer_stack.check_positive_int("TransformerEncoder", "num_blocks", num_blocks)
        if ff_dim is None:
            ff_dim = 4 * d_model
        layer_stack.check_positive_int("TransformerEncoder", "ff_dim", ff_dim)
        layer_stack.check_rate("TransformerEncoder", "dropout", dropout)
        self.d_model = d_model
        self.num_heads = num_heads
        self.num_blocks = num_blocks
        self.ff_dim = ff_dim
        self.dropout = float(dropout)
        self.embedding = keras.layers.Dense(d_model, name="embedding")
        self.embedding_dropout = keras.layers.Dropout(self.dropout)
        self.blocks = [
            TransformerBlock(d_model, num_heads, ff_dim, self.dropout, name=f"block_{index}")
            for index in range(num_blocks)
        ]

    def build(self, input_shape):
        layer_stack.check_rank(
            "TransformerEncoder", input_shape, (4,), "(batch, frames, bins, channels)"
        )
        if input_shape[2] is None or input_shape[3] is None:
            raise ValueError(
                "TransformerEncoder embeds the bins and channels of each frame: they must "
                f"be known, got shape {tuple(input_shape)}."
            )
        batch, frames = input_shape[0], input_shape[1]
        self.embedding.build((batch, frames, input_shape[2] * input_shape[3]))
        for block in self.blocks:
            block.build((batch, frames, self.d_model))
        self.built = True

    def call(self, inputs, training=None):
        # Merge bins and channels; the frame count is inferred, so it may be dynamic.
        features = inputs.shape[2] * inputs.shape[3]
        frames = ops.reshape(inputs, (ops.shape(inputs)[0], -1, features))
        outputs = self.embedding(frames)
        outputs = outputs + sinusoidal_encoding(
            ops.shape(outputs)[1], self.d_model, dtype=outputs.dtype
        )
        outputs = self.embedding_dropout(outputs, training=training)
        for block in self.blocks:
            outputs = block(outputs, training=training)
        return outputs

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.d_model)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "d_model": self.d_model,
                "num_heads": self.num_heads,
                "num_blocks": self.num_blocks,
                "ff_dim": self.ff_dim,
                "dropout": self.dropout,
            }
        )
        return config

"""Padding masks: which samples and frames of a padded batch belong to each clip.

A batch of clips of different lengths is padded at the end with zeros. The
frontends already give each clip's own frames for the frames that only read its
samples: zeros past the end are exactly the SAME padding the clip alone gets. What
changes the prediction is what comes after: the frames computed on the padding
reach the encoder's convolutions at the clip's last frames and the global pooling.
So the classifier tracks each clip's valid length, in samples then frames, through
every layer, zeroes what lies past it before each layer (which is what the layer's
own SAME padding would have fed it), and pools over the valid frames only.

Lengths are integer tensors `(batch,)`; a Keras mask `(batch, time)` (True for
real samples) is turned into lengths by `lengths_from_mask`. A layer's output
length is exact only if the layer's window grid does not move with the length:
stride-1 SAME convolutions (their left padding is `(kernel - 1) // 2` at every
length), VALID windows of any stride, and layers that keep the time axis.
`output_lengths` raises ValueError for anything else (strided SAME windows pad
on the left by an amount that depends on the length, and SAME average pooling
divides by the number of real samples in the window).
"""

import keras
from keras import ops

# Layers applied frame by frame (or channel by channel): they keep every length.
_FRAMEWISE = (
    keras.layers.Activation,
    keras.layers.BatchNormalization,
    keras.layers.Dropout,
    keras.layers.LayerNormalization,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.SpatialDropout2D,
)
_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D)
_POOLINGS = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
)
GLOBAL_MAX_POOLINGS = (keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D)
GLOBAL_AVERAGE_POOLINGS = (
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
)


def lengths_from_mask(mask):
    """Valid length of each row of a boolean mask `(batch, time)`, as int32 `(batch,)`.

    The length is one past the last True entry, so a clip with digital silence
    inside (which `keras.layers.Masking` marks False) keeps its full length.
    """
    if len(mask.shape) != 2:
        raise ValueError(
            f"A padding mask must have shape (batch, time), got shape {tuple(mask.shape)}."
        )
    mask = ops.cast(mask, "bool")
    # Positions 1..time, also when the time axis is only known at run time.
    positions = ops.cumsum(ops.ones_like(mask, dtype="int32"), axis=1)
    return ops.max(ops.where(mask, positions, ops.zeros_like(positions)), axis=1)


def frames_mask(mask, strides, first_frame_end=0):
    """The frames mask `(batch, frames)` of a samples mask `(batch, time)`.

    Frame `j` of a clip of `n` samples exists in the clip alone when sample
    `j * strides + first_frame_end` does: `first_frame_end` is 0 for a SAME framing
    (`ceil(n / strides)` frames) and `kernel_size - 1` for a VALID one. Slicing the
    clip's samples that way needs no static length, so Keras's symbolic models work.
    """
    mask = ops.cast(mask, "bool")
    positions = ops.cumsum(ops.ones_like(mask, dtype="int32"), axis=1)
    inside = positions <= lengths_from_mask(mask)[:, None]
    return inside[:, first_frame_end::strides]


def check_lengths(lengths, batch_size=None):
    """`lengths` as an int32 tensor `(batch,)`, or a ValueError naming what was given."""
    lengths = ops.convert_to_tensor(lengths)
    if len(lengths.shape) != 1:
        raise ValueError(
            f"`lengths` must have shape (batch,), one length per clip; got shape "
            f"{tuple(lengths.shape)}."
        )
    if "int" not in str(lengths.dtype):
        raise ValueError(
            f"`lengths` must be integers (samples or frames per clip), got dtype {lengths.dtype}."
        )
    if (
        batch_size is not None
        and lengths.shape[0] is not None
        and isinstance(batch_size, int)
        and lengths.shape[0] != batch_size
    ):
        raise ValueError(
            f"`lengths` has {lengths.shape[0]} entries for a batch of {batch_size} clips."
        )
    return ops.cast(lengths, "int32")


def sequence_mask(lengths, max_length):
    """Boolean `(batch, max_length)`: True at the positions before each length."""
    return ops.arange(max_length, dtype="int32")[None, :] < ops.cast(lengths, "int32")[:, None]


def window_lengths(lengths, kernel_size, strides, padding, dilation_rate=1):
    """Outputs of a window over `lengths` inputs (a tensor), as `padding_lib.output_length`."""
    if padding == "same":
        return (lengths + strides - 1) // strides
    span = dilation_rate * (kernel_size - 1) + 1
    return ops.maximum(lengths - span, -1) // strides + 1


def _first(value):
    return value[0] if isinstance(value, (tuple, list)) else value


def output_lengths(layer, lengths):
    """Valid frames after `layer` for clips of `lengths` valid frames.

    Args:
        layer: a Keras layer on `(batch, frames, ...)` inputs, frames on axis 1.
        lengths: int32 `(batch,)`.

    Returns:
        int32 `(batch,)`.

    Raises:
        ValueError: if the layer's frames for a clip would not be the frames of the
            clip alone (see the module docstring), or the layer is unknown.
    """
    if isinstance(layer, _FRAMEWISE):
        return lengths
    if isinstance(layer, _CONVOLUTIONS + _POOLINGS):
        if isinstance(layer, _CONVOLUTIONS):
            kernel, strides = _first(layer.kernel_size), _first(layer.strides)
            dilation = _first(layer.dilation_rate)
        else:
            kernel, strides, dilation = _first(layer.pool_size), _first(layer.strides), 1
        averaging = isinstance(layer, _POOLINGS[2:])
        if layer.padding == "same" and (strides != 1 or averaging):
            raise ValueError(
                f"Padding masks cannot pass {type(layer).__name__} {layer.name!r}: with SAME "
                f"padding and stride {strides} its windows for a padded clip are not those of "
                "the clip alone. Use VALID padding or stride 1, or batch clips of equal length."
            )
        return window_lengths(lengths, kernel, strides, layer.padding, dilation)
    raise ValueError(
        f"Padding masks cannot pass {type(layer).__name__} {layer.name!r}: it is not a layer "
        "whose effect on the number of frames is known (convolutions, poolings and framewise "
        "layers are). Batch clips of equal length, or call the model on each clip."
    )


def zero_padding_frames(inputs, lengths):
    """`inputs` `(batch, frames, ...)` with the frames at or past each length set to 0."""
    mask = sequence_mask(lengths, ops.shape(inputs)[1])
    mask = ops.reshape(mask, tuple(ops.shape(mask)) + (1,) * (len(inputs.shape) - 2))
    return ops.where(mask, inputs, ops.zeros_like(inputs))


def global_pooling(inputs, lengths, mode):
    """Max (`mode="max"`) or mean over every axis but batch and channels, valid frames only.

    Clips of zero valid frames give 0 (a mean over nothing, or a max over nothing).
    """
    axes = tuple(range(1, len(inputs.shape) - 1))
    mask = sequence_mask(lengths, ops.shape(inputs)[1])
    mask = ops.reshape(mask, tuple(ops.shape(mask)) + (1,) * (len(inputs.shape) - 2))
    mask = ops.broadcast_to(mask, ops.shape(inputs))
    if mode == "max":
        lowest = ops.full_like(inputs, float("-inf"))
        pooled = ops.max(ops.where(mask, inputs, lowest), axis=axes)
        return ops.where(ops.isfinite(pooled), pooled, ops.zeros_like(pooled))
    weights = ops.cast(mask, inputs.dtype)
    total = ops.sum(inputs * weights, axis=axes)
    count = ops.sum(weights, axis=axes)
    return total / ops.maximum(count, ops.ones_like(count))

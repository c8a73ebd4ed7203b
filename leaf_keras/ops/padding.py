"""TensorFlow's SAME padding and output-length rules, for every backend.

One rule serves the stride-1 convolutions and the strided poolings: SAME
gives `ceil(time / strides)` outputs and pads `pad_total = max((frames - 1)
* strides + kernel_size - time, 0)` samples, `pad_total // 2` of them on
the left (at stride 1: `(kernel_size - 1) // 2`). Matching it exactly is
what makes the outputs equal the original's frame for frame.
"""

from keras import ops


def same_padding(time, kernel_size, strides=1):
    """`(left, right)` SAME padding of a time axis (int or scalar tensor)."""
    if strides == 1:
        # (time - 1) + kernel_size - time, static even when time is not.
        pad_total = kernel_size - 1
    else:
        frames = (time + strides - 1) // strides
        pad_total = (frames - 1) * strides + kernel_size - time
        pad_total = max(pad_total, 0) if isinstance(pad_total, int) else ops.maximum(pad_total, 0)
    left = pad_total // 2
    return left, pad_total - left


def pad_same(inputs, kernel_size, strides=1, constant_values=0.0):
    """Pads `[batch, time, channels]` on the time axis by the SAME rule."""
    left, right = same_padding(ops.shape(inputs)[1], kernel_size, strides)
    return ops.pad(inputs, [[0, 0], [left, right], [0, 0]], constant_values=constant_values)


def output_length(length, kernel_size, strides, padding):
    """Outputs of a SAME or VALID window; `None` when `length` is unknown."""
    if length is None:
        return None
    if padding == "same":
        return (length + strides - 1) // strides
    return max(length - kernel_size, -1) // strides + 1

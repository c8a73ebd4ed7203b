"""Strided pooling kernels: block products and block maxima.

A pooling of LEAF reads a long window (401 taps) every `strides` (160)
samples. Cutting the time axis into blocks of `strides` samples turns it
into a few products of shifted block views with slices of the kernel: the
input is read once, without overlapping-window copies, and the gradient is
two more products. XLA's CPU depthwise convolution, the direct way, takes
minutes for the kernel gradient of such a pooling; the block products take
milliseconds.
"""

from keras import ops


def strided_depthwise_correlation(
    inputs, kernel, strides, data_format="channels_last", max_blocks_per_frame=16
):
    """VALID, strided per-channel correlation `out[b, f, c] = sum_k
    kernel[k, c] * inputs[b, f * strides + k, c]`.

    Equivalent to `ops.depthwise_conv(..., padding="valid")`, but computed
    as a few block products: the input is cut into blocks of `strides`
    samples, frame f reads blocks f .. f + m - 1 (m = ceil(K / strides)),
    so the correlation is a sum of m `einsum`s of shifted block views with
    slices of the (zero-extended) kernel. XLA's CPU depthwise convolution
    takes minutes for the kernel gradient of LEAF's pooling (401 taps,
    stride 160), the block products milliseconds. Long kernels at small
    strides (more than `max_blocks_per_frame` blocks) keep `depthwise_conv`.

    Args:
        inputs: float tensor `[batch, time, channels]` (already padded), or
            `[batch, channels, time]` with `data_format="channels_first"`.
        kernel: float tensor `[kernel_size, channels]`.
        strides: int, the hop between frames.
        data_format: "channels_last" or "channels_first" (inputs and
            outputs).
        max_blocks_per_frame: above this many blocks use `depthwise_conv`.

    Returns:
        A tensor `[batch, (time - kernel_size) // strides + 1, channels]`
        (channels last) or `[batch, channels, frames]` (channels first).
    """
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}."
        )
    channels_first = data_format == "channels_first"
    kernel_size = kernel.shape[0]
    blocks_per_frame = -(-kernel_size // strides)
    if blocks_per_frame > max_blocks_per_frame:
        if channels_first:
            inputs = ops.transpose(inputs, (0, 2, 1))
        outputs = ops.depthwise_conv(
            inputs, ops.expand_dims(kernel, -1), strides=strides, padding="valid"
        )
        return ops.transpose(outputs, (0, 2, 1)) if channels_first else outputs
    time_axis = 2 if channels_first else 1
    batch, time = ops.shape(inputs)[0], ops.shape(inputs)[time_axis]
    channels = inputs.shape[1 if channels_first else 2]
    frames = (time - kernel_size) // strides + 1
    num_blocks = frames + blocks_per_frame - 1
    # Trim or zero-extend to whole blocks; extra samples meet zero taps.
    needed = num_blocks * strides
    extension = needed - time
    extension = max(extension, 0) if isinstance(extension, int) else ops.maximum(extension, 0)
    if channels_first:
        inputs = ops.pad(inputs[:, :, :needed], [[0, 0], [0, 0], [0, extension]])
        blocks = ops.reshape(inputs, (batch, channels, num_blocks, strides))
    else:
        inputs = ops.pad(inputs[:, :needed], [[0, 0], [0, extension], [0, 0]])
        blocks = ops.reshape(inputs, (batch, num_blocks, strides, channels))
    kernel = ops.pad(kernel, [[0, blocks_per_frame * strides - kernel_size], [0, 0]])
    outputs = None
    for offset in range(blocks_per_frame):
        taps = kernel[offset * strides : (offset + 1) * strides]
        if channels_first:
            term = ops.einsum("bcfk,kc->bcf", blocks[:, :, offset : offset + frames], taps)
        else:
            term = ops.einsum("bfkc,kc->bfc", blocks[:, offset : offset + frames], taps)
        outputs = term if outputs is None else outputs + term
    return outputs


def channels_major_block_pooling(inputs, kernel, strides, frames):
    """`out[c, b, f] = sum_q kernel[c, q] * inputs[c, b, f * strides + q]`.

    The time axis is cut into blocks of `strides` samples and each block is
    multiplied by the m = ceil(taps / strides) slices of the (zero-extended)
    kernel in one matmul batched over channels, `[batch * blocks, strides] x
    [strides, m]`; frame f adds the products of blocks f .. f + m - 1 (the
    shifted diagonals). The input is read once, without overlapping-window
    copies, and the gradient is two more products. (A strided depthwise
    convolution would do, but XLA on CPU computes its kernel gradient
    extremely slowly.)

    Args:
        inputs: float tensor `[channels, batch, time]` (already padded), time
            `>= (frames + m - 1) * strides`.
        kernel: float tensor `[channels, taps]` with static shape.
        strides: int, the hop between frames.
        frames: number of output frames (int or scalar tensor).

    Returns:
        A tensor `[channels, batch, frames]`.
    """
    channels, taps = kernel.shape[0], kernel.shape[1]
    blocks_per_frame = -(-taps // strides)
    kernel = ops.pad(kernel, [[0, 0], [0, blocks_per_frame * strides - taps]])
    # [channels, m * strides] -> [channels, strides, m].
    kernel = ops.transpose(ops.reshape(kernel, (channels, blocks_per_frame, strides)), (0, 2, 1))
    batch = ops.shape(inputs)[1]
    inputs = inputs[:, :, : (frames + blocks_per_frame - 1) * strides]
    products = ops.matmul(ops.reshape(inputs, (channels, -1, strides)), kernel)
    products = ops.reshape(products, (channels, batch, -1, blocks_per_frame))
    outputs = products[:, :, :frames, 0]
    for offset in range(1, blocks_per_frame):
        outputs = outputs + products[:, :, offset : offset + frames, offset]
    return outputs


def _nan_propagating_max(values):
    """`max` over the last axis, NaN wherever a NaN is among the values.

    XLA:CPU's vectorized max reduction (JAX) can return the largest number of a row that
    holds a NaN; a pooled frame must not hide a broken sample.
    """
    has_nan = ops.any(ops.isnan(values), axis=-1)
    return ops.where(has_nan, float("nan"), ops.max(values, axis=-1))


def channels_major_block_maximum(inputs, kernel_size, strides, frames):
    """`out[c, b, f] = max_{q < kernel_size} inputs[c, b, f * strides + q]`.

    The maximum counterpart of `channels_major_block_pooling`: the time axis
    is cut into blocks of `strides` samples; frame f covers blocks f .. f +
    m - 2 whole (m = ceil(kernel_size / strides)) and the first `kernel_size
    - (m - 1) strides` samples of block f + m - 1, so it is the maximum of m
    shifted slices of two block maxima, without overlapping-window copies.

    Args:
        inputs: float tensor `[channels, batch, time]` (already padded), time
            `>= (frames + m - 1) * strides`.
        kernel_size: window length.
        strides: int, the hop between frames.
        frames: number of output frames (int or scalar tensor).

    Returns:
        A tensor `[channels, batch, frames]`.
    """
    blocks_per_frame = -(-kernel_size // strides)
    tail = kernel_size - (blocks_per_frame - 1) * strides
    channels, batch = inputs.shape[0], ops.shape(inputs)[1]
    blocks = ops.reshape(
        inputs[:, :, : (frames + blocks_per_frame - 1) * strides], (channels, batch, -1, strides)
    )
    whole = _nan_propagating_max(blocks)
    heads = whole if tail == strides else _nan_propagating_max(blocks[..., :tail])
    outputs = heads[:, :, blocks_per_frame - 1 : blocks_per_frame - 1 + frames]
    for offset in range(blocks_per_frame - 1):
        outputs = ops.maximum(outputs, whole[:, :, offset : offset + frames])
    return outputs


def channels_major_block_pooling_gradients(inputs, kernel, strides, upstream):
    """Gradients of `channels_major_block_pooling` w.r.t. its inputs and kernel.

    Written out for callers that recompute the pooled inputs inside their own
    custom gradient (`ops.fft_correlation.pooled_correlation_energies`). With
    the blocks `B[c, j] = inputs[c, :, j s : (j + 1) s]` and the kernel slices
    `K[c, o] = kernel[c, o s : (o + 1) s]`, frame f is `sum_o B[c, f + o] .
    K[c, o]`, so block j meets the cotangents `D[c, j, o] = upstream[c, f = j -
    o]`: `d_inputs = D K^T` and `d_kernel = B^T D`, two matmuls batched over
    channels.

    Args:
        inputs: float tensor `[channels, batch, (frames + m - 1) * strides]`.
        kernel: float tensor `[channels, taps]` with static shape.
        strides: int, the hop between frames.
        upstream: float tensor `[channels, batch, frames]`, the cotangent of
            the pooled frames.

    Returns:
        `(d_inputs, d_kernel)`, shaped like `inputs` and `kernel`.
    """
    channels, taps = kernel.shape[0], kernel.shape[1]
    blocks_per_frame = -(-taps // strides)
    padded_kernel = ops.pad(kernel, [[0, 0], [0, blocks_per_frame * strides - taps]])
    # [channels, m * strides] -> [channels, m, strides].
    slices = ops.reshape(padded_kernel, (channels, blocks_per_frame, strides))
    # D[c, b, j, o] = upstream[c, b, j - o] for 0 <= j - o < frames, else 0.
    cotangents = ops.stack(
        [
            ops.pad(upstream, [[0, 0], [0, 0], [offset, blocks_per_frame - 1 - offset]])
            for offset in range(blocks_per_frame)
        ],
        axis=-1,
    )
    cotangents = ops.reshape(cotangents, (channels, -1, blocks_per_frame))
    blocks = ops.reshape(inputs, (channels, -1, strides))
    d_inputs = ops.reshape(ops.matmul(cotangents, slices), ops.shape(inputs))
    d_slices = ops.matmul(ops.transpose(cotangents, (0, 2, 1)), blocks)
    d_kernel = ops.reshape(d_slices, (channels, blocks_per_frame * strides))[:, :taps]
    return d_inputs, d_kernel

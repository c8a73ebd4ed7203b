"""The first-order linear recurrence of PCEN's smoother, without a loop.

`s_t = decay * s_{t-1} + x_t` is evaluated with chunked decay-power matrix
products (exact, any time length) instead of the original's sequential
`tf.scan`, which runs one step per frame.
"""

from keras import ops

from leaf_keras.ops import precision


def _decay_powers(decay, exponents):
    """`decay ** exponents` for exponents >= 0, 0 where exponents < 0.

    Exponents are whole numbers (as floats). The gradient stays finite for
    `decay == 0`: the power is only taken with exponents >= 1.
    """
    positive = ops.power(decay, ops.maximum(exponents, 1.0))
    powers = ops.where(exponents > 0, positive, ops.ones_like(positive))
    return ops.where(exponents >= 0, powers, ops.zeros_like(powers))


def _chunked_recurrence(decay, inputs, chunk_size):
    """States of the recurrence over the last axis, channels first.

    Args:
        decay: `(channels,)`.
        inputs: `[channels, rows, time]`.
        chunk_size: frames per chunk.

    Returns:
        `[channels, rows, time]`.
    """
    channels = inputs.shape[0]
    rows, time = ops.shape(inputs)[1], ops.shape(inputs)[2]
    num_chunks = (time + chunk_size - 1) // chunk_size
    padded = ops.pad(inputs, [[0, 0], [0, 0], [0, num_chunks * chunk_size - time]])
    # Channels lead, so both products are plain batched matmuls over
    # channels (no transposes of the data inside them).
    chunks = ops.reshape(padded, (channels, rows * num_chunks, chunk_size))
    steps = ops.arange(chunk_size, dtype=inputs.dtype)
    lags = steps[None, :] - steps[:, None]  # [u, t]: t - u
    within = _decay_powers(decay[:, None, None], lags[None])  # [C, u, t]
    local = ops.reshape(ops.matmul(chunks, within), (channels, rows, num_chunks, chunk_size))
    # State entering chunk j: sum over i < j of D^(j - 1 - i) * end_i, with
    # D = decay^chunk_size and end_i the last local state of chunk i.
    ends = local[:, :, :, -1]  # [C, rows, chunks]
    chunk_index = ops.arange(num_chunks, dtype=inputs.dtype)
    chunk_lags = chunk_index[None, :] - chunk_index[:, None] - 1.0  # [i, j]
    across = _decay_powers(decay[:, None, None], chunk_size * chunk_lags[None])
    across = ops.where(chunk_lags[None] >= 0, across, ops.zeros_like(across))
    carried = ops.matmul(ends, across)  # [C, rows, chunks]
    growth = _decay_powers(decay[:, None], steps[None, :] + 1.0)  # [C, t]
    # expand_dims, not `[..., None]`: TFLite has no builtin strided slice with new_axis_mask
    # for a dynamic length (experiments.export converts LEAF with builtin ops only).
    states = local + ops.expand_dims(carried, -1) * growth[:, None, None, :]
    states = ops.reshape(states, (channels, rows, num_chunks * chunk_size))
    return states[:, :, :time]


def linear_recurrence(decay, inputs, chunk_size=64):
    """All states of `s_t = decay * s_{t-1} + inputs_t`, `s_{-1} = 0`.

    A time-invariant first-order recurrence (per channel) evaluated without
    a sequential loop over time: inside chunks of `chunk_size` frames the
    states are one matrix product with the decay powers `decay^(t - u)`,
    and the states carried between chunks are a second such product over
    chunks. Exact (no truncation), works with an unknown time length.

    The gradient is written out rather than differentiated through the
    decay-power matrices: the adjoint of a linear recurrence is the same
    recurrence run backwards in time, `l_t = g_t + decay * l_{t+1}`, which
    gives `d inputs_t = l_t` and `d decay = sum_t l_t s_{t-1}`.

    Args:
        decay: float tensor `(channels,)` or `(1,)`, values in [0, 1].
        inputs: float tensor `[batch, time, channels]`.
        chunk_size: frames per chunk.

    Returns:
        A tensor `[batch, time, channels]`.
    """
    channels = inputs.shape[-1]
    decay = ops.broadcast_to(ops.cast(decay, inputs.dtype), (channels,))

    @ops.custom_gradient
    def recurrence(decay, inputs_channels_first):
        states = _chunked_recurrence(decay, inputs_channels_first, chunk_size)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            adjoint = ops.flip(
                _chunked_recurrence(decay, ops.flip(upstream, axis=2), chunk_size), axis=2
            )
            previous = ops.pad(states[:, :, :-1], [[0, 0], [0, 0], [1, 0]])
            return ops.sum(adjoint * previous, axis=(1, 2)), adjoint

        return states, precision.keeps_float64_gradient(grad, inputs_channels_first)

    states = recurrence(decay, ops.transpose(inputs, (2, 0, 1)))
    return ops.transpose(states, (1, 2, 0))

"""Pooling layers of the learnable frontends (downsampling in time).

All poolings follow TensorFlow's padding conventions so that their output
matches the original leaf-audio code on every backend: SAME means
`ceil(time / strides)` frames with `pad_total = max((frames - 1) * strides +
kernel_size - time, 0)` and `pad_total // 2` zeros on the left.

Reference: Zeghidour et al., "LEAF: A Learnable Frontend for Audio
Classification", ICLR 2021, Section 3.2 (Gaussian lowpass pooling).
"""

import keras
from keras import ops

from leaf_keras import impulse_responses
from leaf_keras import utils

_HALF_DTYPES = ("float16", "bfloat16")


def same_padding(time, kernel_size, strides):
    """TF SAME padding `(left, right)` for a time axis (int or tensor)."""
    frames = (time + strides - 1) // strides
    pad_total = (frames - 1) * strides + kernel_size - time
    if isinstance(pad_total, int):
        pad_total = max(pad_total, 0)
    else:
        pad_total = ops.maximum(pad_total, 0)
    left = pad_total // 2
    return left, pad_total - left


def pad_same(inputs, kernel_size, strides, constant_values=0.0):
    """Pads `[batch, time, channels]` on the time axis, TF's SAME rule."""
    left, right = same_padding(ops.shape(inputs)[1], kernel_size, strides)
    return ops.pad(inputs, [[0, 0], [left, right], [0, 0]],
                   constant_values=constant_values)


def strided_depthwise_correlation(inputs, kernel, strides,
                                  data_format="channels_last",
                                  max_blocks_per_frame=16):
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
        raise ValueError("data_format must be 'channels_last' or "
                         f"'channels_first', got {data_format!r}.")
    channels_first = data_format == "channels_first"
    kernel_size = kernel.shape[0]
    blocks_per_frame = -(-kernel_size // strides)
    if blocks_per_frame > max_blocks_per_frame:
        if channels_first:
            inputs = ops.transpose(inputs, (0, 2, 1))
        outputs = ops.depthwise_conv(inputs, ops.expand_dims(kernel, -1),
                                     strides=strides, padding="valid")
        return ops.transpose(outputs, (0, 2, 1)) if channels_first else outputs
    time_axis = 2 if channels_first else 1
    batch, time = ops.shape(inputs)[0], ops.shape(inputs)[time_axis]
    channels = inputs.shape[1 if channels_first else 2]
    frames = (time - kernel_size) // strides + 1
    num_blocks = frames + blocks_per_frame - 1
    # Trim or zero-extend to whole blocks; extra samples meet zero taps.
    needed = num_blocks * strides
    extension = needed - time
    extension = (max(extension, 0) if isinstance(extension, int) else
                 ops.maximum(extension, 0))
    if channels_first:
        inputs = ops.pad(inputs[:, :, :needed],
                         [[0, 0], [0, 0], [0, extension]])
        blocks = ops.reshape(inputs, (batch, channels, num_blocks, strides))
    else:
        inputs = ops.pad(inputs[:, :needed], [[0, 0], [0, extension], [0, 0]])
        blocks = ops.reshape(inputs, (batch, num_blocks, strides, channels))
    kernel = ops.pad(kernel,
                     [[0, blocks_per_frame * strides - kernel_size], [0, 0]])
    outputs = None
    for offset in range(blocks_per_frame):
        taps = kernel[offset * strides:(offset + 1) * strides]
        if channels_first:
            term = ops.einsum("bcfk,kc->bcf",
                              blocks[:, :, offset:offset + frames], taps)
        else:
            term = ops.einsum("bfkc,kc->bfc",
                              blocks[:, offset:offset + frames], taps)
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
    kernel = ops.transpose(
        ops.reshape(kernel, (channels, blocks_per_frame, strides)), (0, 2, 1))
    batch = ops.shape(inputs)[1]
    inputs = inputs[:, :, :(frames + blocks_per_frame - 1) * strides]
    products = ops.matmul(ops.reshape(inputs, (channels, -1, strides)),
                          kernel)
    products = ops.reshape(products, (channels, batch, -1, blocks_per_frame))
    outputs = products[:, :, :frames, 0]
    for offset in range(1, blocks_per_frame):
        outputs = outputs + products[:, :, offset:offset + frames, offset]
    return outputs


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
        inputs[:, :, :(frames + blocks_per_frame - 1) * strides],
        (channels, batch, -1, strides))
    whole = ops.max(blocks, axis=3)
    heads = whole if tail == strides else ops.max(blocks[..., :tail], axis=3)
    outputs = heads[:, :, blocks_per_frame - 1:blocks_per_frame - 1 + frames]
    for offset in range(blocks_per_frame - 1):
        outputs = ops.maximum(outputs, whole[:, :, offset:offset + frames])
    return outputs


def output_length(length, kernel_size, strides, padding):
    """Number of frames of a pooling, `None` when the length is unknown."""
    if length is None:
        return None
    if padding == "same":
        return (length + strides - 1) // strides
    return max(length - kernel_size, -1) // strides + 1


def _check_rank3(layer, input_shape):
    if len(input_shape) != 3 or input_shape[-1] is None:
        raise ValueError(
            f"{layer.__class__.__name__} expects inputs [batch, time, "
            f"channels] with a known channel count, got {tuple(input_shape)}.")


class _Pooling1D(keras.layers.Layer):
    """Constructor arguments shared with the original poolings."""

    # What SAME padding adds before pooling: zeros, or -inf for a maximum.
    padding_value = 0.0

    def __init__(self, kernel_size, strides=1, padding="same", use_bias=True,
                 kernel_initializer="glorot_uniform", kernel_regularizer=None,
                 trainable=False, name="learnable_pooling", **kwargs):
        # Pooling filters and sums stay float32 under a mixed policy.
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, trainable=trainable, **kwargs)
        self.kernel_size, self.strides, self.padding = (
            utils.check_window_arguments(kernel_size, strides, padding))
        # use_bias is accepted for compatibility; like the original, no
        # pooling adds a bias.
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def _float32(self, inputs):
        inputs = ops.convert_to_tensor(inputs)
        if keras.backend.standardize_dtype(inputs.dtype) in _HALF_DTYPES:
            inputs = ops.cast(inputs, "float32")
        return inputs

    def _depthwise(self, inputs, kernel, padding):
        """Strided depthwise correlation; kernel `(K, channels, 1)`."""
        inputs = self._float32(inputs)
        if padding == "same":
            inputs = pad_same(inputs, self.kernel_size, self.strides)
        outputs = strided_depthwise_correlation(
            inputs, ops.cast(kernel[:, :, 0], inputs.dtype), self.strides)
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],
                output_length(input_shape[1], self.kernel_size, self.strides,
                              self.padding), input_shape[2])

    def pooling_filters(self, channels):
        """Linear poolings: the filters `(kernel_size, channels)`."""
        raise NotImplementedError(
            f"{self.__class__.__name__} has no linear pooling filters.")

    def padded_layout(self, time):
        """`(frames, left, length)` of the pooling of `time` samples.

        `frames` outputs, `left` zeros before the first sample (TF's SAME
        rule, 0 for VALID) and `length`, a multiple of `strides`, the
        padded input length that `pool_padded_channels_major` reads.
        """
        if self.padding == "same":
            left, _ = same_padding(time, self.kernel_size, self.strides)
            frames = (time + self.strides - 1) // self.strides
        else:
            left, frames = 0, (time - self.kernel_size) // self.strides + 1
        blocks_per_frame = -(-self.kernel_size // self.strides)
        return (frames, left,
                (frames + blocks_per_frame - 1) * self.strides)

    def pool_padded_channels_major(self, padded, frames):
        """Pools already padded float32 `[channels, batch, time]` inputs.

        Frame f is `sum_k w[k] padded[..., f * strides + k]` (`w` from
        `pooling_filters`), computed by `channels_major_block_pooling`
        (block products, input read once). `MaxPooling1D` takes the maximum
        instead.

        Args:
            padded: float32 tensor `[channels, batch, time]`, time a multiple
                of `strides` and `>= (frames + m - 1) * strides`, m =
                ceil(kernel_size / strides) (see `padded_layout`).
            frames: number of output frames (int or scalar tensor).

        Returns:
            A float32 tensor `[channels, batch, frames]`.
        """
        kernel = ops.transpose(self.pooling_filters(padded.shape[0]))
        kernel = ops.cast(kernel, padded.dtype)
        return channels_major_block_pooling(padded, kernel, self.strides,
                                            frames)

    def pool_channels_first(self, inputs, channels_major=False):
        """The same pooling of float32 `[batch, channels, time]` inputs.

        Args:
            inputs: float32 tensor `[batch, channels, time]`, or `[channels,
                batch, time]` with `channels_major=True`.
            channels_major: whether the channel axis comes first.

        Returns:
            `[batch, channels, frames]` (`[channels, batch, frames]` with
            `channels_major=True`), float32.
        """
        if not channels_major:
            inputs = ops.transpose(inputs, (1, 0, 2))
        time = ops.shape(inputs)[2]
        frames, left, length = self.padded_layout(time)
        # Pad or trim to `length` (VALID pooling ignores a tail).
        right = length - time - left
        right = (max(right, 0) if isinstance(right, int) else
                 ops.maximum(right, 0))
        padded = ops.pad(inputs, [[0, 0], [0, 0], [left, right]],
                         constant_values=self.padding_value)
        outputs = self.pool_padded_channels_major(padded[:, :, :length],
                                                  frames)
        return outputs if channels_major else ops.transpose(outputs,
                                                            (1, 0, 2))

    def get_config(self):
        config = super().get_config()
        config.update({
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(
                self.kernel_regularizer),
        })
        return config


@keras.saving.register_keras_serializable(package="leaf_keras")
class GaussianLowpass(_Pooling1D):
    """Depthwise Gaussian lowpass pooling with a learnable width per channel.

    Channel c is filtered by `exp(-0.5 ((n - (K-1)/2) / (sigma_c (K-1)/2))^2)`
    (not normalized), sigma clipped to [2 / K, 0.5], then downsampled by
    `strides`. The weight "kernel" `(1, 1, channels, 1)` holds sigma; the
    initializer `keras.initializers.Constant(0.4)` approximates a Hanning
    window. Only the strided outputs are computed.

    Args:
        kernel_size: filter length K.
        strides: downsampling factor.
        padding: "same" (TF's rule) or "valid".
        use_bias: ignored (kept for the original signature).
        kernel_initializer: initializer of sigma.
        kernel_regularizer: optional regularizer of sigma.
        trainable: whether sigma is learned.
        name: layer name.

    Input shape:
        `(batch, time, channels)`.

    Output shape:
        `(batch, ceil(time / strides), channels)` with SAME padding.

    Example:
        >>> pool = GaussianLowpass(401, 160, kernel_initializer=
        ...     keras.initializers.Constant(0.4), trainable=True)
        >>> pool(np.ones((2, 16000, 40), "float32")).shape  # (2, 100, 40)
    """

    def build(self, input_shape):
        _check_rank3(self, input_shape)
        self.kernel = self.add_weight(
            name="kernel", shape=(1, 1, input_shape[2], 1),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, trainable=self.trainable,
            dtype="float32", autocast=False)

    def lowpass_filters(self):
        """Pooling filters `(kernel_size, channels)`."""
        window = impulse_responses.gaussian_lowpass(
            ops.cast(self.kernel, "float32"), self.kernel_size)
        return window[0, :, :, 0]

    def pooling_filters(self, channels):
        del channels  # One filter per channel, fixed by the weights.
        return self.lowpass_filters()

    def call(self, inputs):
        kernel = ops.expand_dims(self.lowpass_filters(), -1)
        return self._depthwise(inputs, kernel, self.padding)

@keras.saving.register_keras_serializable(package="leaf_keras")
class LearnablePooling1D(_Pooling1D):
    """Pooling with one learnable filter shared by all channels.

    The weight "kernel" `(1, kernel_size, 1, 1)` (the original's Conv2D
    kernel) is applied to every channel. Like the original, the pooling is
    always VALID: `padding` is accepted for signature compatibility and
    ignored (the original passes `padding="valid"` to its Conv2D).

    Args:
        kernel_size: filter length.
        strides: downsampling factor.
        padding: ignored, see above.
        use_bias: ignored.
        kernel_initializer: initializer, e.g. `LowpassInit`.
        kernel_regularizer: optional regularizer.
        trainable: whether the filter is learned.
        name: layer name.

    Input shape:
        `(batch, time, channels)`.

    Output shape:
        `(batch, (time - kernel_size) // strides + 1, channels)`.
    """

    def __init__(self, kernel_size, strides=1, padding="same", use_bias=True,
                 kernel_initializer="glorot_uniform", kernel_regularizer=None,
                 trainable=False, name="learnable_pooling", **kwargs):
        super().__init__(kernel_size, strides, padding, use_bias,
                         kernel_initializer, kernel_regularizer, trainable,
                         name, **kwargs)
        self._padding_arg = self.padding
        self.padding = "valid"

    def build(self, input_shape):
        _check_rank3(self, input_shape)
        self.kernel = self.add_weight(
            name="kernel", shape=(1, self.kernel_size, 1, 1),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, trainable=self.trainable,
            dtype="float32", autocast=False)

    def pooling_filters(self, channels):
        kernel = ops.reshape(ops.cast(self.kernel, "float32"),
                             (self.kernel_size, 1))
        return ops.broadcast_to(kernel, (self.kernel_size, channels))

    def call(self, inputs):
        kernel = self.pooling_filters(inputs.shape[-1])
        return self._depthwise(inputs, ops.expand_dims(kernel, -1), "valid")

    def get_config(self):
        config = super().get_config()
        config["padding"] = self._padding_arg
        return config


@keras.saving.register_keras_serializable(package="leaf_keras")
class ChannelWiseLearnablePooling1D(_Pooling1D):
    """Pooling with one learnable filter per channel (depthwise).

    The weight "kernel" `(kernel_size, 1, channels)` holds the filter of each
    channel; initialize it with `LowpassInit` to start from a window.

    Args:
        kernel_size: filter length.
        strides: downsampling factor.
        padding: "same" (TF's rule) or "valid".
        use_bias: ignored.
        kernel_initializer: initializer, e.g. `LowpassInit`.
        kernel_regularizer: optional regularizer.
        trainable: whether the filters are learned.
        name: layer name.

    Input shape:
        `(batch, time, channels)`.

    Output shape:
        `(batch, frames, channels)`.
    """

    def build(self, input_shape):
        _check_rank3(self, input_shape)
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, 1, input_shape[2]),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, trainable=self.trainable,
            dtype="float32", autocast=False)

    def pooling_filters(self, channels):
        del channels  # One filter per channel, fixed by the weights.
        return ops.cast(self.kernel[:, 0, :], "float32")

    def call(self, inputs):
        kernel = ops.expand_dims(self.pooling_filters(inputs.shape[-1]), -1)
        return self._depthwise(inputs, kernel, self.padding)


@keras.saving.register_keras_serializable(package="leaf_keras")
class MaxPooling1D(_Pooling1D):
    """Max pooling in time with the original's constructor arguments.

    SAME padding follows TF (padded positions never win the max), on every
    backend. `use_bias`, `kernel_initializer`, `kernel_regularizer` and
    `trainable` are accepted and unused, as in the original.

    Args:
        kernel_size: pooling window.
        strides: downsampling factor.
        padding: "same" or "valid".
        use_bias: unused.
        kernel_initializer: unused.
        kernel_regularizer: unused.
        trainable: unused.
        name: layer name.

    Input shape:
        `(batch, time, channels)`.

    Output shape:
        `(batch, frames, channels)`.
    """

    padding_value = float("-inf")

    def __init__(self, kernel_size, strides=1, padding="same", use_bias=True,
                 kernel_initializer="glorot_uniform", kernel_regularizer=None,
                 trainable=False, name="frontend_max_pooling", **kwargs):
        super().__init__(kernel_size, strides, padding, use_bias,
                         kernel_initializer, kernel_regularizer, trainable,
                         name, **kwargs)

    def build(self, input_shape):
        _check_rank3(self, input_shape)

    def pool_padded_channels_major(self, padded, frames):
        """Max-pools already padded float32 `[channels, batch, time]` inputs
        (padding -inf), `time >= (frames + m - 1) * strides` (see
        `padded_layout`): `channels_major_block_maximum`."""
        return channels_major_block_maximum(padded, self.kernel_size,
                                            self.strides, frames)

    def call(self, inputs):
        inputs = self._float32(inputs)
        if self.padding == "same":
            inputs = pad_same(inputs, self.kernel_size, self.strides,
                              constant_values=self.padding_value)
        outputs = ops.max_pool(inputs, pool_size=self.kernel_size,
                               strides=self.strides, padding="valid")
        return ops.cast(outputs, self.compute_dtype)

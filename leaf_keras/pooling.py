"""Pooling layers of the learnable frontends (downsampling in time).

All poolings follow TensorFlow's SAME rule (`ops.padding`), so that their
output matches the original leaf-audio code frame for frame on every
backend. The linear poolings compute their strided correlation as block
products (`ops.block_pooling`); `padded_layout` and
`pool_padded_channels_major` are the entry points of the fused filterbank
engine, which hands them the activation already padded, channels major.

Reference: Zeghidour et al., "LEAF: A Learnable Frontend for Audio
Classification", ICLR 2021, Section 3.2 (Gaussian lowpass pooling).
"""

import keras
from keras import ops

from leaf_keras import impulse_responses
from leaf_keras import utils
from leaf_keras.ops import block_pooling
from leaf_keras.ops import padding as padding_lib
from leaf_keras.ops import precision


class _Pooling1D(keras.layers.Layer):
    """Constructor arguments shared with the original poolings."""

    # What SAME padding adds before pooling: zeros, or -inf for a maximum.
    padding_value = 0.0

    def __init__(
        self,
        kernel_size,
        strides=1,
        padding="same",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        trainable=False,
        name="learnable_pooling",
        **kwargs,
    ):
        # Pooling filters and sums stay float32 under a mixed policy.
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, trainable=trainable, **kwargs)
        self.kernel_size, self.strides, self.padding = utils.check_window_arguments(
            kernel_size, strides, padding
        )
        # use_bias is accepted for compatibility; like the original, no
        # pooling adds a bias.
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def _depthwise(self, inputs, kernel, padding):
        """Strided depthwise correlation; kernel `(K, channels, 1)`."""
        inputs = precision.upcast_half(inputs)
        if padding == "same":
            inputs = padding_lib.pad_same(inputs, self.kernel_size, self.strides)
        outputs = block_pooling.strided_depthwise_correlation(
            inputs, ops.cast(kernel[:, :, 0], inputs.dtype), self.strides
        )
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (
            input_shape[0],
            padding_lib.output_length(input_shape[1], self.kernel_size, self.strides, self.padding),
            input_shape[2],
        )

    def pooling_filters(self, channels):
        """Linear poolings: the filters `(kernel_size, channels)`."""
        raise NotImplementedError(f"{self.__class__.__name__} has no linear pooling filters.")

    def padded_layout(self, time):
        """`(frames, left, length)` of the pooling of `time` samples.

        `frames` outputs, `left` zeros before the first sample (TF's SAME
        rule, 0 for VALID) and `length`, a multiple of `strides`, the
        padded input length that `pool_padded_channels_major` reads.
        """
        if self.padding == "same":
            left, _ = padding_lib.same_padding(time, self.kernel_size, self.strides)
            frames = (time + self.strides - 1) // self.strides
        else:
            left, frames = 0, (time - self.kernel_size) // self.strides + 1
        blocks_per_frame = -(-self.kernel_size // self.strides)
        return (frames, left, (frames + blocks_per_frame - 1) * self.strides)

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
        return block_pooling.channels_major_block_pooling(padded, kernel, self.strides, frames)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
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
        utils.check_frames_shape(self, input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(1, 1, input_shape[2], 1),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            trainable=self.trainable,
            dtype=precision.working_dtype(self),
            autocast=False,
        )

    def lowpass_filters(self):
        """Pooling filters `(kernel_size, channels)`."""
        window = impulse_responses.gaussian_lowpass(
            ops.cast(self.kernel, precision.working_dtype(self)), self.kernel_size
        )
        return window[0, :, :, 0]

    def pooling_filters(self, channels):
        del channels  # One filter per channel, fixed by the weights.
        return self.lowpass_filters()

    @precision.keeps_float64
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

    def __init__(
        self,
        kernel_size,
        strides=1,
        padding="same",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        trainable=False,
        name="learnable_pooling",
        **kwargs,
    ):
        super().__init__(
            kernel_size,
            strides,
            padding,
            use_bias,
            kernel_initializer,
            kernel_regularizer,
            trainable,
            name,
            **kwargs,
        )
        self._padding_arg = self.padding
        self.padding = "valid"

    def build(self, input_shape):
        utils.check_frames_shape(self, input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(1, self.kernel_size, 1, 1),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            trainable=self.trainable,
            dtype=precision.working_dtype(self),
            autocast=False,
        )

    def pooling_filters(self, channels):
        kernel = ops.reshape(
            ops.cast(self.kernel, precision.working_dtype(self)), (self.kernel_size, 1)
        )
        return ops.broadcast_to(kernel, (self.kernel_size, channels))

    @precision.keeps_float64
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
        utils.check_frames_shape(self, input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, 1, input_shape[2]),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            trainable=self.trainable,
            dtype=precision.working_dtype(self),
            autocast=False,
        )

    def pooling_filters(self, channels):
        del channels  # One filter per channel, fixed by the weights.
        return ops.cast(self.kernel[:, 0, :], precision.working_dtype(self))

    @precision.keeps_float64
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

    def __init__(
        self,
        kernel_size,
        strides=1,
        padding="same",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        trainable=False,
        name="frontend_max_pooling",
        **kwargs,
    ):
        super().__init__(
            kernel_size,
            strides,
            padding,
            use_bias,
            kernel_initializer,
            kernel_regularizer,
            trainable,
            name,
            **kwargs,
        )

    def build(self, input_shape):
        utils.check_frames_shape(self, input_shape)

    def pool_padded_channels_major(self, padded, frames):
        """Max-pools already padded float32 `[channels, batch, time]` inputs
        (padding -inf), `time >= (frames + m - 1) * strides` (see
        `padded_layout`): `channels_major_block_maximum`."""
        return block_pooling.channels_major_block_maximum(
            padded, self.kernel_size, self.strides, frames
        )

    @precision.keeps_float64
    def call(self, inputs):
        inputs = precision.upcast_half(inputs)
        if self.padding == "same":
            inputs = padding_lib.pad_same(
                inputs, self.kernel_size, self.strides, constant_values=self.padding_value
            )
        window = dict(pool_size=self.kernel_size, strides=self.strides, padding="valid")
        outputs = ops.max_pool(inputs, **window)
        # TensorFlow's MaxPool skips NaN; a window holding one must give NaN, as the fused
        # engine's block maximum does.
        has_nan = ops.max_pool(ops.cast(ops.isnan(inputs), inputs.dtype), **window) > 0
        outputs = ops.where(has_nan, float("nan"), outputs)
        return ops.cast(outputs, self.compute_dtype)

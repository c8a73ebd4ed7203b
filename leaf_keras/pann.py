"""CNN14 and WaveGram from PANNs, as encoders of `models.AudioClassifier`.

Kong et al., "PANNs: Large-Scale Pretrained Audio Neural Networks for Audio
Pattern Recognition", 2020, https://arxiv.org/abs/1912.10211. `models`
re-exports them, as leaf-audio's module map has them there.
"""

import keras
from keras import ops

from leaf_keras import layer_stack


@keras.saving.register_keras_serializable(package=layer_stack.PACKAGE)
class PANNConvBlock(layer_stack.LayerStack):
    """The CNN14 block of PANNs: two 3x3 conv/batch-norm/ReLU units and average pooling.

    Args:
        filters: Number of output channels.
        pool_size: Size and stride of the 2D average pooling ("same" padding, so inputs
            smaller than the pool never vanish).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Input shape:
        ``(batch, frames, bins, channels)``.

    Output shape:
        ``(batch, ceil(frames / pool_size[0]), ceil(bins / pool_size[1]), filters)``.

    Example:

    >>> PANNConvBlock(8, (2, 2))(keras.ops.ones((2, 9, 6, 1))).shape
    (2, 5, 3, 8)
    """

    def __init__(self, filters, pool_size=(2, 2), **kwargs):
        super().__init__(**kwargs)
        layer_stack.check_positive_int("PANNConvBlock", "filters", filters)
        self.filters = filters
        self.pool_size = layer_stack.check_pair("PANNConvBlock", "pool_size", pool_size)
        self.stack = []
        for _ in range(2):
            self.stack.append(keras.layers.Conv2D(filters, (3, 3), padding="same", use_bias=False))
            self.stack.append(keras.layers.BatchNormalization())
            self.stack.append(keras.layers.ReLU())
        self.stack.append(
            keras.layers.AveragePooling2D(self.pool_size, strides=self.pool_size, padding="same")
        )

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "pool_size": list(self.pool_size)})
        return config


@keras.saving.register_keras_serializable(package=layer_stack.PACKAGE)
class PANNWavBlock(layer_stack.LayerStack):
    """The 1D block of PANNs' WaveGram: two conv/batch-norm/ReLU units and max pooling.

    The convolutions have kernel size 3 and dilation rates 1 then 2 ("same" padding, no
    bias); the max pooling has size and stride ``pool_size`` ("valid" padding).

    Args:
        filters: Number of output channels.
        pool_size: Size and stride of the 1D max pooling.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Input shape:
        ``(batch, samples, channels)``.

    Output shape:
        ``(batch, floor(samples / pool_size), filters)``.

    Example:

    >>> PANNWavBlock(8, 4)(keras.ops.ones((2, 40, 1))).shape
    (2, 10, 8)
    """

    expected_ranks = (3,)
    expected_shape = "(batch, samples, channels)"

    def __init__(self, filters, pool_size, **kwargs):
        super().__init__(**kwargs)
        layer_stack.check_positive_int("PANNWavBlock", "filters", filters)
        layer_stack.check_positive_int("PANNWavBlock", "pool_size", pool_size)
        self.filters = filters
        self.pool_size = pool_size
        self.stack = []
        for dilation_rate in (1, 2):
            self.stack.append(
                keras.layers.Conv1D(
                    filters, 3, dilation_rate=dilation_rate, padding="same", use_bias=False
                )
            )
            self.stack.append(keras.layers.BatchNormalization())
            self.stack.append(keras.layers.ReLU())
        self.stack.append(keras.layers.MaxPooling1D(pool_size, strides=pool_size))

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "pool_size": self.pool_size})
        return config


@keras.saving.register_keras_serializable(package=layer_stack.PACKAGE)
class PANN(layer_stack.LayerStack):
    """CNN-x encoder from PANNs; the default depth 6 is CNN14 (without its dense layers).

    Batch normalization over the frequency bins (like PANNs' ``bn0``), then ``depth``
    `PANNConvBlock`s, each followed by dropout. Block ``i`` has
    ``min(64 * 2 ** i, 2048)`` filters and pools 2x2 for the first five blocks, 1x1
    after (average pooling with "same" padding, so small inputs work).

    Args:
        depth: Number of convolutional blocks.
        dropout_rate: Dropout rate after every block.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Input shape:
        ``(batch, frames, bins, channels)`` with a known ``bins``.

    Output shape:
        ``(batch, ceil(frames / 2 ** p), ceil(bins / 2 ** p), min(64 * 2 ** (depth - 1), 2048))``
        with ``p = min(depth, 5)``.

    Example:

    >>> PANN(depth=2)(keras.ops.ones((2, 8, 8, 1))).shape
    (2, 2, 2, 128)
    """

    def __init__(self, depth=6, dropout_rate=0.2, **kwargs):
        super().__init__(**kwargs)
        layer_stack.check_positive_int("PANN", "depth", depth)
        layer_stack.check_rate("PANN", "dropout_rate", dropout_rate)
        self.depth = depth
        self.dropout_rate = float(dropout_rate)
        self.stack = [keras.layers.BatchNormalization(axis=2)]
        for index in range(depth):
            pool_size = (2, 2) if index < 5 else (1, 1)
            self.stack.append(PANNConvBlock(min(64 * 2**index, 2048), pool_size))
            self.stack.append(keras.layers.Dropout(self.dropout_rate))

    def _check_input_shape(self, input_shape):
        super()._check_input_shape(input_shape)
        if input_shape[2] is None:
            raise ValueError(
                "PANN normalizes each frequency bin: the bins axis must be known, got "
                f"shape {tuple(input_shape)}."
            )

    def get_config(self):
        config = super().get_config()
        config.update({"depth": self.depth, "dropout_rate": self.dropout_rate})
        return config


@keras.saving.register_keras_serializable(package=layer_stack.PACKAGE)
class WaveGram(layer_stack.LayerStack):
    """The WaveGram learnable frontend of PANNs, as simplified in leaf-audio.

    A strided 1D convolution (64 filters, kernel 11, stride 5) with batch normalization
    and ReLU, three `PANNWavBlock`s (64, 128, 128 filters, pooling by 4), then a
    `PANNConvBlock` (64 filters) that pools time by 2. Overall one frame every 640
    samples (40 ms at 16 kHz) with 64 features, returned as ``(batch, frames, 64)`` so it
    is a drop-in frontend for `AudioClassifier` (the original returned the same values
    with a trailing channel axis).

    Args:
        sample_rate: Sample rate of the input waveforms, in Hz (kept as metadata).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Input shape:
        ``(batch, samples)`` or ``(batch, samples, 1)``.

    Output shape:
        ``(batch, frames, 64)`` with
        ``frames = ceil(floor(floor(floor(ceil(samples / 5) / 4) / 4) / 4) / 2)``,
        i.e. ``samples / 640`` for multiples of 640.

    Example:

    >>> WaveGram()(keras.ops.ones((2, 16000))).shape
    (2, 25, 64)
    """

    expected_ranks = (2, 3)
    expected_shape = "(batch, samples) or (batch, samples, 1)"
    n_filters = 64
    stride = 640
    _wav_block_filters = (64, 128, 128)

    def __init__(self, sample_rate=16000, **kwargs):
        super().__init__(**kwargs)
        layer_stack.check_positive_int("WaveGram", "sample_rate", sample_rate)
        self.sample_rate = sample_rate
        # The 1D part (strided convolution and wave blocks) is the stack; the final 2D
        # block runs on it with a singleton bins axis.
        self.stack = [
            keras.layers.Conv1D(64, 11, strides=5, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
        ] + [PANNWavBlock(filters, 4) for filters in self._wav_block_filters]
        self.last_block = PANNConvBlock(self.n_filters, (2, 1))

    @property
    def window_size(self):
        """Receptive field of one output frame, in samples (2556)."""
        field, jump = 11, 5
        for _ in self._wav_block_filters:
            field += (2 + 4 + 3) * jump  # convolutions with dilation 1 and 2, pooling 4
            jump *= 4
        return field + (2 + 2 + 1) * jump  # two 3x3 convolutions, pooling 2

    def _check_input_shape(self, input_shape):
        super()._check_input_shape(input_shape)
        if len(input_shape) == 3 and input_shape[-1] not in (1, None):
            raise ValueError(
                "WaveGram expects mono waveforms (batch, samples[, 1]), got shape "
                f"{tuple(input_shape)}."
            )

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        shape = tuple(input_shape)
        if len(shape) == 2:
            shape = shape + (1,)
        super().build(shape)
        shape = super().compute_output_shape(shape)
        self.last_block.build((shape[0], shape[1], 1, shape[2]))

    def call(self, inputs, training=None):
        waveforms = inputs[:, :, None] if len(inputs.shape) == 2 else inputs
        outputs = super().call(waveforms, training=training)
        outputs = self.last_block(outputs[:, :, None, :], training=training)
        return ops.squeeze(outputs, axis=2)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) == 2:
            shape = shape + (1,)
        shape = super().compute_output_shape(shape)
        shape = self.last_block.compute_output_shape((shape[0], shape[1], 1, shape[2]))
        return (shape[0], shape[1], shape[3])

    def get_config(self):
        config = super().get_config()
        config.update({"sample_rate": self.sample_rate})
        return config

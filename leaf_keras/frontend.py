"""LEAF and the baseline frontends as Keras 3 models.

Every frontend takes float waveforms `[batch, time]` or `[batch, time, 1]`
and returns features `[batch, frames, n_filters]`, `frames = ceil(time /
stride)` (`TimeDomainFilterbanks`: VALID pooling, `(time - window_size) //
stride + 1`). Defaults are those of the paper: 16 kHz, 40 filters, 25 ms
windows (401 taps), 10 ms stride (160 samples).

Reference: Zeghidour, Teboul, de Chaumont Quitry, Tagliasacchi, "LEAF: A
Learnable Frontend for Audio Classification", ICLR 2021,
https://arxiv.org/abs/2101.08596.
"""

import keras
import numpy as np
from keras import ops

from leaf_keras import band_limited as band_limited_lib
from leaf_keras import convolution
from leaf_keras import impulse_responses
from leaf_keras import initializers
from leaf_keras import melfilters
from leaf_keras import pooling
from leaf_keras import postprocessing
from leaf_keras import utils

_DEFAULT = "default"
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def check_waveforms(shape, dtype, min_length, layer_name):
    """Raises ValueError unless `shape`/`dtype` describe mono waveforms.

    Args:
        shape: the static shape (entries may be None).
        dtype: the dtype, or None if unknown.
        min_length: minimum number of samples (the filter length).
        layer_name: name used in the messages.
    """
    shape = tuple(shape)
    if len(shape) not in (2, 3):
        raise ValueError(
            f"{layer_name} expects waveforms of shape [batch, time] or "
            f"[batch, time, 1], got shape {shape} (rank {len(shape)}).")
    if len(shape) == 3 and shape[2] is not None and shape[2] != 1:
        raise ValueError(
            f"{layer_name} expects mono waveforms [batch, time, 1], got shape "
            f"{shape} with {shape[2]} channels; mix or select one channel.")
    if dtype is not None:
        dtype = keras.backend.standardize_dtype(dtype)
        if dtype not in _FLOAT_DTYPES:
            raise ValueError(
                f"{layer_name} expects float waveforms (e.g. float32 in "
                f"[-1, 1]), got dtype {dtype} for shape {shape}; convert "
                "integer PCM with x / 32768.")
    if shape[0] == 0:
        raise ValueError(f"{layer_name} got an empty batch, shape {shape}.")
    if shape[1] is not None and shape[1] < min_length:
        raise ValueError(
            f"{layer_name} needs at least {min_length} samples (one window), "
            f"got shape {shape}.")


@keras.saving.register_keras_serializable(package="leaf_keras")
class WaveformInput(keras.layers.Layer):
    """Input stage: checks waveforms and returns them as `[batch, time, 1]`.

    Args:
        min_length: minimum number of samples.
        name: layer name.

    Input shape:
        `(batch, time)` or `(batch, time, 1)`.

    Output shape:
        `(batch, time, 1)`.
    """

    def __init__(self, min_length=1, name="waveform_input", **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, **kwargs)
        self.min_length = int(min_length)

    def build(self, input_shape):
        check_waveforms(input_shape, None, self.min_length, self.name)

    def call(self, inputs):
        check_waveforms(inputs.shape, inputs.dtype, self.min_length, self.name)
        if len(inputs.shape) == 2:
            inputs = ops.expand_dims(inputs, -1)
        return inputs

    def compute_output_shape(self, input_shape):
        check_waveforms(input_shape, None, self.min_length, self.name)
        return (input_shape[0], input_shape[1], 1)

    def get_config(self):
        config = super().get_config()
        config["min_length"] = self.min_length
        return config


@keras.saving.register_keras_serializable(package="leaf_keras")
class SquaredModulus(keras.layers.Layer):
    """Squared modulus of complex channels stored as (real, imag) pairs.

    Input channels 2k and 2k + 1 are the real and imaginary parts of complex
    channel k; output channel k is `real^2 + imag^2`.

    Input shape:
        `(batch, time, 2 * channels)`.

    Output shape:
        `(batch, time, channels)`.
    """

    def __init__(self, name="squared_modulus", **kwargs):
        super().__init__(name=name, **kwargs)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None or (
                input_shape[-1] % 2):
            raise ValueError(
                "SquaredModulus expects [batch, time, 2 * channels] with "
                f"(real, imag) pairs, got shape {tuple(input_shape)}.")

    def call(self, inputs):
        channels = inputs.shape[-1] // 2
        pairs = ops.reshape(inputs, (ops.shape(inputs)[0], ops.shape(inputs)[1],
                                     channels, 2))
        return ops.sum(ops.square(pairs), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], input_shape[2] // 2)


@keras.saving.register_keras_serializable(package="leaf_keras")
class EnergyFloor(keras.layers.Layer):
    """`max(x, floor)`: keeps pooled energies away from zero before compression.

    Args:
        floor: the minimum value.
        name: layer name.
    """

    def __init__(self, floor=1e-5, name="energy_floor", **kwargs):
        super().__init__(name=name, **kwargs)
        self.floor = float(floor)

    def call(self, inputs):
        return impulse_responses.maximum(inputs, self.floor)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["floor"] = self.floor
        return config


# The stages `fused_filterbank` computes as one channels-first pass. The
# convolutions must be stride 1, SAME, without bias (see `_fusable_conv`);
# activations are SquaredModulus or elementwise with act(0) = 0, so that the
# correlations' zeros outside the signal are the pooling's zero padding.
_FUSABLE_ACTIVATIONS = (keras.layers.LeakyReLU, keras.layers.ReLU)
_FUSABLE_POOLINGS = (pooling.GaussianLowpass, pooling.LearnablePooling1D,
                     pooling.ChannelWiseLearnablePooling1D,
                     pooling.MaxPooling1D)


def _fusable_conv(conv):
    """Whether `fused_filterbank` can compute `conv` (an FFT correlation)."""
    if type(conv) in (convolution.GaborConv1D, convolution.SincConv1D,  # pylint: disable=unidiomatic-typecheck
                      convolution.NormalizedConv1D):
        return conv.implementation == "fft" and not conv.use_bias
    if type(conv) is keras.layers.Conv1D:  # pylint: disable=unidiomatic-typecheck
        return (tuple(conv.strides) == (1,) and conv.padding == "same" and
                tuple(conv.dilation_rate) == (1,) and conv.groups == 1 and
                not conv.use_bias and conv.data_format == "channels_last" and
                conv.activation is keras.activations.linear)
    return False


def _conv_channels(conv):
    return conv.compute_output_shape((None, None, 1))[-1]


def _filter_pairs(conv):
    """`(even, odd)` real filters `[pairs, kernel_size]` of a fusable conv:
    output channels 2k and 2k + 1, correlated at once as `even[k] + i
    odd[k]` (a zero filter completes an odd count)."""
    if isinstance(conv, convolution.GaborConv1D):
        return conv.complex_filters()
    if isinstance(conv, keras.layers.Conv1D):
        bank = ops.cast(conv.kernel, "float32")
    else:
        bank = conv.filter_bank()
    bank = ops.transpose(bank[:, 0, :])
    if bank.shape[0] % 2:
        bank = ops.pad(bank, [[0, 1], [0, 0]])
    return bank[0::2], bank[1::2]


def fused_filterbank(waveforms, conv, activation, pool, method="auto"):
    """`pool(activation(conv(waveforms)))`, computed channels first.

    The filterbank of LEAF and of the baselines, evaluated without the
    `[batch, time, channels]` intermediates of the layer-by-layer path
    (whose transposes cost more than the convolution itself). The filters
    are correlated in pairs, `h_2k + i h_2k+1`, one complex FFT per pair
    (`convolution.correlation_energies` for a SquaredModulus, whose complex
    channels are exactly these pairs; `correlation_outputs` otherwise), in
    overlap-save blocks of 3200 samples whose FFTs stay in the L1 cache (one
    FFT for clips that fit in a block), directly in the pooling's padded
    layout `[channels, batch, time]`, which the pooling reads once
    (`pool_padded_channels_major`: block products or block maxima). Only
    the small pooled result is transposed. The values are those of the
    three layers up to float32 round-off.

    Args:
        waveforms: float tensor `[batch, time, 1]`.
        conv: a built convolution for which `_fusable_conv` holds.
        activation: a `SquaredModulus`, or a layer of
            `_FUSABLE_ACTIVATIONS`.
        pool: a built pooling of `_FUSABLE_POOLINGS`.
        method: "auto", "single" (one FFT per clip) or "blocks"
            (overlap-save), see `convolution.complex_fft_correlation`.

    Returns:
        A tensor `[batch, frames, channels]` in the pooling's compute dtype.
    """
    signal = ops.convert_to_tensor(waveforms)[:, :, 0]
    if keras.backend.standardize_dtype(signal.dtype) != "float32":
        signal = ops.cast(signal, "float32")
    even, odd = _filter_pairs(conv)
    time = ops.shape(signal)[1]
    frames, left, length = pool.padded_layout(time)
    # The correlation covers the whole signal (a VALID pooling may leave a
    # tail unread).
    length = (max(length, time + left) if isinstance(time, int) else
              ops.maximum(length, time + left))
    layout = dict(start=-left, length=length, hop_multiple=pool.strides,
                  method=method)
    if type(activation) is SquaredModulus:  # pylint: disable=unidiomatic-typecheck
        padded = convolution.correlation_energies(signal, even, odd, **layout)
    else:
        real, imag = convolution.correlation_outputs(signal, even, odd,
                                                     **layout)
        # [pairs, 2, batch, L] -> [channels, batch, L]: 2k, 2k + 1, ...
        # (Static channel count: the batch and time axes may be unknown.)
        padded = ops.reshape(ops.stack([real, imag], axis=1),
                             (2 * real.shape[0], ops.shape(real)[1],
                              ops.shape(real)[2]))
        # In float32 (`call` skips a mixed policy's cast to half precision,
        # as the poolings compute in float32 anyway).
        padded = activation.call(padded[:_conv_channels(conv)])
    if pool.padding_value != 0.0:
        # A max pooling pads with -inf instead.
        positions = ops.arange(ops.shape(padded)[2]) - left
        inside = ops.logical_and(positions >= 0, positions < time)
        padded = ops.where(inside, padded, pool.padding_value)
    pooled = pool.pool_padded_channels_major(padded, frames)
    return ops.cast(ops.transpose(pooled, (1, 2, 0)), pool.compute_dtype)


def _serialize_class(cls):
    """Name of a layer class for get_config (registered or keras.layers)."""
    if cls is None:
        return None
    registered = keras.saving.get_registered_name(cls)
    if keras.saving.get_registered_object(registered) is cls:
        return registered
    if getattr(keras.layers, cls.__name__, None) is cls:
        return cls.__name__
    raise ValueError(
        f"Cannot serialize layer class {cls!r}: register it with "
        "@keras.saving.register_keras_serializable().")


def _deserialize_class(name):
    if name is None or isinstance(name, type):
        return name
    cls = keras.saving.get_registered_object(name)
    if cls is None:
        cls = getattr(keras.layers, name, None)
    if cls is None:
        raise ValueError(f"Unknown layer class {name!r} in the config.")
    return cls


def _deserialize(config):
    if config is None or not isinstance(config, dict):
        return config
    return keras.saving.deserialize_keras_object(config)


def default_leaf_pcen():
    """The PCEN used by LEAF: learnable, per-channel smoothing, floor 1e-12."""
    return postprocessing.PCENLayer(
        alpha=0.96, smooth_coef=0.04, delta=2.0, floor=1e-12, trainable=True,
        learn_smooth_coef=True, per_channel_smooth_coef=True)


@keras.saving.register_keras_serializable(package="leaf_keras")
class Leaf(keras.Sequential):
    """LEAF, a learnable audio frontend (and the base of its baselines).

    A `keras.Sequential` of stages: waveform input check → optional
    pre-emphasis (`Conv1D(1, 2)`, `PreempInit`) → complex Gabor convolution
    (`GaborConv1D`, 2 * n_filters real channels) → squared modulus →
    Gaussian lowpass pooling (`GaussianLowpass`, stride `window_stride`) →
    `max(x, 1e-5)` → compression (learnable `PCENLayer` by default) →
    optional instance normalization → optional `SpecAugment` (training only).
    At initialization the filters approximate a 40-band mel filterbank
    (60–7800 Hz).

    The constructor keeps the original argument names. Differences: `None`
    defaults create fresh default objects (the original shared one default
    PCEN instance between frontends), `compression_fn` must be a layer or
    None (identity), and classes are serialized by registered name.

    Args:
        learn_pooling: whether the pooling filters are learned.
        learn_filters: whether the convolution (and pre-emphasis) is learned.
        conv1d_cls: convolution class, called with `filters=2 * n_filters,
            kernel_size, strides=1, padding="same", use_bias=False,
            kernel_initializer, kernel_regularizer, name, trainable`.
        activation: layer applied after the convolution (default
            `SquaredModulus()`).
        pooling_cls: pooling class, called with `kernel_size, strides,
            padding="same", use_bias=False, kernel_initializer,
            kernel_regularizer, trainable`.
        n_filters: number of output channels.
        sample_rate: sampling rate in Hz.
        window_len: window length in ms (`window_size = int(sample_rate *
            window_len // 1000 + 1)` taps).
        window_stride: stride in ms (`stride = int(sample_rate *
            window_stride // 1000)` samples).
        compression_fn: compression layer; the default is LEAF's PCEN
            (alpha 0.96, smoothing 0.04 learned per channel, delta 2, root 2,
            floor 1e-12, trainable); None applies no compression.
        preemp: whether to add the pre-emphasis stage.
        preemp_init: initializer of the pre-emphasis (default PreempInit()).
        complex_conv_init: initializer of the convolution (default
            `GaborInit(sample_rate=16000, min_freq=60, max_freq=7800)`).
        pooling_init: initializer of the pooling (default Constant(0.4)).
        regularizer_fn: optional regularizer of learned filters/pooling.
        mean_var_norm: whether to add per-channel instance normalization.
        spec_augment: whether to add SpecAugment (active with training=True).
        band_limited: opt-in fast mode. The convolution, squared modulus and
            pooling stages are replaced by one
            `band_limited.BandLimitedGaborPooling` stage that computes the
            same energies at a decimated rate (relative error ~1e-3 of the
            exact path; same weights, so they can be copied between modes).
            Requires the default Gabor convolution, squared modulus and
            Gaussian pooling. Default False: the exact computation of the
            original.
        name: model name.

    Input shape:
        `(batch, time)` or `(batch, time, 1)`, float, time >= window_size.

    Output shape:
        `(batch, ceil(time / stride), n_filters)`.

    Example:
        >>> leaf = Leaf()
        >>> leaf(np.zeros((2, 16000), "float32")).shape  # (2, 100, 40)
    """

    def __init__(self,
                 learn_pooling=True,
                 learn_filters=True,
                 conv1d_cls=convolution.GaborConv1D,
                 activation=None,
                 pooling_cls=pooling.GaussianLowpass,
                 n_filters=40,
                 sample_rate=16000,
                 window_len=25.0,
                 window_stride=10.0,
                 compression_fn=_DEFAULT,
                 preemp=False,
                 preemp_init=None,
                 complex_conv_init=None,
                 pooling_init=None,
                 regularizer_fn=None,
                 mean_var_norm=False,
                 spec_augment=False,
                 band_limited=False,
                 name="leaf",
                 **kwargs):
        conv1d_cls = _deserialize_class(conv1d_cls)
        pooling_cls = _deserialize_class(pooling_cls)
        if int(n_filters) < 1:
            raise ValueError(f"n_filters must be >= 1, got {n_filters}.")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}.")
        window_size = utils.window_size_in_samples(sample_rate, window_len)
        stride = utils.stride_in_samples(sample_rate, window_stride)
        if stride < 1:
            raise ValueError(
                f"window_stride={window_stride} ms at sample_rate={sample_rate}"
                " gives a stride below one sample.")
        activation = (SquaredModulus() if activation is None
                      else _deserialize(activation))
        if band_limited and (
                conv1d_cls is not convolution.GaborConv1D or
                type(activation) is not SquaredModulus or  # pylint: disable=unidiomatic-typecheck
                pooling_cls is not pooling.GaussianLowpass):
            raise ValueError(
                "band_limited=True computes LEAF's Gabor convolution, squared "
                "modulus and Gaussian pooling; it cannot replace conv1d_cls="
                f"{conv1d_cls.__name__}, activation={activation!r}, "
                f"pooling_cls={pooling_cls.__name__}.")
        if isinstance(compression_fn, str) and compression_fn == _DEFAULT:
            compression_fn = default_leaf_pcen()
        compression_fn = _deserialize(compression_fn)
        if compression_fn is not None and not isinstance(
                compression_fn, keras.layers.Layer):
            raise ValueError(
                "compression_fn must be a keras layer (e.g. PCENLayer or "
                f"LogCompression) or None, got {compression_fn!r}.")
        preemp_init = keras.initializers.get(
            preemp_init if preemp_init is not None else
            initializers.PreempInit())
        complex_conv_init = keras.initializers.get(
            complex_conv_init if complex_conv_init is not None else
            initializers.GaborInit(sample_rate=16000, min_freq=60.0,
                                   max_freq=7800.0))
        pooling_init = keras.initializers.get(
            pooling_init if pooling_init is not None else
            keras.initializers.Constant(0.4))
        regularizer_fn = keras.regularizers.get(regularizer_fn)

        stages = [WaveformInput(min_length=window_size)]
        if preemp:
            stages.append(keras.layers.Conv1D(
                filters=1, kernel_size=2, strides=1, padding="same",
                use_bias=False, kernel_initializer=preemp_init,
                kernel_regularizer=regularizer_fn if learn_filters else None,
                name="tfbanks_preemp", trainable=learn_filters))
        if band_limited:
            stages.append(band_limited_lib.BandLimitedGaborPooling(
                n_filters=int(n_filters), kernel_size=window_size,
                strides=stride, sample_rate=sample_rate,
                kernel_initializer=complex_conv_init,
                pooling_initializer=pooling_init,
                learn_filters=learn_filters, learn_pooling=learn_pooling,
                kernel_regularizer=regularizer_fn if learn_filters else None,
                pooling_regularizer=regularizer_fn if learn_pooling else None,
                name="tfbanks_band_limited"))
        else:
            stages.append(conv1d_cls(
                filters=2 * int(n_filters), kernel_size=window_size,
                strides=1, padding="same", use_bias=False,
                kernel_initializer=complex_conv_init,
                kernel_regularizer=regularizer_fn if learn_filters else None,
                name="tfbanks_complex_conv", trainable=learn_filters))
            stages.append(activation)
            stages.append(pooling_cls(
                kernel_size=window_size, strides=stride, padding="same",
                use_bias=False, kernel_initializer=pooling_init,
                kernel_regularizer=regularizer_fn if learn_pooling else None,
                trainable=learn_pooling))
        stages.append(EnergyFloor(1e-5))
        if compression_fn is not None:
            stages.append(compression_fn)
        if mean_var_norm:
            stages.append(postprocessing.InstanceNormalization(
                epsilon=1e-6, name="tfbanks_instancenorm"))
        if spec_augment:
            stages.append(postprocessing.SpecAugment())
        super().__init__(layers=stages, name=name, **kwargs)

        self.learn_pooling = bool(learn_pooling)
        self.learn_filters = bool(learn_filters)
        self.conv1d_cls = conv1d_cls
        self.pooling_cls = pooling_cls
        self.n_filters = int(n_filters)
        self.sample_rate = sample_rate
        self.window_len = float(window_len)
        self.window_stride = float(window_stride)
        self.window_size = window_size
        self.stride = stride
        self.preemp = bool(preemp)
        self.mean_var_norm = bool(mean_var_norm)
        self.spec_augment = bool(spec_augment)
        self.band_limited = bool(band_limited)
        self.activation = activation
        self.compression_fn = compression_fn
        self.preemp_init = preemp_init
        self.complex_conv_init = complex_conv_init
        self.pooling_init = pooling_init
        self.regularizer_fn = regularizer_fn

    # Constructor arguments that a subclass (a baseline frontend) fixes: they
    # are neither accepted from the caller nor written to the config.
    _FIXED = ()

    @classmethod
    def _drop_fixed(cls, kwargs):
        for key in cls._FIXED:
            kwargs.pop(key, None)

    # Stages by role (the Sequential owns them).
    def _stage(self, layer_name):
        for layer in self.layers:
            if layer.name == layer_name:
                return layer
        return None

    @property
    def complex_conv(self):
        """The convolution stage."""
        return self._stage("tfbanks_complex_conv")

    @property
    def preemp_conv(self):
        """The pre-emphasis stage, or None."""
        return self._stage("tfbanks_preemp")

    @property
    def band_limited_filterbank(self):
        """The fused band-limited stage (band_limited=True), or None."""
        return self._stage("tfbanks_band_limited")

    @property
    def pooling(self):
        """The pooling stage (the fused stage when band_limited=True)."""
        if self.band_limited:
            return self.band_limited_filterbank
        index = self.layers.index(self.complex_conv) + 2
        return self.layers[index]

    @property
    def instance_norm(self):
        """The instance normalization stage, or None."""
        return self._stage("tfbanks_instancenorm")

    def build(self, input_shape=None):
        if input_shape is not None:
            input_shape = tuple(input_shape)
            check_waveforms(input_shape, None, self.window_size, self.name)
            # Build for any batch size and length: the stages never depend
            # on the number of samples.
            input_shape = (None, None) + input_shape[2:]
        super().build(input_shape)

    def call(self, inputs, training=None, mask=None, **kwargs):
        check_waveforms(inputs.shape, inputs.dtype, self.window_size,
                        self.name)
        fused = self._fusable_filterbank()
        if fused is None:
            return super().call(inputs, training=training, mask=mask,
                                **kwargs)
        # Same stages, but convolution, activation and pooling run as one
        # channels-first computation (see `fused_filterbank`).
        first = self.layers.index(fused[0])
        outputs = self._apply_stages(self.layers[:first], inputs, training)
        outputs = fused_filterbank(outputs, *fused)
        return self._apply_stages(self.layers[first + 3:], outputs, training)

    @staticmethod
    def _apply_stages(layers, outputs, training):
        for layer in layers:
            layer_kwargs = {}
            if layer._call_has_training_arg and training is not None:  # pylint: disable=protected-access
                layer_kwargs["training"] = training
            outputs = layer(outputs, **layer_kwargs)
        return outputs

    def _fusable_filterbank(self):
        """`(conv, activation, pooling)` if `fused_filterbank` can compute
        these stages (see `_fusable_conv`), else None."""
        conv = self.complex_conv
        if conv is None or not _fusable_conv(conv):
            return None
        index = self.layers.index(conv)
        if index + 2 >= len(self.layers):
            return None
        activation, pool = self.layers[index + 1:index + 3]
        if type(pool) not in _FUSABLE_POOLINGS:  # pylint: disable=unidiomatic-typecheck
            return None
        if type(activation) is SquaredModulus:  # pylint: disable=unidiomatic-typecheck
            fusable = _conv_channels(conv) % 2 == 0
        else:
            fusable = type(activation) in _FUSABLE_ACTIVATIONS  # pylint: disable=unidiomatic-typecheck
        return (conv, activation, pool) if fusable else None

    def compute_output_shape(self, input_shape):
        check_waveforms(input_shape, None, self.window_size, self.name)
        return super().compute_output_shape(input_shape)

    def gabor_center_frequencies_hz(self):
        """Clipped Gabor center frequencies in Hz, numpy `(n_filters,)`."""
        kernel = self._gabor_kernel()
        return kernel[:, 0] * self.sample_rate / (2.0 * np.pi)

    def gabor_bandwidths_hz(self):
        """Full width at half maximum of each Gabor filter's frequency
        response in Hz, `2 sqrt(2 ln 2) / sigma * sample_rate / (2 pi)`."""
        kernel = self._gabor_kernel()
        return (2.0 * np.sqrt(2.0 * np.log(2.0)) / kernel[:, 1] *
                self.sample_rate / (2.0 * np.pi))

    def _gabor_kernel(self):
        if self.band_limited:
            fused = self.band_limited_filterbank
            if not fused.built:
                fused.build((None, None, 1))
            mu, sigma, _ = fused.clipped_parameters()
            return np.stack([np.asarray(ops.convert_to_numpy(mu)),
                             np.asarray(ops.convert_to_numpy(sigma))], axis=1)
        conv = self.complex_conv
        if not isinstance(conv, convolution.GaborConv1D):
            raise ValueError(f"{self.name} has no Gabor convolution.")
        if not conv.built:
            conv.build((None, None, 1))
        return np.asarray(ops.convert_to_numpy(conv.clipped_kernel()))

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "learn_pooling": self.learn_pooling,
            "learn_filters": self.learn_filters,
            "conv1d_cls": _serialize_class(self.conv1d_cls),
            "activation": serialize(self.activation),
            "pooling_cls": _serialize_class(self.pooling_cls),
            "n_filters": self.n_filters,
            "sample_rate": self.sample_rate,
            "window_len": self.window_len,
            "window_stride": self.window_stride,
            "compression_fn": serialize(self.compression_fn),
            "preemp": self.preemp,
            "preemp_init": serialize(self.preemp_init),
            "complex_conv_init": serialize(self.complex_conv_init),
            "pooling_init": serialize(self.pooling_init),
            "regularizer_fn": serialize(self.regularizer_fn),
            "mean_var_norm": self.mean_var_norm,
            "spec_augment": self.spec_augment,
            "band_limited": self.band_limited,
        }
        for key in self._FIXED:
            config.pop(key)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


@keras.saving.register_keras_serializable(package="leaf_keras")
class TimeDomainFilterbanks(Leaf):
    """Time-Domain Filterbanks (Zeghidour et al., 2018,
    https://arxiv.org/abs/1711.01161), as in the LEAF paper.

    A plain `Conv1D` with 2 * n_filters free filters initialized as Gabor
    filters matching mel filters (real/imag interleaved), squared modulus,
    a shared squared-Hanning pooling filter (`LearnablePooling1D`, VALID:
    `(time - window_size) // stride + 1` frames), `max(x, 1e-5)` and
    `log(x + 1e-5)`.

    Args:
        sample_rate: sampling rate in Hz.
        name: model name.
        **kwargs: other `Leaf` arguments (not the ones fixed here:
            conv1d_cls, activation, pooling_cls, complex_conv_init,
            pooling_init, compression_fn).
    """

    _FIXED = ("conv1d_cls", "activation", "pooling_cls", "complex_conv_init",
              "pooling_init", "compression_fn")

    def __init__(self, sample_rate=16000, name="tfbanks", **kwargs):
        self._drop_fixed(kwargs)
        super().__init__(
            conv1d_cls=keras.layers.Conv1D,
            activation=SquaredModulus(),
            pooling_cls=pooling.LearnablePooling1D,
            complex_conv_init=initializers.GaborInit(
                sample_rate=sample_rate, min_freq=60.0, max_freq=7800.0),
            pooling_init=initializers.LowpassInit(
                sample_rate=sample_rate,
                window_type=utils.WindowType.SQUARED_HANNING),
            compression_fn=postprocessing.LogCompression(log_offset=1e-5),
            sample_rate=sample_rate, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="leaf_keras")
class SincNet(Leaf):
    """SincNet (Ravanelli & Bengio, 2018, https://arxiv.org/abs/1808.00158).

    `SincConv1D` band-pass filters (initialized on the mel scale,
    `SincInit`), LeakyReLU(0.2), max pooling, `max(x, 1e-5)` and layer
    normalization over channels.

    Args:
        name: model name.
        **kwargs: other `Leaf` arguments (not conv1d_cls, activation,
            pooling_cls, complex_conv_init, compression_fn).
    """

    _FIXED = ("conv1d_cls", "activation", "pooling_cls", "complex_conv_init",
              "compression_fn")

    def __init__(self, name="sincnet", **kwargs):
        self._drop_fixed(kwargs)
        super().__init__(
            conv1d_cls=convolution.SincConv1D,
            complex_conv_init=initializers.SincInit(),
            activation=keras.layers.LeakyReLU(negative_slope=0.2),
            pooling_cls=pooling.MaxPooling1D,
            compression_fn=keras.layers.LayerNormalization(
                name="layer_normalization"),
            name=name, **kwargs)


@keras.saving.register_keras_serializable(package="leaf_keras")
class SincNetPlus(Leaf):
    """SincNet+: SincNet with Gaussian lowpass pooling and fixed PCEN.

    `SincConv1D`, LeakyReLU(0.2), `GaussianLowpass` (init 0.4), `max(x,
    1e-5)` and a non-learned `PCENLayer()` (alpha 0.96, smoothing 0.04,
    delta 2, root 2, floor 1e-6).

    Args:
        name: model name.
        **kwargs: other `Leaf` arguments (not conv1d_cls, activation,
            pooling_cls, complex_conv_init, pooling_init, compression_fn).
    """

    _FIXED = ("conv1d_cls", "activation", "pooling_cls", "complex_conv_init",
              "pooling_init", "compression_fn")

    def __init__(self, name="sincnet_plus", **kwargs):
        self._drop_fixed(kwargs)
        super().__init__(
            conv1d_cls=convolution.SincConv1D,
            complex_conv_init=initializers.SincInit(),
            activation=keras.layers.LeakyReLU(negative_slope=0.2),
            pooling_cls=pooling.GaussianLowpass,
            pooling_init=keras.initializers.Constant(0.4),
            compression_fn=postprocessing.PCENLayer(),
            name=name, **kwargs)


def frame_signal(signal, frame_length, frame_step):
    """Frames `[batch, time]` like `tf.signal.frame(..., pad_end=True)`.

    Args:
        signal: float tensor `[batch, time]`.
        frame_length: samples per frame.
        frame_step: hop between frames.

    Returns:
        A tensor `[batch, ceil(time / frame_step), frame_length]`, the end
        zero-padded.
    """
    time = ops.shape(signal)[1]
    batch = ops.shape(signal)[0]
    num_frames = (time + frame_step - 1) // frame_step
    blocks_per_frame = -(-frame_length // frame_step)
    padded_length = (num_frames + blocks_per_frame - 1) * frame_step
    signal = ops.pad(signal, [[0, 0], [0, padded_length - time]])
    blocks = ops.reshape(signal, (batch, -1, frame_step))
    # Frame j is made of blocks j .. j + blocks_per_frame - 1.
    frames = ops.concatenate(
        [blocks[:, offset:offset + num_frames, :]
         for offset in range(blocks_per_frame)], axis=-1)
    return frames[:, :, :frame_length]


@keras.saving.register_keras_serializable(package="leaf_keras")
class MelFilterbanks(keras.layers.Layer):
    """Log mel filterbanks, computed like the original (tf.signal) baseline.

    STFT as `tf.signal.stft(frame_length=window_size, frame_step=stride,
    fft_length=n_fft, pad_end=True)` with its default Hann window (TF's
    "periodic" window, which for an odd length such as 401 is the symmetric
    `0.5 - 0.5 cos(2 pi n / (L - 1))`), power
    spectrum, mel matrix (`tf.signal.linear_to_mel_weight_matrix`
    definition, `min_freq`–`max_freq`), then `compression_fn`
    (`LogCompression(1e-5)` by default).

    Args:
        n_filters: number of mel bands.
        sample_rate: sampling rate in Hz.
        n_fft: FFT size.
        window_len: window length in ms.
        window_stride: stride in ms.
        compression_fn: compression layer or None (power mel filterbanks).
        min_freq: lowest frequency in Hz.
        max_freq: highest frequency in Hz (None: sample_rate / 2).
        name: layer name.

    Input shape:
        `(batch, time)` or `(batch, time, 1)`.

    Output shape:
        `(batch, ceil(time / stride), n_filters)`.
    """

    def __init__(self, n_filters=40, sample_rate=16000, n_fft=512,
                 window_len=25.0, window_stride=10.0, compression_fn=_DEFAULT,
                 min_freq=60.0, max_freq=7800.0, name="mel_filterbanks",
                 **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, **kwargs)
        self.n_filters = int(n_filters)
        self.sample_rate = sample_rate
        self.n_fft = int(n_fft)
        self.window_len = float(window_len)
        self.window_stride = float(window_stride)
        self.window_size = utils.window_size_in_samples(sample_rate, window_len)
        self.stride = utils.stride_in_samples(sample_rate, window_stride)
        if self.stride < 1:
            raise ValueError(f"window_stride={window_stride} ms is below one "
                             f"sample at sample_rate={sample_rate}.")
        if self.n_fft < self.window_size:
            raise ValueError(f"n_fft={n_fft} is shorter than the window "
                             f"({self.window_size} samples).")
        self.min_freq = float(min_freq)
        self.max_freq = float(max_freq) if max_freq else sample_rate / 2.0
        if isinstance(compression_fn, str) and compression_fn == _DEFAULT:
            compression_fn = postprocessing.LogCompression(log_offset=1e-5)
        self.compression_fn = _deserialize(compression_fn)
        self._mel_matrix = melfilters.linear_to_mel_weight_matrix(
            num_mel_bins=self.n_filters,
            num_spectrogram_bins=self.n_fft // 2 + 1,
            sample_rate=sample_rate, lower_edge_hertz=self.min_freq,
            upper_edge_hertz=self.max_freq)
        # tf.signal.hann_window(periodic=True) is only periodic for even
        # lengths: an odd window (401 taps) is the symmetric one, n / (L - 1).
        n = np.arange(self.window_size)
        period = self.window_size - (self.window_size % 2)
        self._window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / max(period, 1))
                        ).astype(np.float32)

    @property
    def mel_filters(self):
        """The `(n_fft // 2 + 1, n_filters)` mel matrix (numpy)."""
        return self._mel_matrix

    def build(self, input_shape):
        check_waveforms(input_shape, None, self.window_size, self.name)
        if self.compression_fn is not None and not self.compression_fn.built:
            self.compression_fn.build(
                (input_shape[0], None, self.n_filters))

    def mel_power(self, inputs):
        """Mel-band power `[batch, frames, n_filters]` (no compression)."""
        check_waveforms(inputs.shape, inputs.dtype, self.window_size,
                        self.name)
        inputs = ops.convert_to_tensor(inputs)
        if keras.backend.standardize_dtype(inputs.dtype) != "float32":
            inputs = ops.cast(inputs, "float32")
        if len(inputs.shape) == 3:
            inputs = inputs[:, :, 0]
        frames = frame_signal(inputs, self.window_size, self.stride)
        frames = frames * ops.convert_to_tensor(self._window)
        real, imag = ops.rfft(frames, fft_length=self.n_fft)
        power = ops.square(real) + ops.square(imag)
        return ops.matmul(power, ops.convert_to_tensor(self._mel_matrix))

    def call(self, inputs):
        outputs = self.mel_power(inputs)
        if self.compression_fn is not None:
            outputs = self.compression_fn(outputs)
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        check_waveforms(input_shape, None, self.window_size, self.name)
        time = input_shape[1]
        frames = None if time is None else -(-time // self.stride)
        return (input_shape[0], frames, self.n_filters)

    def get_config(self):
        config = super().get_config()
        config.update({
            "n_filters": self.n_filters,
            "sample_rate": self.sample_rate,
            "n_fft": self.n_fft,
            "window_len": self.window_len,
            "window_stride": self.window_stride,
            "compression_fn": keras.saving.serialize_keras_object(
                self.compression_fn),
            "min_freq": self.min_freq,
            "max_freq": self.max_freq,
        })
        return config


@keras.saving.register_keras_serializable(package="leaf_keras")
class MelPCEN(MelFilterbanks):
    """Mel-PCEN baseline: mel filterbank energies compressed by PCEN.

    The paper's "Mel-PCEN": `MelFilterbanks` power (same STFT and mel
    matrix), then by default the same learnable PCEN as LEAF (alpha 0.96,
    smoothing 0.04 learned per channel, delta 2, root 2, floor 1e-12,
    alpha/delta/root trainable).

    Args:
        compression_fn: the PCEN layer (default: LEAF's PCEN, see above).
        name: layer name.
        **kwargs: other `MelFilterbanks` arguments.
    """

    def __init__(self, compression_fn=_DEFAULT, name="mel_pcen", **kwargs):
        if isinstance(compression_fn, str) and compression_fn == _DEFAULT:
            compression_fn = default_leaf_pcen()
        super().__init__(compression_fn=compression_fn, name=name, **kwargs)

"""Convolutions of the learnable frontends: Gabor, sinc and normalized filters.

Each layer builds its filter bank from a few parameters and correlates the
waveform with it. The filters of LEAF are long (401 taps for 25 ms at 16 kHz)
and applied at stride 1, so they are correlated in the Fourier domain by
default (`ops.fft_correlation.fft_conv1d`), which computes the SAME-padded
cross-correlation of `tf.nn.conv1d` up to float32 round-off, several times
faster than a direct convolution (`implementation="direct"`).

Reference: Zeghidour et al., "LEAF: A Learnable Frontend for Audio
Classification", ICLR 2021, Section 3.1; Ravanelli & Bengio, "Speaker
Recognition from Raw Waveform with SincNet", 2018.
"""

import math

import keras
import numpy as np
from keras import ops

from leaf_keras import impulse_responses
from leaf_keras import initializers
from leaf_keras import utils
from leaf_keras.ops import fft_correlation
from leaf_keras.ops import padding as padding_lib
from leaf_keras.ops import precision
from leaf_keras.ops import tie_gradients

IMPLEMENTATIONS = ("auto", "direct", "fft", "overlap_add")


def _apply_conv(inputs, filters, strides, padding, implementation):
    """Direct (`ops.conv`) or FFT convolution of [batch, time, 1] inputs."""
    if implementation == "fft":
        return fft_correlation.fft_conv1d(inputs, filters)
    if implementation == "overlap_add":
        return fft_correlation.overlap_add_conv1d(inputs, filters)
    return ops.conv(inputs, ops.cast(filters, inputs.dtype), strides=strides, padding=padding)


def _resolve_implementation(implementation, kernel_size, strides, padding):
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"implementation must be 'auto', 'direct', 'fft' or 'overlap_add', "
            f"got {implementation!r}."
        )
    fft_possible = strides == 1 and padding == "same"
    if implementation == "auto":
        return "fft" if fft_possible and kernel_size >= 32 else "direct"
    if implementation != "direct" and not fft_possible:
        raise ValueError(
            f"implementation={implementation!r} needs strides=1 and "
            f"padding='same', got strides={strides}, padding={padding!r}."
        )
    return implementation


def real_filter_pairs(bank):
    """Pairs the channels of a kernel `(kernel_size, 1, channels)` as
    `(even, odd)` filters `[ceil(channels / 2), kernel_size]`."""
    bank = ops.transpose(precision.upcast_half(bank)[:, 0, :])
    if bank.shape[0] % 2:
        bank = ops.pad(bank, [[0, 1], [0, 0]])
    return bank[0::2], bank[1::2]


def _check_single_channel(layer, input_shape):
    if len(input_shape) != 3 or input_shape[-1] != 1:
        raise ValueError(
            f"{layer.__class__.__name__} expects inputs [batch, time, 1], got "
            f"shape {tuple(input_shape)}."
        )


@keras.saving.register_keras_serializable(package="leaf_keras")
class GaborConstraint(keras.constraints.Constraint):
    """Keeps Gabor parameters in a meaningful range.

    The center frequency mu is clipped to [0, pi] and the standard deviation
    sigma to [4 sqrt(2 ln 2) / pi, kernel_size sqrt(2 ln 2) / pi] samples,
    i.e. the full width at half maximum of the frequency response stays
    between 2 pi / kernel_size ... pi / 2 (Section 2.2 of
    https://arxiv.org/abs/1711.01161).

    Args:
        kernel_size: filter length in samples.
    """

    def __init__(self, kernel_size):
        self.kernel_size = int(kernel_size)

    # `(lower, upper)` bounds of mu in radians per sample.
    mu_bounds = (0.0, math.pi)

    @property
    def sigma_bounds(self):
        """`(lower, upper)` bounds of sigma in samples."""
        half_max = math.sqrt(2.0 * math.log(2.0)) / math.pi
        return 4.0 * half_max, self.kernel_size * half_max

    def __call__(self, kernel):
        kernel = ops.convert_to_tensor(kernel)
        mu = tie_gradients.clip(kernel[:, 0], *self.mu_bounds)
        sigma = tie_gradients.clip(kernel[:, 1], *self.sigma_bounds)
        return ops.stack([mu, sigma], axis=1)

    def clip_numpy(self, kernel):
        """The same clipping of a numpy `kernel`, in float64 and without a backend: a
        layer can plan from it while its build is traced."""
        kernel = np.asarray(kernel, np.float64)
        mu = np.clip(kernel[:, 0], *self.mu_bounds)
        sigma = np.clip(kernel[:, 1], *self.sigma_bounds)
        return np.stack([mu, sigma], axis=1)

    def get_config(self):
        return {"kernel_size": self.kernel_size}


class ParametricConv1D(keras.layers.Layer):
    """Shared constructor/config of the parametric 1-D convolutions."""

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="same",
        use_bias=False,
        kernel_initializer=None,
        kernel_regularizer=None,
        trainable=True,
        implementation="auto",
        name=None,
        **kwargs,
    ):
        kwargs.pop("input_shape", None)  # accepted for original call sites
        # Filters are built and convolved in float32 even under a mixed
        # policy: Gabor/sinc filters and FFTs lose too much in half precision.
        # (Their float32 weights are also created with autocast=False: Keras
        # reads autocast weights in the compute dtype inside the autocast
        # scope of an enclosing layer, e.g. a frontend, whatever this
        # layer's `autocast`; a sinc cutoff rounded to bfloat16 moves by up
        # to 0.4 %, which changes the filter outputs by ~8 %.)
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, trainable=trainable, **kwargs)
        if int(filters) < 2 or int(filters) % 2:
            raise ValueError(
                f"{self.__class__.__name__}: filters must be an even number >= 2, got {filters}."
            )
        self.kernel_size, self.strides, self.padding = utils.check_window_arguments(
            kernel_size, strides, padding
        )
        self.filters = int(filters)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.implementation = _resolve_implementation(
            implementation, self.kernel_size, self.strides, self.padding
        )
        self._implementation_arg = implementation

    def _build_weights(self, input_shape, kernel_shape, bias_size, constraint=None):
        """Checks the single input channel; adds the float32 "kernel" (and
        "bias" of `bias_size` values with `use_bias`)."""
        _check_single_channel(self, input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=kernel_shape,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=constraint,
            trainable=self.trainable,
            dtype=precision.working_dtype(self),
            autocast=False,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(bias_size,),
                initializer="zeros",
                dtype=precision.working_dtype(self),
                autocast=False,
            )

    @property
    def output_channels(self):
        """Number of output channels."""
        return self.filters

    def filter_pairs(self):
        """The filter bank as `(even, odd)` real filters `[pairs,
        kernel_size]`: output channels 2k and 2k + 1, which a complex
        correlation computes at once as `even[k] + i odd[k]` (a zero filter
        completes an odd count)."""
        return real_filter_pairs(self.filter_bank())

    def compute_output_shape(self, input_shape):
        length = padding_lib.output_length(
            input_shape[1], self.kernel_size, self.strides, self.padding
        )
        return (input_shape[0], length, self.output_channels)

    def filter_bank(self):
        """Real convolution kernel `(kernel_size, 1, output_channels)`."""
        raise NotImplementedError

    @precision.keeps_float64
    def call(self, inputs):
        inputs = precision.upcast_half(inputs)
        outputs = _apply_conv(
            inputs, self.filter_bank(), self.strides, self.padding, self.implementation
        )
        if self.use_bias:
            outputs = outputs + ops.cast(self.bias, outputs.dtype)
        return ops.cast(outputs, self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "implementation": self._implementation_arg,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="leaf_keras")
class GaborConv1D(ParametricConv1D):
    """Convolution with complex Gabor filters, 2 parameters per filter.

    Filter k is `exp(-t^2 / (2 sigma_k^2)) exp(i mu_k t) / (sqrt(2 pi)
    sigma_k)`, t = -(K // 2) .. (K + 1) // 2 - 1. The weight "kernel" of
    shape `(filters // 2, 2)` holds (mu in radians per sample, sigma in
    samples); `GaborConstraint` clips it inside `call` (the stored variable
    may hold out-of-range values, as in the original) and is also attached to
    the variable, so optimizers project it after each step like the original.

    Args:
        filters: number of real output channels, 2 per complex filter
            (channel 2k is the real part of filter k, 2k + 1 its imaginary
            part).
        kernel_size: filter length K in samples.
        strides: convolution stride.
        padding: "same" or "valid".
        use_bias: whether to add a bias per output channel.
        kernel_initializer: initializer of the `(filters // 2, 2)` kernel,
            e.g. `GaborInit`.
        kernel_regularizer: optional regularizer of the kernel.
        trainable: whether the Gabor parameters are learned.
        sort_filters: if True, filters are sorted by center frequency.
        implementation: "auto" (FFT for long stride-1 SAME kernels), "fft",
            "overlap_add" or "direct".
        name: layer name.

    Input shape:
        `(batch, time, 1)`.

    Output shape:
        `(batch, time, filters)` for SAME padding at stride 1.

    Example:
        >>> conv = GaborConv1D(80, 401, kernel_initializer=GaborInit(
        ...     sample_rate=16000, min_freq=60.0, max_freq=7800.0))
        >>> conv(np.zeros((2, 16000, 1), "float32")).shape  # (2, 16000, 80)
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="same",
        use_bias=False,
        kernel_initializer=None,
        kernel_regularizer=None,
        trainable=True,
        sort_filters=False,
        implementation="auto",
        name=None,
        **kwargs,
    ):
        if kernel_initializer is None:
            kernel_initializer = initializers.GaborInit(min_freq=60.0, max_freq=7800.0)
        super().__init__(
            filters,
            kernel_size,
            strides,
            padding,
            use_bias,
            kernel_initializer,
            kernel_regularizer,
            trainable,
            implementation,
            name,
            **kwargs,
        )
        self.sort_filters = bool(sort_filters)
        self.constraint = GaborConstraint(self.kernel_size)

    def build(self, input_shape):
        self._build_weights(input_shape, (self.filters // 2, 2), self.filters, self.constraint)

    def clipped_kernel(self):
        """The Gabor parameters as used: clipped, optionally sorted."""
        kernel = self.constraint(ops.cast(self.kernel, precision.working_dtype(self)))
        if self.sort_filters:
            kernel = ops.take(kernel, ops.argsort(kernel[:, 0]), axis=0)
        return kernel

    def complex_filters(self):
        """The complex Gabor filters as `(real, imag)`, each
        `(filters // 2, kernel_size)`."""
        return impulse_responses.gabor_filters(self.clipped_kernel(), self.kernel_size)

    def filter_pairs(self):
        # Channels 2k and 2k + 1 are the real and imaginary parts of filter k.
        return self.complex_filters()

    def filter_bank(self):
        """Real convolution kernel `(kernel_size, 1, filters)` (interleaved)."""
        real, imag = self.complex_filters()
        stacked = ops.reshape(ops.stack([real, imag], axis=1), (self.filters, self.kernel_size))
        return ops.expand_dims(ops.transpose(stacked), 1)

    def get_config(self):
        config = super().get_config()
        config["sort_filters"] = self.sort_filters
        return config


@keras.saving.register_keras_serializable(package="leaf_keras")
class SincConv1D(ParametricConv1D):
    """Convolution with Hamming-windowed sinc band-pass filters (SincNet).

    The weight "kernel" `(filters // 2, 2)` holds (lower cutoff, band width)
    in Hz. As in the original: `low = min_low_hz + |kernel[:, 0]|`,
    `high = clip(low + min_band_hz + |kernel[:, 1]|, min_low_hz,
    sample_rate / 2)`, the band-pass is normalized to a peak of 1 and
    multiplied by the Hamming window `0.54 - 0.46 cos(2 pi n / K)`.

    Note on `sample_rate`: the original layer builds its filters with
    `sinc_filters(...)` at that function's default rate of 16000 Hz, and the
    original frontends never pass a rate to the layer (whose default is also
    16000). This port keeps that: `sample_rate` (default 16000) sets both
    the Nyquist clip and the time axis of the filters, and `SincNet` /
    `SincNetPlus` leave it at 16000 whatever their own `sample_rate`, so the
    parameters are "Hz at 16 kHz" (i.e. a normalized frequency times 16000).

    Like the original, `filters` counts the channels of a complex
    convolution: the layer produces `filters // 2` real output channels.

    Args:
        filters: twice the number of band-pass filters.
        kernel_size: filter length in samples (odd).
        strides: convolution stride.
        padding: "same" or "valid".
        use_bias: whether to add a bias per output channel.
        kernel_initializer: initializer of the kernel, e.g. `SincInit`.
        kernel_regularizer: optional regularizer of the kernel.
        trainable: whether the cutoffs are learned.
        sample_rate: rate (Hz) of the filters' time axis, see above.
        min_low_hz: minimum lower cutoff frequency.
        min_band_hz: minimum band width.
        implementation: "auto", "fft", "overlap_add" or "direct".
        name: layer name.

    Input shape:
        `(batch, time, 1)`.

    Output shape:
        `(batch, time, filters // 2)` for SAME padding at stride 1.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="same",
        use_bias=False,
        kernel_initializer=None,
        kernel_regularizer=None,
        trainable=True,
        sample_rate=16000,
        min_low_hz=50.0,
        min_band_hz=50.0,
        implementation="auto",
        name=None,
        **kwargs,
    ):
        if kernel_initializer is None:
            kernel_initializer = initializers.SincInit()
        super().__init__(
            filters,
            kernel_size,
            strides,
            padding,
            use_bias,
            kernel_initializer,
            kernel_regularizer,
            trainable,
            implementation,
            name,
            **kwargs,
        )
        if self.kernel_size % 2 == 0:
            raise ValueError(f"SincConv1D needs an odd kernel_size, got {kernel_size}.")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}.")
        self.sample_rate = sample_rate
        self.min_low_hz = float(min_low_hz)
        self.min_band_hz = float(min_band_hz)
        self._window = utils.window(utils.WindowType.HAMMING, self.kernel_size)

    def build(self, input_shape):
        self._build_weights(input_shape, (self.filters // 2, 2), self.filters // 2)

    def band_edges(self):
        """(low, high) cutoffs in Hz after the abs/min/clip rules."""
        kernel = ops.cast(self.kernel, precision.working_dtype(self))
        low = self.min_low_hz + ops.abs(kernel[:, 0])
        high = tie_gradients.clip(
            low + self.min_band_hz + ops.abs(kernel[:, 1]), self.min_low_hz, self.sample_rate / 2.0
        )
        return low, high

    @property
    def output_channels(self):
        return self.filters // 2

    def filter_bank(self):
        """Real convolution kernel `(kernel_size, 1, filters // 2)`."""
        low, high = self.band_edges()
        filters = impulse_responses.sinc_filters(
            low[None, :], high[None, :], self.kernel_size, self.sample_rate
        )
        filters = filters * ops.convert_to_tensor(self._window[:, None], filters.dtype)
        return ops.expand_dims(filters, 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sample_rate": self.sample_rate,
                "min_low_hz": self.min_low_hz,
                "min_band_hz": self.min_band_hz,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="leaf_keras")
class NormalizedConv1D(ParametricConv1D):
    """A 1-D convolution whose filters are kept at unit L2 norm.

    The weight "kernel" `(kernel_size, 1, filters)` is divided by its L2 norm
    over the time axis (`keras.constraints.UnitNorm(axis=0)`) inside `call`.

    Args:
        filters: number of output channels.
        kernel_size: filter length.
        strides: convolution stride.
        padding: "same" or "valid".
        use_bias: whether to add a bias per output channel.
        kernel_initializer: initializer of the kernel.
        kernel_regularizer: optional regularizer of the kernel.
        trainable: whether the filters are learned.
        implementation: "auto", "fft", "overlap_add" or "direct".
        name: layer name.

    Input shape:
        `(batch, time, 1)`.

    Output shape:
        `(batch, frames, filters)`.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="same",
        use_bias=False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        trainable=True,
        implementation="auto",
        name=None,
        **kwargs,
    ):
        super().__init__(
            2 * int(filters),
            kernel_size,
            strides,
            padding,
            use_bias,
            kernel_initializer,
            kernel_regularizer,
            trainable,
            implementation,
            name,
            **kwargs,
        )
        self.filters = int(filters)
        self.constraint = keras.constraints.UnitNorm(axis=0)

    def build(self, input_shape):
        self._build_weights(
            input_shape, (self.kernel_size, 1, self.filters), self.filters, self.constraint
        )

    def filter_bank(self):
        """The unit-norm kernel `(kernel_size, 1, filters)`."""
        return self.constraint(ops.cast(self.kernel, precision.working_dtype(self)))

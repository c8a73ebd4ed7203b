"""Keras initializers for the learnable frontends.

`PreempInit` (pre-emphasis filter), `GaborInit` (Gabor parameters or filters
matching a mel filterbank), `SincInit` (mel-spaced sinc band edges) and
`LowpassInit` (a fixed window used as pooling filter), as in LEAF
(Zeghidour et al., ICLR 2021).
"""

import keras
import numpy as np
from keras import ops

from leaf_keras import melfilters
from leaf_keras import utils


def _as_tensor(array, dtype):
    dtype = keras.backend.standardize_dtype(dtype or keras.backend.floatx())
    return ops.convert_to_tensor(np.asarray(array).astype(dtype), dtype=dtype)


@keras.saving.register_keras_serializable(package="leaf_keras")
class PreempInit(keras.initializers.Initializer):
    """Initializes a 2-tap pre-emphasis filter `y[n] = x[n] - alpha x[n-1]`.

    With a SAME-padded cross-correlation the kernel `[-alpha, 1]` applied at
    position n sees `x[n]` (tap 0 for the left neighbour under TF's SAME rule
    for even kernels is `x[n]`, tap 1 is `x[n + 1]`), exactly as in the
    original LEAF code.

    Args:
        alpha: pre-emphasis coefficient, usually in (0, 1).

    Example:
        >>> init = PreempInit(0.97)
        >>> init((2, 1, 1))  # [[[-0.97]], [[1.]]]
    """

    def __init__(self, alpha=0.97):
        self.alpha = float(alpha)

    def __call__(self, shape, dtype=None):
        if tuple(shape) != (2, 1, 1):
            raise ValueError(f"PreempInit builds a (2, 1, 1) kernel, got shape {shape}.")
        kernel = np.zeros((2, 1, 1))
        kernel[0, 0, 0] = -self.alpha
        kernel[1, 0, 0] = 1.0
        return _as_tensor(kernel, dtype)

    def get_config(self):
        return {"alpha": self.alpha}


@keras.saving.register_keras_serializable(package="leaf_keras")
class GaborInit(keras.initializers.Initializer):
    """Initializes Gabor filters that imitate a mel filterbank.

    For a shape of rank 2 `(n_filters, 2)` it returns the Gabor parameters
    (center frequency in radians per sample, standard deviation in samples)
    used by `GaborConv1D`. For a shape of rank 3 `(kernel_size, 1,
    2 * n_filters)` it returns real-valued convolution kernels with the real
    and imaginary parts of filter k in channels 2k and 2k + 1 (used by
    `TimeDomainFilterbanks`).

    The number of filters (and, for rank 3, the window length) are taken from
    the shape, as in the latest leaf-audio.

    Args:
        **kwargs: arguments of `melfilters.Gabor` other than `n_filters` and
            `window_len`: `min_freq`, `max_freq`, `sample_rate`, `n_fft`,
            `normalize_energy`.

    Example:
        >>> init = GaborInit(sample_rate=16000, min_freq=60.0, max_freq=7800.0)
        >>> init((40, 2)).shape  # (40, 2)
    """

    _ALLOWED = ("min_freq", "max_freq", "sample_rate", "n_fft", "normalize_energy", "window_stride")

    def __init__(self, **kwargs):
        kwargs.pop("n_filters", None)
        kwargs.pop("window_len", None)
        unknown = sorted(set(kwargs) - set(self._ALLOWED))
        if unknown:
            raise ValueError(
                f"GaborInit got unknown arguments {unknown}; allowed: {list(self._ALLOWED)}."
            )
        # window_stride is accepted for compatibility with older gin configs.
        kwargs.pop("window_stride", None)
        self._kwargs = kwargs

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) == 2:
            return _as_tensor(self.gabor_parameters(shape), dtype)
        if len(shape) != 3 or shape[1] != 1 or shape[2] % 2:
            raise ValueError(
                f"GaborInit expects (n_filters, 2) or (kernel_size, 1, 2 * n_filters), got {shape}."
            )
        gabor = melfilters.Gabor(n_filters=shape[2] // 2, window_len=shape[0], **self._kwargs)
        filters = gabor.gabor_filters  # (n_filters, kernel_size) complex
        kernel = np.zeros(shape, dtype=np.float32)
        kernel[:, 0, 0::2] = filters.real.T
        kernel[:, 0, 1::2] = filters.imag.T
        return _as_tensor(kernel, dtype)

    def gabor_parameters(self, shape):
        """The Gabor parameters of shape `(n_filters, 2)` as a float32 numpy array.

        What `__call__` returns for that shape, without a backend: a layer can plan
        from it while its build is traced (`BandLimitedGaborPooling`).
        """
        shape = tuple(shape)
        if len(shape) != 2 or shape[1] != 2:
            raise ValueError(
                f"GaborInit expects (n_filters, 2) or (kernel_size, 1, 2 * n_filters), got {shape}."
            )
        return melfilters.Gabor(n_filters=shape[0], **self._kwargs).gabor_params_from_mels

    def get_config(self):
        return dict(self._kwargs)


@keras.saving.register_keras_serializable(package="leaf_keras")
class SincInit(keras.initializers.Initializer):
    """Initializes SincNet band edges uniformly on the mel scale.

    Returns `(n_filters, 2)` = (lower cutoff in Hz, band width in Hz), the
    bands tiling `[min_low_hz, sample_rate / 2 - min_low_hz - min_band_hz]`.

    Args:
        sample_rate: sampling rate in Hz.
        min_low_hz: minimum lower cutoff frequency.
        min_band_hz: minimum band width.
    """

    def __init__(self, sample_rate=16000, min_low_hz=50.0, min_band_hz=50.0):
        self.sample_rate = sample_rate
        self.min_low_hz = float(min_low_hz)
        self.min_band_hz = float(min_band_hz)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) != 2 or shape[1] != 2:
            raise ValueError(f"SincInit expects a (n_filters, 2) shape, got {shape}.")
        low_hz = self.min_low_hz
        high_hz = 0.5 * self.sample_rate - (low_hz + self.min_band_hz)
        edges_mel = np.linspace(utils.hz2mel(low_hz), utils.hz2mel(high_hz), shape[0] + 1)
        edges_hz = utils.mel2hz(edges_mel)
        return _as_tensor(np.stack([edges_hz[:-1], np.diff(edges_hz)], axis=1), dtype)

    def get_config(self):
        return {
            "sample_rate": self.sample_rate,
            "min_low_hz": self.min_low_hz,
            "min_band_hz": self.min_band_hz,
        }


@keras.saving.register_keras_serializable(package="leaf_keras")
class LowpassInit(keras.initializers.Initializer):
    """Initializes pooling filters with a fixed window (squared Hanning).

    The window has `int(sample_rate * window_len // 1000 + 1)` taps and is
    copied into every channel of a kernel of shape `(K, 1, C)` (channel-wise
    pooling) or `(1, K, C, 1)` (shared 2-D pooling filter).

    Args:
        sample_rate: sampling rate in Hz.
        window_len: window length in milliseconds.
        window_type: a `utils.WindowType` or its name.
    """

    def __init__(
        self, sample_rate=16000, window_len=25.0, window_type=utils.WindowType.SQUARED_HANNING
    ):
        self.sample_rate = sample_rate
        self.window_len = float(window_len)
        self.window_type = utils.WindowType.from_value(window_type)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        window = utils.window(
            self.window_type, utils.window_size_in_samples(self.sample_rate, self.window_len)
        )
        kernel = np.zeros(shape)
        if len(shape) == 3 and shape[0] == len(window):
            kernel[:, 0, :] = window[:, np.newaxis]
        elif len(shape) == 4 and shape[1] == len(window):
            kernel[0, :, :, 0] = window[:, np.newaxis]
        else:
            raise ValueError(
                f"LowpassInit expects a ({len(window)}, 1, C) or "
                f"(1, {len(window)}, C, 1) shape, got {shape}."
            )
        return _as_tensor(kernel, dtype)

    def get_config(self):
        return {
            "sample_rate": self.sample_rate,
            "window_len": self.window_len,
            "window_type": self.window_type.name.lower(),
        }

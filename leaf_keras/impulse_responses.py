"""Impulse responses of the parametric filters used by LEAF and its baselines.

All functions use `keras.ops`, so the filters are differentiable with respect
to their parameters on every backend. Complex Gabor filters are returned as a
`(real, imag)` pair because complex tensors are not supported uniformly by
the Keras backends.
"""

import math

from keras import ops

from leaf_keras.ops import tie_gradients


def gabor_impulse_response(t, center, sigma):
    """Complex Gabor impulse responses sampled at times `t`.

    `h[k, n] = 1 / (sqrt(2 pi) sigma_k) * exp(-t_n^2 / (2 sigma_k^2))
    * exp(i mu_k t_n)`, with `mu = center` (radians per sample) and `sigma`
    the time-domain standard deviation in samples (the original names this
    argument "fwhm", though it is not a full width at half maximum).

    Args:
        t: float tensor `(size,)`, sample times.
        center: float tensor `(filters,)`, center frequencies in radians.
        sigma: float tensor `(filters,)`, Gaussian standard deviations.

    Returns:
        A pair `(real, imag)` of float tensors of shape `(filters, size)`.
    """
    t = ops.convert_to_tensor(t)
    center = ops.convert_to_tensor(center)
    sigma = ops.convert_to_tensor(sigma)
    denominator = 1.0 / (math.sqrt(2.0 * math.pi) * sigma)
    gaussian = ops.exp(ops.expand_dims(1.0 / (2.0 * sigma**2), 1) * ops.expand_dims(-(t**2), 0))
    phase = ops.expand_dims(center, 1) * ops.expand_dims(t, 0)
    envelope = ops.expand_dims(denominator, 1) * gaussian
    return envelope * ops.cos(phase), envelope * ops.sin(phase)


def gabor_time_axis(size, dtype="float32"):
    """Sample times `-(size // 2) .. (size + 1) // 2 - 1` of a Gabor filter."""
    return ops.arange(-(size // 2), (size + 1) // 2, dtype=dtype)


def gabor_filters(kernel, size=401):
    """Gabor filters from their `(center, sigma)` parameters.

    Args:
        kernel: float tensor `(filters, 2)`; column 0 the center frequencies
            (radians per sample), column 1 the standard deviations (samples).
        size: int, number of taps.

    Returns:
        A pair `(real, imag)` of float tensors of shape `(filters, size)`.
    """
    kernel = ops.convert_to_tensor(kernel)
    t = gabor_time_axis(int(size), dtype=kernel.dtype)
    return gabor_impulse_response(t, center=kernel[:, 0], sigma=kernel[:, 1])


def sinc_impulse_response(t, frequency):
    """`sin(2 pi f t) / (2 pi f t)` (undefined at `t = 0`).

    Args:
        t: float tensor `(size, 1)`, times in seconds (non-zero).
        frequency: float tensor `(1, filters)`, frequencies in Hz.

    Returns:
        A float tensor `(size, filters)`.
    """
    argument = 2.0 * math.pi * frequency * t
    return ops.sin(argument) / argument


def sinc_filters(cutoff_freq_low, cutoff_freq_high, size=401, sample_rate=16000):
    """Band-pass sinc filters, normalized to a peak of 1.

    A band-pass is the difference of two ideal low-pass responses
    `2 f sinc(2 pi f t)`. The centre tap (t = 0) is set to its limit `2 f`
    explicitly, as in the original. The filter has `2 * (size // 2) + 1`
    taps, so `size` should be odd.

    Note: the original `SincConv1D` calls this function without
    `sample_rate`, i.e. always with 16000; `leaf_keras.SincConv1D` does the
    same by default (see its docstring).

    Args:
        cutoff_freq_low: float tensor `(1, filters)`, lower cutoffs in Hz.
        cutoff_freq_high: float tensor `(1, filters)`, upper cutoffs in Hz.
        size: int, number of taps (odd).
        sample_rate: the rate (Hz) that converts taps to seconds.

    Returns:
        A float tensor `(2 * (size // 2) + 1, filters)`.
    """
    cutoff_freq_low = ops.convert_to_tensor(cutoff_freq_low)
    cutoff_freq_high = ops.convert_to_tensor(cutoff_freq_high)
    dtype = cutoff_freq_low.dtype
    half = int(size) // 2
    left_range = ops.expand_dims(ops.arange(-half, 0, dtype=dtype), 1) / float(sample_rate)
    right_range = ops.expand_dims(ops.arange(1, half + 1, dtype=dtype), 1) / float(sample_rate)

    def low_pass(cutoff):
        left = 2.0 * cutoff * sinc_impulse_response(left_range, cutoff)
        right = 2.0 * cutoff * sinc_impulse_response(right_range, cutoff)
        return ops.concatenate([left, 2.0 * cutoff, right], axis=0)

    band_pass = low_pass(cutoff_freq_high) - low_pass(cutoff_freq_low)
    return band_pass / ops.max(band_pass, axis=0, keepdims=True)


def gaussian_lowpass(sigma, filter_size):
    """Gaussian windows of relative width `sigma`, one per channel.

    `sigma` is clipped to `[2 / filter_size, 0.5]`, then
    `w[n] = exp(-0.5 * ((n - (K - 1) / 2) / (sigma (K - 1) / 2)) ** 2)` for
    n = 0 .. K - 1 (not normalized, as in the original).

    Args:
        sigma: float tensor of any shape `S` broadcastable against a time
            axis in position 1, typically `(1, 1, channels, 1)`.
        filter_size: int K, the number of taps.

    Returns:
        A float tensor with the time axis of length K in position 1, e.g.
        `(1, K, channels, 1)` for `sigma` of shape `(1, 1, channels, 1)`.
    """
    sigma = ops.convert_to_tensor(sigma)
    sigma = tie_gradients.clip(sigma, 2.0 / filter_size, 0.5)
    shape = [1] * len(sigma.shape)
    shape[1] = filter_size
    t = ops.reshape(ops.arange(0, filter_size, dtype=sigma.dtype), shape)
    numerator = t - 0.5 * (filter_size - 1)
    denominator = sigma * 0.5 * (filter_size - 1)
    return ops.exp(-0.5 * (numerator / denominator) ** 2)


__all__ = [
    "gabor_filters",
    "gabor_impulse_response",
    "gabor_time_axis",
    "gaussian_lowpass",
    "sinc_filters",
    "sinc_impulse_response",
]

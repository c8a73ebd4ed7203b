"""Mel filterbanks and the Gabor filters that match them (numpy).

`linear_to_mel_weight_matrix` reproduces `tf.signal.linear_to_mel_weight_matrix`
without TensorFlow (float32 arithmetic in the same order, so the numbers agree
to float32 round-off). `Gabor` derives from a mel filterbank the Gabor
parameters used to initialize LEAF (Zeghidour et al., "LEAF: A Learnable
Frontend for Audio Classification", ICLR 2021, Section 3.1).
"""

import math

import numpy as np

_MEL_BREAK_FREQUENCY_HERTZ = 700.0
_MEL_HIGH_FREQUENCY_Q = 1127.0


def _hertz_to_mel(frequencies_hertz, dtype=np.float32):
    """HTK mel scale in natural-log form, computed in `dtype` as tf.signal does."""
    real = np.dtype(dtype).type
    frequencies_hertz = np.asarray(frequencies_hertz, dtype=real)
    return real(_MEL_HIGH_FREQUENCY_Q) * np.log(
        real(1.0) + frequencies_hertz / real(_MEL_BREAK_FREQUENCY_HERTZ)
    ).astype(real)


def _tf_linspace(start, stop, num, dtype=np.float32):
    """linspace computed in `dtype` like tf.linspace (start + i * delta)."""
    real = np.dtype(dtype).type
    start = real(start)
    stop = real(stop)
    delta = (stop - start) / real(max(num - 1, 1))
    middle = start + delta * np.arange(1, max(num - 1, 1), dtype=real)
    values = np.concatenate([[start], middle, [stop]]).astype(real)
    return values[:num]


def linear_to_mel_weight_matrix(
    num_mel_bins=20,
    num_spectrogram_bins=129,
    sample_rate=8000,
    lower_edge_hertz=125.0,
    upper_edge_hertz=3800.0,
    dtype=np.float32,
):
    """Matrix that maps a linear power spectrum onto mel bands.

    Same definition and defaults as `tf.signal.linear_to_mel_weight_matrix`:
    triangular bands spaced uniformly on the mel scale `1127 ln(1 + f/700)`,
    the DC bin gets no weight.

    Args:
        num_mel_bins: number of mel bands.
        num_spectrogram_bins: number of linear bins, `n_fft // 2 + 1`.
        sample_rate: sampling rate in Hz.
        lower_edge_hertz: lower edge of the lowest band.
        upper_edge_hertz: upper edge of the highest band.
        dtype: numpy float dtype, of the computation (as in tf.signal) and the result.

    Returns:
        A numpy array `(num_spectrogram_bins, num_mel_bins)`.

    Raises:
        ValueError: for non-positive sizes or sample rate, or band edges that
            are negative, out of order, or above the Nyquist frequency.
    """
    if num_mel_bins <= 0:
        raise ValueError(f"num_mel_bins must be positive, got {num_mel_bins}.")
    if num_spectrogram_bins <= 0:
        raise ValueError(f"num_spectrogram_bins must be positive, got {num_spectrogram_bins}.")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}.")
    if lower_edge_hertz < 0:
        raise ValueError(f"lower_edge_hertz must be non-negative, got {lower_edge_hertz}.")
    if lower_edge_hertz >= upper_edge_hertz:
        raise ValueError(
            f"lower_edge_hertz {lower_edge_hertz} >= upper_edge_hertz {upper_edge_hertz}."
        )
    if upper_edge_hertz > sample_rate / 2:
        raise ValueError(
            f"upper_edge_hertz {upper_edge_hertz} is above the Nyquist "
            f"frequency {sample_rate / 2} of sample_rate {sample_rate}."
        )
    real = np.dtype(dtype).type
    nyquist_hertz = real(sample_rate) / real(2.0)
    linear_frequencies = _tf_linspace(0.0, nyquist_hertz, num_spectrogram_bins, real)[1:]
    spectrogram_bins_mel = _hertz_to_mel(linear_frequencies, real)[:, np.newaxis]
    band_edges_mel = _tf_linspace(
        _hertz_to_mel(lower_edge_hertz, real),
        _hertz_to_mel(upper_edge_hertz, real),
        num_mel_bins + 2,
        real,
    )
    lower_edge_mel = band_edges_mel[np.newaxis, :-2]
    center_mel = band_edges_mel[np.newaxis, 1:-1]
    upper_edge_mel = band_edges_mel[np.newaxis, 2:]
    lower_slopes = (spectrogram_bins_mel - lower_edge_mel) / (center_mel - lower_edge_mel)
    upper_slopes = (upper_edge_mel - spectrogram_bins_mel) / (upper_edge_mel - center_mel)
    weights = np.maximum(real(0.0), np.minimum(lower_slopes, upper_slopes))
    weights = np.pad(weights, [[1, 0], [0, 0]])
    return weights.astype(dtype)


class Gabor:
    """Gabor filters designed to match a mel filterbank.

    For each triangular mel filter, the Gabor center frequency is the peak
    bin of the filter's square root, and the bandwidth follows from the
    number of bins above half of that peak (the full width at half maximum).
    Mirrors the latest leaf-audio `melfilters.Gabor` (its defaults included:
    `window_len` in samples, `normalize_energy=False`).

    Args:
        n_filters: number of filters.
        min_freq: lowest frequency (Hz) of the mel filterbank.
        max_freq: highest frequency (Hz) of the mel filterbank.
        sample_rate: sampling rate in Hz.
        window_len: Gabor filter length, in samples.
        n_fft: FFT size used to sample the mel filters.
        normalize_energy: if True, each mel filter is divided by its area so
            that every filter has the same energy.
    """

    def __init__(
        self,
        n_filters=40,
        min_freq=0.0,
        max_freq=8000.0,
        sample_rate=16000,
        window_len=401,
        n_fft=512,
        normalize_energy=False,
    ):
        self.n_filters = int(n_filters)
        self.min_freq = float(min_freq)
        self.max_freq = float(max_freq)
        self.sample_rate = sample_rate
        self.window_len = int(window_len)
        self.n_fft = int(n_fft)
        self.normalize_energy = bool(normalize_energy)

    def _mel_filters_areas(self, filters):
        """Area under each (triangular) filter, one row per filter."""
        peaks = np.max(filters, axis=1, keepdims=True)
        support = np.sum((filters > 0).astype(np.float32), axis=1, keepdims=True)
        return (
            peaks * (support + np.float32(2.0)) * np.float32(np.pi) / np.float32(self.n_fft)
        ).astype(np.float32)

    @property
    def mel_filters(self):
        """Mel filters, numpy float32 `(n_filters, n_fft // 2 + 1)`."""
        filters = linear_to_mel_weight_matrix(
            num_mel_bins=self.n_filters,
            num_spectrogram_bins=self.n_fft // 2 + 1,
            sample_rate=self.sample_rate,
            lower_edge_hertz=self.min_freq,
            upper_edge_hertz=self.max_freq,
        ).T
        if self.normalize_energy:
            filters = filters / self._mel_filters_areas(filters)
        return filters.astype(np.float32)

    @property
    def gabor_params_from_mels(self):
        """`(n_filters, 2)` float32: center (radians/sample), sigma (samples)."""
        coeff = np.float32(math.sqrt(2.0 * math.log(2.0)) * self.n_fft)
        sqrt_filters = np.sqrt(self.mel_filters)
        center_frequencies = np.argmax(sqrt_filters, axis=1).astype(np.float32)
        peaks = np.max(sqrt_filters, axis=1, keepdims=True)
        fwhms = np.sum((sqrt_filters >= peaks / 2.0).astype(np.float32), axis=1)
        centers = center_frequencies * np.float32(2.0 * np.pi / self.n_fft)
        sigmas = coeff / (np.float32(np.pi) * fwhms)
        return np.stack([centers, sigmas], axis=1).astype(np.float32)

    @property
    def gabor_filters(self):
        """Complex Gabor filters `(n_filters, window_len)` (complex64).

        Each filter is scaled by `sqrt(area * 2 sqrt(pi) sigma)` so that its
        energy matches the mel filter it imitates.
        """
        params = self.gabor_params_from_mels.astype(np.float64)
        size = self.window_len
        t = np.arange(-(size // 2), (size + 1) // 2, dtype=np.float64)
        center, sigma = params[:, :1], params[:, 1:]
        envelope = (
            1.0
            / (np.sqrt(2.0 * np.pi) * sigma)
            * np.exp(-(t[np.newaxis, :] ** 2) / (2.0 * sigma**2))
        )
        filters = envelope * np.exp(1j * center * t[np.newaxis, :])
        scale = np.sqrt(
            self._mel_filters_areas(self.mel_filters).astype(np.float64)
            * 2.0
            * np.sqrt(np.pi)
            * sigma
        )
        return (filters * scale).astype(np.complex64)


__all__ = ["Gabor", "linear_to_mel_weight_matrix"]

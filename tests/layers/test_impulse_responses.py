"""leaf_keras.impulse_responses: Gabor, Gaussian lowpass and sinc filters vs numpy."""

import keras
import numpy as np

from leaf_keras import impulse_responses


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def test_gabor_impulse_response_formula():
    kernel = np.array([[0.3, 5.0], [1.2, 20.0]], np.float32)
    real, imag = impulse_responses.gabor_filters(kernel, 31)
    t = np.arange(-15, 16)
    mu, sigma = kernel[:, :1], kernel[:, 1:]
    expected = np.exp(-(t**2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma) * np.exp(1j * mu * t)
    np.testing.assert_allclose(_np(real), expected.real, atol=1e-6)
    np.testing.assert_allclose(_np(imag), expected.imag, atol=1e-6)
    # Even sizes keep the original's time axis -(size // 2) .. size // 2 - 1.
    np.testing.assert_array_equal(_np(impulse_responses.gabor_time_axis(4)), [-2, -1, 0, 1])


def test_gaussian_lowpass_formula_and_clipping():
    sigma = np.array([0.001, 0.3, 0.9], np.float32).reshape(1, 1, 3, 1)
    window = _np(impulse_responses.gaussian_lowpass(sigma, 21))
    assert window.shape == (1, 21, 3, 1)
    clipped = np.clip(sigma.ravel(), 2 / 21, 0.5)
    t = np.arange(21)[:, None]
    expected = np.exp(-0.5 * ((t - 10) / (clipped * 10)) ** 2)
    np.testing.assert_allclose(window[0, :, :, 0], expected, rtol=1e-5)


def test_sinc_filters_match_numpy():
    low = np.array([[100.0, 1000.0]], np.float32)
    high = np.array([[300.0, 4000.0]], np.float32)
    filters = _np(impulse_responses.sinc_filters(low, high, 101))
    t = np.arange(-50, 51)[:, None] / 16000.0
    band = 2 * high * np.sinc(2 * high * t) - 2 * low * np.sinc(2 * low * t)
    np.testing.assert_allclose(filters, band / band.max(0), atol=2e-5)

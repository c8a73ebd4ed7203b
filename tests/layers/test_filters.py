"""Windows, mel matrices, impulse responses and FFT convolutions vs numpy/TF."""

import keras
import numpy as np
import pytest
import scipy.signal

import leaf_keras
from leaf_keras import impulse_responses, melfilters, utils


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def test_windows_follow_the_original_formulas():
    n = np.arange(11)
    np.testing.assert_allclose(utils.window("hamming", 11),
                               0.54 - 0.46 * np.cos(2 * np.pi * n / 11))
    hanning = 0.5 * (1 - np.cos(2 * np.pi * (n - 1) / 10))
    np.testing.assert_allclose(utils.window(utils.WindowType.HANNING, 11),
                               hanning)
    np.testing.assert_allclose(utils.window("squared_hanning", 11), hanning**2)
    with pytest.raises(ValueError, match="Unknown window type 'kaiser'"):
        utils.window("kaiser", 11)


def test_mel_scale_round_trip():
    f = np.array([0.0, 60.0, 1000.0, 7800.0])
    np.testing.assert_allclose(utils.mel2hz(utils.hz2mel(f)), f, atol=1e-9)
    assert abs(utils.hz2mel(1000.0) - 1000.0) < 0.1


@pytest.mark.parametrize("args", [(40, 257, 16000, 60.0, 7800.0),
                                  (64, 513, 22050, 0.0, 11025.0),
                                  (20, 129, 8000, 125.0, 3800.0)])
def test_mel_matrix_matches_tf_signal(args):
    tf = pytest.importorskip("tensorflow")
    expected = tf.signal.linear_to_mel_weight_matrix(*args).numpy()
    actual = melfilters.linear_to_mel_weight_matrix(*args)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=2e-5)


def test_mel_matrix_rejects_bad_edges():
    with pytest.raises(ValueError, match="above the Nyquist"):
        melfilters.linear_to_mel_weight_matrix(40, 257, 16000, 60.0, 9000.0)


def test_gabor_impulse_response_formula():
    kernel = np.array([[0.3, 5.0], [1.2, 20.0]], np.float32)
    real, imag = impulse_responses.gabor_filters(kernel, 31)
    t = np.arange(-15, 16)
    mu, sigma = kernel[:, :1], kernel[:, 1:]
    expected = (np.exp(-t**2 / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma) *
                np.exp(1j * mu * t))
    np.testing.assert_allclose(_np(real), expected.real, atol=1e-6)
    np.testing.assert_allclose(_np(imag), expected.imag, atol=1e-6)
    # Even sizes keep the original's time axis -(size // 2) .. size // 2 - 1.
    np.testing.assert_array_equal(_np(impulse_responses.gabor_time_axis(4)),
                                  [-2, -1, 0, 1])


def test_gaussian_lowpass_formula_and_clipping():
    sigma = np.array([0.001, 0.3, 0.9], np.float32).reshape(1, 1, 3, 1)
    window = _np(impulse_responses.gaussian_lowpass(sigma, 21))
    assert window.shape == (1, 21, 3, 1)
    clipped = np.clip(sigma.ravel(), 2 / 21, 0.5)
    t = np.arange(21)[:, None]
    expected = np.exp(-0.5 * ((t - 10) / (clipped * 10))**2)
    np.testing.assert_allclose(window[0, :, :, 0], expected, rtol=1e-5)


def test_sinc_filters_match_numpy():
    low = np.array([[100.0, 1000.0]], np.float32)
    high = np.array([[300.0, 4000.0]], np.float32)
    filters = _np(impulse_responses.sinc_filters(low, high, 101))
    t = np.arange(-50, 51)[:, None] / 16000.0
    band = 2 * high * np.sinc(2 * high * t) - 2 * low * np.sinc(2 * low * t)
    np.testing.assert_allclose(filters, band / band.max(0), atol=2e-5)


@pytest.mark.parametrize("kernel_size", [1, 4, 31])
@pytest.mark.parametrize("function", ["fft", "overlap_add"])
def test_fft_convolutions_match_a_direct_same_correlation(kernel_size,
                                                          function):
    rng = np.random.default_rng(kernel_size)
    x = rng.standard_normal((2, 300, 1)).astype(np.float32)
    h = rng.standard_normal((kernel_size, 1, 3)).astype(np.float32)
    left = (kernel_size - 1) // 2
    padded = np.pad(x[:, :, 0], [[0, 0], [left, kernel_size - 1 - left]])
    expected = np.stack([
        np.stack([np.correlate(padded[b], h[:, 0, c], "valid")
                  for c in range(3)], -1) for b in range(2)])
    if function == "fft":
        actual = leaf_keras.fft_conv1d(x, h)
    else:
        actual = leaf_keras.overlap_add_conv1d(x, h, fft_length=64)
    np.testing.assert_allclose(_np(actual), expected, atol=1e-4)


@pytest.mark.parametrize("kernel_size", [1, 4, 31])
def test_correlation_outputs_match_numpy(kernel_size):
    from leaf_keras.ops import fft_correlation  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(kernel_size)
    x = rng.standard_normal((2, 300)).astype(np.float32)
    h = (rng.standard_normal((3, kernel_size)) +
         1j * rng.standard_normal((3, kernel_size))).astype(np.complex64)
    left = (kernel_size - 1) // 2
    padded = np.pad(x, [[0, 0], [left, kernel_size - 1 - left]])
    # np.correlate conjugates its second argument: pass conj(h).
    expected = np.stack([np.stack([np.correlate(padded[b], np.conj(h[c]),
                                                "valid") for c in range(3)])
                         for b in range(2)])
    real, imag = fft_correlation.correlation_outputs(
        x, h.real.copy(), h.imag.copy(), start=0, length=300)
    # [channels, batch, time] -> [batch, channels, time]
    real, imag = (np.transpose(_np(part), (1, 0, 2)) for part in (real, imag))
    assert real.shape == (2, 3, 300)
    np.testing.assert_allclose(real, expected.real, atol=1e-4)
    np.testing.assert_allclose(imag, expected.imag, atol=1e-4)


@pytest.mark.parametrize("cls", ["GaborConv1D", "SincConv1D"])
def test_fft_and_direct_implementations_agree(cls):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 500, 1)).astype(np.float32)
    outputs = []
    for implementation in ("direct", "fft", "overlap_add"):
        layer = getattr(leaf_keras, cls)(8, 101, implementation=implementation)
        outputs.append(_np(layer(x)))
    scale = np.abs(outputs[0]).max()
    for other in outputs[1:]:
        assert np.abs(other - outputs[0]).max() <= 1e-5 * scale


def test_scipy_hann_is_what_mel_uses_for_odd_windows():
    frontend = leaf_keras.MelFilterbanks()
    np.testing.assert_allclose(frontend._window,  # pylint: disable=protected-access
                               scipy.signal.windows.hann(401, sym=True),
                               atol=1e-6)


def test_pcen_scan_matches_a_sequential_loop():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 2.0, (2, 150, 3)).astype(np.float32)  # > 2 chunks
    pcen = leaf_keras.PCENLayer(alpha=0.9, smooth_coef=0.1, delta=1.5,
                                root=3.0, floor=1e-6, trainable=True,
                                learn_smooth_coef=True,
                                per_channel_smooth_coef=True)
    actual = _np(pcen(x))
    state = x[:, 0]
    smooth = np.empty_like(x)
    for t in range(x.shape[1]):
        state = 0.1 * x[:, t] + 0.9 * state
        smooth[:, t] = state
    expected = (x / (1e-6 + smooth)**0.9 + 1.5)**(1 / 3) - 1.5**(1 / 3)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_instance_normalization_per_channel_over_time():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 50, 4)).astype(np.float32) * 3 + 1
    y = _np(leaf_keras.InstanceNormalization()(x))
    expected = (x - x.mean(1, keepdims=True)) / np.sqrt(
        x.var(1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(y, expected, atol=1e-4)


def test_pooling_shapes_follow_tf_padding():
    x = np.random.default_rng(0).random((1, 1000, 3)).astype(np.float32)
    assert leaf_keras.GaussianLowpass(401, 160)(x).shape == (1, 7, 3)
    assert leaf_keras.MaxPooling1D(401, 160)(x).shape == (1, 7, 3)
    assert leaf_keras.LearnablePooling1D(401, 160)(x).shape == (1, 4, 3)
    # SAME max pooling ignores padding: a negative signal keeps its max.
    y = _np(leaf_keras.MaxPooling1D(5, 2)(-x - 1))
    assert (y < -1 + 1e-6).all()
    # TF SAME: 7 frames, pad_total = 6 * 160 + 401 - 1000 = 361, left 180.
    ramp = np.arange(1000, dtype=np.float32).reshape(1, 1000, 1)
    first = _np(leaf_keras.MaxPooling1D(401, 160)(ramp))[0, 0, 0]
    assert first == 401 - 180 - 1


@pytest.mark.parametrize("time,kernel_size,strides", [
    (1000, 401, 160), (1361, 401, 160), (37, 5, 3), (50, 3, 4), (100, 40, 2)])
def test_strided_depthwise_correlation_matches_numpy(time, kernel_size,
                                                     strides):
    from leaf_keras.ops import block_pooling  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, time, 3)).astype(np.float32)
    kernel = rng.standard_normal((kernel_size, 3)).astype(np.float32)
    # (100, 40, 2): 20 blocks per frame, the depthwise_conv fallback.
    actual = _np(block_pooling.strided_depthwise_correlation(x, kernel, strides))
    frames = (time - kernel_size) // strides + 1
    expected = np.stack([
        np.einsum("btc,tc->bc",
                  x[:, f * strides:f * strides + kernel_size], kernel)
        for f in range(frames)], axis=1)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    channels_first = _np(block_pooling.strided_depthwise_correlation(
        np.transpose(x, (0, 2, 1)), kernel, strides,
        data_format="channels_first"))
    np.testing.assert_allclose(channels_first,
                               np.transpose(expected, (0, 2, 1)), atol=1e-4)


@pytest.mark.parametrize("decay", [0.0, 0.5, 1.0])
def test_linear_recurrence_edge_decays(decay):
    from leaf_keras.ops import linear_recurrence  # pylint: disable=g-import-not-at-top
    x = np.random.default_rng(1).random((1, 130, 2)).astype(np.float32)
    actual = _np(linear_recurrence.linear_recurrence(
        np.full((2,), decay, np.float32), x, chunk_size=16))
    state = np.zeros((1, 2))
    for t in range(130):
        state = decay * state + x[:, t]
        np.testing.assert_allclose(actual[:, t], state, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("time,chunk_size", [(37, 16), (130, 16), (64, 64)])
def test_linear_recurrence_gradient_matches_sequential_loop(time, chunk_size):
    # linear_recurrence has a written-out gradient (the adjoint recurrence
    # run backwards); it must equal autodiff of the plain sequential loop.
    import testing_utils  # pylint: disable=g-import-not-at-top
    from leaf_keras.ops import linear_recurrence  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(7)
    decay = keras.Variable(rng.uniform(0.5, 0.99, 3).astype(np.float32))
    inputs = keras.Variable(rng.random((2, time, 3)).astype(np.float32))
    cotangent = keras.ops.convert_to_tensor(
        rng.standard_normal((2, time, 3)).astype(np.float32))

    def chunked():
        return keras.ops.sum(cotangent * linear_recurrence.linear_recurrence(
            keras.ops.add(decay, 0.0), keras.ops.add(inputs, 0.0),
            chunk_size=chunk_size))

    def sequential():
        state, states = keras.ops.zeros((2, 3)), []
        for t in range(time):
            state = decay * state + inputs[:, t]
            states.append(state)
        return keras.ops.sum(cotangent * keras.ops.stack(states, axis=1))

    loss, grads = testing_utils.value_and_gradients(chunked, [decay, inputs])
    expected_loss, expected = testing_utils.value_and_gradients(
        sequential, [decay, inputs])
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    for actual, wanted in zip(grads, expected):
        assert testing_utils.relative_error(actual, wanted) <= 1e-5

"""`ops.fft_correlation`: overlap-save blocks equal one full FFT and scipy.

`fft_correlation.correlation_outputs` / `correlation_energies` and the
fused filterbank engine that calls them compute the Gabor correlation
either with one FFT of the whole clip or with overlap-save blocks of 3200
samples (clips longer than a block). Both are
exact algorithms: on a long input (2 x ~0.9-1.1 s, five or more blocks)
they must agree with each other and with a float64 scipy reference to
float32 round-off, in value and in gradient, for lengths that fill the last
block exactly and lengths that do not.

On short inputs, `fft_conv1d`, `overlap_add_conv1d` and
`correlation_outputs` must equal numpy's direct SAME correlation.
"""

import keras
import numpy as np
import pytest
import scipy.signal

import leaf_keras
from leaf_keras import filterbank
from leaf_keras import stages
from leaf_keras.ops import fft_correlation

import testing_utils

KERNEL_SIZE = 401
LEFT = (KERNEL_SIZE - 1) // 2
# Default block hop of the plain correlation: 3200 - 401 + 1.
CORRELATION_HOP = fft_correlation.BLOCK_FFT_LENGTH - KERNEL_SIZE + 1
TOLERANCE = 1e-5


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _complex_filters(rng, channels=3):
    """Gabor-like complex filters: a windowed complex exponential."""
    t = np.arange(KERNEL_SIZE) - LEFT
    sigma = rng.uniform(20.0, 120.0, (channels, 1))
    mu = rng.uniform(0.1, 3.0, (channels, 1))
    filters = np.exp(-(t**2) / (2 * sigma**2) + 1j * mu * t) / sigma
    return filters.real.astype(np.float32), filters.imag.astype(np.float32)


def _reference_correlation(x, filters):
    """float64 `z[b, c, n] = sum_m xp[b, n + m] h_c[m]` (SAME, TF rule)."""
    padded = np.pad(x.astype(np.float64), [[0, 0], [LEFT, KERNEL_SIZE - 1 - LEFT]])
    # scipy.signal.correlate conjugates its second argument.
    return np.stack(
        [
            np.stack(
                [
                    scipy.signal.correlate(row, np.conj(h), mode="valid", method="fft")
                    for h in filters
                ]
            )
            for row in padded
        ]
    )


@pytest.mark.parametrize("time", [5 * CORRELATION_HOP, 18000])
def test_correlation_outputs_blocks_match_single_and_scipy(time):
    rng = np.random.default_rng(time)
    x = rng.standard_normal((2, time)).astype(np.float32)
    real, imag = _complex_filters(rng)
    cotangent_real = rng.standard_normal((2, 3, time)).astype(np.float32)
    cotangent_imag = rng.standard_normal((2, 3, time)).astype(np.float32)
    filters = real.astype(np.float64) + 1j * imag
    expected = _reference_correlation(x, filters)
    # d loss / d filters and d loss / d x of loss = sum(Re z cr + Im z ci).
    padded = np.pad(x.astype(np.float64), [[0, 0], [LEFT, KERNEL_SIZE - 1 - LEFT]])
    expected_grads = [
        sum(
            np.stack(
                [
                    scipy.signal.correlate(padded[b], cotangent[b, c], mode="valid", method="fft")
                    for c in range(3)
                ]
            )
            for b in range(2)
        )
        for cotangent in (cotangent_real, cotangent_imag)
    ]
    expected_grad_x = sum(
        np.stack([scipy.signal.convolve(cotangent[b, c], h[c], method="fft") for b in range(2)])
        for c in range(3)
        for cotangent, h in ((cotangent_real, real), (cotangent_imag, imag))
    )[:, LEFT : LEFT + time]

    variables = [keras.Variable(x), keras.Variable(real), keras.Variable(imag)]
    cotangents = [
        keras.ops.convert_to_tensor(cotangent) for cotangent in (cotangent_real, cotangent_imag)
    ]

    def correlation(x, real, imag, method):
        # [channels, batch, L >= time] -> [batch, channels, time].
        z_real, z_imag = fft_correlation.correlation_outputs(
            x, real, imag, start=0, length=time, implementation=method
        )
        return tuple(keras.ops.transpose(part[:, :, :time], (1, 0, 2)) for part in (z_real, z_imag))

    for method in ("blocks", "single"):
        z_real, z_imag = correlation(x, real, imag, method)
        assert tuple(z_real.shape) == (2, 3, time)
        assert (
            testing_utils.relative_error(
                np.stack([_np(z_real), _np(z_imag)]), np.stack([expected.real, expected.imag])
            )
            < TOLERANCE
        ), method

        def loss(method=method):
            z_real, z_imag = correlation(*variables, method)
            return keras.ops.sum(z_real * cotangents[0]) + keras.ops.sum(z_imag * cotangents[1])

        _, (grad_x, grad_real, grad_imag) = testing_utils.value_and_gradients(loss, variables)
        assert testing_utils.relative_error(grad_real, expected_grads[0]) < TOLERANCE, method
        assert testing_utils.relative_error(grad_imag, expected_grads[1]) < TOLERANCE, method
        assert testing_utils.relative_error(grad_x, expected_grad_x) < TOLERANCE, method


def _reference_leaf_energies(x, conv, pool):
    """float64 Gabor correlation, squared modulus and SAME Gaussian pooling."""
    real, imag = (_np(part) for part in conv.complex_filters())
    energies = np.abs(_reference_correlation(x, real.astype(np.float64) + 1j * imag)) ** 2
    window = _np(pool.lowpass_filters()).astype(np.float64)  # [K, channels]
    time = x.shape[1]
    frames = -(-time // pool.strides)
    pad_total = max((frames - 1) * pool.strides + pool.kernel_size - time, 0)
    energies = np.pad(energies, [[0, 0], [0, 0], [pad_total // 2, pad_total - pad_total // 2]])
    starts = np.arange(frames) * pool.strides
    taps = starts[:, None] + np.arange(pool.kernel_size)  # [frames, K]
    # [batch, channels, frames, K] . [K, channels] -> [batch, frames, channels]
    return np.einsum("bcfk,kc->bfc", energies[:, :, taps], window)


def _perturbed_leaf(time, seed):
    leaf = leaf_keras.Leaf(preemp=True, filterbank="fused")
    leaf.build((2, time))
    rng = np.random.default_rng(seed)
    conv, pool = leaf.complex_conv, leaf.pooling
    conv.kernel.assign(_np(conv.kernel) * rng.uniform(0.8, 1.2, (40, 2)))
    pool.kernel.assign(rng.uniform(0.1, 0.6, (1, 1, 40, 1)))
    return leaf, conv, pool


# Pooled energies use the largest hop that is a multiple of the 160-sample
# stride (2720 for blocks of 3200): 7 hops less the 2 stride blocks of SAME
# padding (18720 samples, 117 frames) pool from exactly 7 blocks, 18003
# samples do not (and are not a multiple of the stride either).
POOLED_HOP = CORRELATION_HOP // 160 * 160


@pytest.mark.parametrize("time", [7 * POOLED_HOP - 2 * 160, 18003])
def test_leaf_energies_blocks_match_single_and_scipy(time):
    leaf, conv, pool = _perturbed_leaf(time, seed=time)
    rng = np.random.default_rng(time)
    x = (0.1 * rng.standard_normal((2, time))).astype(np.float32)
    expected = _reference_leaf_energies(x, conv, pool)
    cotangent = keras.ops.convert_to_tensor(rng.standard_normal(expected.shape).astype(np.float32))
    preemp = leaf.preemp_conv
    weights = [conv.kernel, pool.kernel, preemp.kernel]
    grads = {}
    for method in ("blocks", "single"):
        fused = filterbank.Filterbank(
            conv, stages.SquaredModulus(), pool, engine="fused", implementation=method
        )
        energies = _np(fused(x[:, :, None]))
        assert energies.shape == expected.shape
        assert testing_utils.relative_error(energies, expected) < TOLERANCE

        def loss(fused=fused):
            # Through the pre-emphasis, so that the input gradient of the
            # correlation is exercised as well.
            filtered = preemp(x[:, :, None])
            return keras.ops.sum(fused(filtered) * cotangent)

        _, grads[method] = testing_utils.value_and_gradients(loss, weights)

    def staged_loss():
        # The layer-by-layer path: a real FFT convolution with plain
        # autodiff, a second exact algorithm.
        outputs = preemp(x[:, :, None])
        for layer in (conv, leaf.filterbank.activation, pool):
            outputs = layer(outputs)
        return keras.ops.sum(outputs * cotangent)

    _, staged_grads = testing_utils.value_and_gradients(staged_loss, weights)
    for blocked, single, staged in zip(grads["blocks"], grads["single"], staged_grads):
        assert testing_utils.relative_error(blocked, single) < TOLERANCE
        assert testing_utils.relative_error(blocked, staged) < TOLERANCE


def test_unknown_time_uses_blocks_under_tf_function():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("a dynamic time axis inside a compiled function is a TensorFlow graph feature")
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    leaf = leaf_keras.Leaf(filterbank="fused")
    x = (0.1 * np.random.default_rng(0).standard_normal((2, 9000))).astype(np.float32)
    eager = _np(leaf(x))
    graph = tf.function(leaf, input_signature=[tf.TensorSpec((None, None), tf.float32)])
    np.testing.assert_allclose(graph(x).numpy(), eager, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"implementation": "fft"}, "implementation must be"),
        ({"implementation": "blocks", "fft_length": 512}, "leaves a hop of"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    real, imag = _complex_filters(np.random.default_rng(0))
    x = np.zeros((1, 2000), np.float32)
    with pytest.raises(ValueError, match=message):
        fft_correlation.correlation_outputs(x, real, imag, start=0, length=2000, **kwargs)


@pytest.mark.parametrize("kernel_size", [1, 4, 31])
@pytest.mark.parametrize("function", ["fft", "overlap_add"])
def test_fft_convolutions_match_a_direct_same_correlation(kernel_size, function):
    rng = np.random.default_rng(kernel_size)
    x = rng.standard_normal((2, 300, 1)).astype(np.float32)
    h = rng.standard_normal((kernel_size, 1, 3)).astype(np.float32)
    left = (kernel_size - 1) // 2
    padded = np.pad(x[:, :, 0], [[0, 0], [left, kernel_size - 1 - left]])
    expected = np.stack(
        [
            np.stack([np.correlate(padded[b], h[:, 0, c], "valid") for c in range(3)], -1)
            for b in range(2)
        ]
    )
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
    h = (rng.standard_normal((3, kernel_size)) + 1j * rng.standard_normal((3, kernel_size))).astype(
        np.complex64
    )
    left = (kernel_size - 1) // 2
    padded = np.pad(x, [[0, 0], [left, kernel_size - 1 - left]])
    # np.correlate conjugates its second argument: pass conj(h).
    expected = np.stack(
        [
            np.stack([np.correlate(padded[b], np.conj(h[c]), "valid") for c in range(3)])
            for b in range(2)
        ]
    )
    real, imag = fft_correlation.correlation_outputs(
        x, h.real.copy(), h.imag.copy(), start=0, length=300
    )
    # [channels, batch, time] -> [batch, channels, time]
    real, imag = (np.transpose(_np(part), (1, 0, 2)) for part in (real, imag))
    assert real.shape == (2, 3, 300)
    np.testing.assert_allclose(real, expected.real, atol=1e-4)
    np.testing.assert_allclose(imag, expected.imag, atol=1e-4)


@pytest.mark.parametrize("group_size", [1, 2])
@pytest.mark.parametrize("time", [5 * CORRELATION_HOP, 7000])
def test_pooled_energies_match_the_pooled_correlation(time, group_size):
    # `pooled_correlation_energies` pools one group of filters at a time and
    # recomputes their correlations in its gradient; the plain correlation
    # (checked against scipy above) pooled by block products must give the same
    # frames and the same gradients for the signal, the filters and the pooling.
    from leaf_keras.ops import block_pooling  # pylint: disable=g-import-not-at-top

    rng = np.random.default_rng(time + group_size)
    strides, taps, left = 160, 401, 120
    x = keras.Variable(rng.standard_normal((2, time)).astype(np.float32))
    real, imag = (keras.Variable(h) for h in _complex_filters(rng, channels=3))
    kernel = keras.Variable(rng.random((3, taps)).astype(np.float32))
    frames = -(-time // strides)
    length = (frames + 2) * strides
    weights = keras.ops.convert_to_tensor(rng.standard_normal((3, 2, frames)).astype(np.float32))

    def pooled_loss():
        pooled = fft_correlation.pooled_correlation_energies(
            x, real, imag, kernel, strides, start=-left, length=length, group_size=group_size
        )
        return keras.ops.sum(pooled[:, :, :frames] * weights)

    def unpooled_loss():
        energies = fft_correlation.correlation_energies(
            x, real, imag, start=-left, length=length, hop_multiple=strides
        )
        pooled = block_pooling.channels_major_block_pooling(energies, kernel, strides, frames)
        return keras.ops.sum(pooled * weights)

    variables = [x, real, imag, kernel]
    loss, grads = testing_utils.value_and_gradients(pooled_loss, variables)
    expected_loss, expected_grads = testing_utils.value_and_gradients(unpooled_loss, variables)
    assert testing_utils.relative_error(loss, expected_loss) <= TOLERANCE
    for grad, expected in zip(grads, expected_grads):
        assert testing_utils.relative_error(grad, expected) <= TOLERANCE


def test_pooled_energies_need_one_pooling_filter_per_pair():
    rng = np.random.default_rng(0)
    real, imag = _complex_filters(rng, channels=3)
    with pytest.raises(ValueError, match=r"kernel of shape \(2, 401\) for 3 pairs"):
        fft_correlation.pooled_correlation_energies(
            np.zeros((1, 1600), np.float32),
            real,
            imag,
            np.ones((2, 401), np.float32),
            160,
            start=-120,
            length=1920,
        )

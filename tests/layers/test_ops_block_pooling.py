"""leaf_keras.ops.block_pooling: strided depthwise correlation as block products."""

import keras
import numpy as np
import pytest


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.mark.parametrize(
    "time,kernel_size,strides",
    [(1000, 401, 160), (1361, 401, 160), (37, 5, 3), (50, 3, 4), (100, 40, 2)],
)
def test_strided_depthwise_correlation_matches_numpy(time, kernel_size, strides):
    from leaf_keras.ops import block_pooling  # pylint: disable=g-import-not-at-top

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, time, 3)).astype(np.float32)
    kernel = rng.standard_normal((kernel_size, 3)).astype(np.float32)
    # (100, 40, 2): 20 blocks per frame, the depthwise_conv fallback.
    actual = _np(block_pooling.strided_depthwise_correlation(x, kernel, strides))
    frames = (time - kernel_size) // strides + 1
    expected = np.stack(
        [
            np.einsum("btc,tc->bc", x[:, f * strides : f * strides + kernel_size], kernel)
            for f in range(frames)
        ],
        axis=1,
    )
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    channels_first = _np(
        block_pooling.strided_depthwise_correlation(
            np.transpose(x, (0, 2, 1)), kernel, strides, data_format="channels_first"
        )
    )
    np.testing.assert_allclose(channels_first, np.transpose(expected, (0, 2, 1)), atol=1e-4)


@pytest.mark.parametrize("taps,strides", [(401, 160), (7, 3), (6, 6)])
def test_block_pooling_gradients_match_numpy(taps, strides):
    from leaf_keras.ops import block_pooling  # pylint: disable=g-import-not-at-top

    rng = np.random.default_rng(taps)
    frames = 5
    blocks_per_frame = -(-taps // strides)
    x = rng.standard_normal((3, 2, (frames + blocks_per_frame - 1) * strides)).astype(np.float32)
    kernel = rng.standard_normal((3, taps)).astype(np.float32)
    upstream = rng.standard_normal((3, 2, frames)).astype(np.float32)
    d_inputs, d_kernel = block_pooling.channels_major_block_pooling_gradients(
        x, kernel, strides, upstream
    )
    # out[c, b, f] = sum_q kernel[c, q] x[c, b, f s + q] is linear in both.
    expected_inputs = np.zeros_like(x, dtype=np.float64)
    expected_kernel = np.zeros_like(kernel, dtype=np.float64)
    for f in range(frames):
        window = slice(f * strides, f * strides + taps)
        expected_inputs[:, :, window] += upstream[:, :, f, None] * kernel[:, None, :]
        expected_kernel += np.einsum("cb,cbq->cq", upstream[:, :, f], x[:, :, window])
    np.testing.assert_allclose(_np(d_inputs), expected_inputs, atol=1e-4)
    np.testing.assert_allclose(_np(d_kernel), expected_kernel, atol=1e-4)

"""leaf_keras.pooling: Gaussian, learnable, channel-wise and max pooling."""

import keras
import numpy as np
import pytest

import leaf_keras
from leaf_keras import pooling

import layer_test


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


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


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("time", [401, 1000, 1761])
def test_pool_padded_channels_major_matches_layer(padding, time):
    pool = pooling.GaussianLowpass(401, 160, padding=padding, kernel_initializer="ones")
    rng = np.random.default_rng(time)
    x = rng.random((2, time, 3)).astype(np.float32)
    pool.build(x.shape)
    pool.kernel.assign(rng.uniform(0.1, 0.6, (1, 1, 3, 1)))
    expected = _np(pool(x))
    frames, left, length = pool.padded_layout(time)
    padded = np.pad(
        np.transpose(x, (2, 0, 1)), [[0, 0], [0, 0], [left, max(length - time - left, 0)]]
    )
    channels_major = _np(pool.pool_padded_channels_major(padded[:, :, :length], frames))
    np.testing.assert_allclose(
        np.transpose(channels_major, (1, 2, 0)), expected, rtol=1e-5, atol=1e-6
    )


# Energies (non-negative) of 3 channels, pooled with LEAF's 401-tap windows
# every 160 samples: ceil(1000 / 160) = 7 frames with SAME padding. The
# shapes of test_pooling_shapes_follow_tf_padding (on JAX, where every eager
# op compiles once per shape, they share its compilations).
ENERGIES = {"input_shape": (1, 1000, 3), "input_range": (0.0, 1.0)}
WINDOW = {"kernel_size": 401, "strides": 160}


def test_gaussian_lowpass_layer_contract():
    layer_test.run_layer_test(
        leaf_keras.GaussianLowpass,
        {**WINDOW, "trainable": True},
        **ENERGIES,
        expected_output_shape=(1, 7, 3),
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
    )


def test_learnable_pooling1d_layer_contract():
    # Always VALID, like the original: (1000 - 401) // 160 + 1 = 4 frames.
    layer_test.run_layer_test(
        leaf_keras.LearnablePooling1D,
        {**WINDOW, "trainable": True},
        **ENERGIES,
        expected_output_shape=(1, 4, 3),
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
    )


def test_channel_wise_learnable_pooling1d_layer_contract():
    layer_test.run_layer_test(
        leaf_keras.ChannelWiseLearnablePooling1D,
        {**WINDOW, "trainable": False},
        **ENERGIES,
        expected_output_shape=(1, 7, 3),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=1,
    )


def test_max_pooling1d_layer_contract():
    # Standard normal inputs: SAME max pooling pads with -inf, not zeros.
    layer_test.run_layer_test(
        leaf_keras.MaxPooling1D,
        WINDOW,
        input_shape=(1, 1000, 3),
        expected_output_shape=(1, 7, 3),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
    )

"""leaf_keras.convolution: Gabor, sinc and normalized convolutions."""

import keras
import numpy as np
import pytest

import leaf_keras

import layer_test


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


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


# The filters and waveforms of the test above (on JAX, where every eager op
# compiles once per shape, they share its compilations); the filters are
# built and correlated in float32 and the outputs cast to the compute dtype
# under a mixed policy.
WAVEFORMS = (2, 500, 1)


def test_gabor_conv1d_layer_contract():
    layer_test.run_layer_test(
        leaf_keras.GaborConv1D,
        {"filters": 8, "kernel_size": 101},
        input_shape=WAVEFORMS,
        expected_output_shape=(2, 500, 8),
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
    )


def test_sinc_conv1d_layer_contract():
    # `filters` counts complex channels: 8 give 4 band-pass outputs.
    layer_test.run_layer_test(
        leaf_keras.SincConv1D,
        {"filters": 8, "kernel_size": 101},
        input_shape=WAVEFORMS,
        expected_output_shape=(2, 500, 4),
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
    )


def test_normalized_conv1d_layer_contract():
    layer_test.run_layer_test(
        leaf_keras.NormalizedConv1D,
        {"filters": 8, "kernel_size": 101, "use_bias": True},
        input_shape=WAVEFORMS,
        expected_output_shape=(2, 500, 8),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )


def test_gabor_constraint_clips_numpy_as_its_call():
    # Out-of-range, in-range and boundary values of mu and sigma, float32 and float64.
    constraint = leaf_keras.GaborConstraint(401)
    low, high = constraint.sigma_bounds
    kernel = np.array(
        [[-0.5, 0.1], [0.3, low], [1.0, 40.0], [np.pi, high], [4.0, 1e4], [2.0, low * 0.999]]
    )
    expected = keras.ops.convert_to_numpy(constraint(kernel.astype("float32")))
    clipped = constraint.clip_numpy(kernel)
    assert clipped.dtype == np.float64 and clipped.shape == kernel.shape
    np.testing.assert_allclose(clipped, expected, rtol=1e-6)
    assert clipped[0, 0] == 0.0 and clipped[4, 0] == np.pi and clipped[4, 1] == high

"""`Leaf(band_limited=True)`: the opt-in decimated mode wired into the frontend.

The layer itself (`BandLimitedGaborPooling`) is tested in test_band_limited.py;
these tests check the frontend-level contract: same weights as the exact path,
output within 1e-2 of it (after PCEN) at initialization and with the
reference's trained-like perturbed weights, config and .keras round trips.
"""

import os

import keras
import numpy as np
import pytest

import leaf_keras
import testing_utils

TOLERANCE = 1e-2


@pytest.fixture(scope="module")
def waveforms():
    return testing_utils.load_reference()["input"]


def _copy_exact_weights(exact, fast):
    """Copies Gabor, pooling and PCEN weights from an exact to a fast Leaf."""
    fused = fast.band_limited_filterbank
    fused.set_weights([exact.complex_conv.get_weights()[0],
                       exact.pooling.get_weights()[0]])
    fast.compression_fn.set_weights(exact.compression_fn.get_weights())


def test_initial_output_matches_exact_path(waveforms):
    exact = leaf_keras.Leaf()
    fast = leaf_keras.Leaf(band_limited=True)
    expected = keras.ops.convert_to_numpy(exact(waveforms))
    actual = keras.ops.convert_to_numpy(fast(waveforms))
    assert actual.shape == expected.shape == (2, 100, 40)
    error = testing_utils.relative_error(actual, expected)
    print(f"band-limited vs exact at init: {error:.2e}")
    assert error <= TOLERANCE


def test_perturbed_weights_match_exact_path(waveforms):
    reference = testing_utils.load_reference()
    exact = leaf_keras.Leaf()
    leaf_keras.load_leaf_audio_weights(
        exact, testing_utils.case_entries(reference, "leaf_perturbed", "weight"))
    fast = leaf_keras.Leaf(band_limited=True)
    fast(waveforms[:, :800])  # build
    _copy_exact_weights(exact, fast)
    expected = keras.ops.convert_to_numpy(exact(waveforms))
    actual = keras.ops.convert_to_numpy(fast(waveforms))
    error = testing_utils.relative_error(actual, expected)
    print(f"band-limited vs exact, perturbed weights: {error:.2e}")
    assert error <= TOLERANCE


def test_gabor_parameters_are_shared_between_modes():
    exact = leaf_keras.Leaf()
    fast = leaf_keras.Leaf(band_limited=True)
    np.testing.assert_allclose(fast.gabor_center_frequencies_hz(),
                               exact.gabor_center_frequencies_hz(), rtol=1e-6)
    np.testing.assert_allclose(fast.gabor_bandwidths_hz(),
                               exact.gabor_bandwidths_hz(), rtol=1e-6)
    assert fast.complex_conv is None
    assert fast.pooling is fast.band_limited_filterbank


def test_keras_round_trip(tmp_path, waveforms):
    model = keras.Sequential([keras.Input((None,)),
                              leaf_keras.Leaf(band_limited=True),
                              keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(3)])
    clip = waveforms[:, :4000]
    expected = model.predict(clip, verbose=0)
    path = os.path.join(tmp_path, "band_limited.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.layers[0].band_limited
    np.testing.assert_allclose(restored.predict(clip, verbose=0), expected,
                               rtol=1e-5, atol=1e-6)


def test_rejects_non_gabor_stages():
    with pytest.raises(ValueError, match="band_limited"):
        leaf_keras.SincNet(band_limited=True)
    with pytest.raises(ValueError, match="band_limited"):
        leaf_keras.TimeDomainFilterbanks(band_limited=True)

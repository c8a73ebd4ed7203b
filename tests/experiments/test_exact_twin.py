"""`experiments.exact_twin`: the exact-engine copy of a band-limited model that TFLite and
ONNX exports run, checked against an exact model built by hand with the same weights."""

import numpy as np
import pytest


def _classifier(filterbank):
    import leaf_keras  # pylint: disable=import-outside-toplevel

    model = leaf_keras.AudioClassifier(
        num_outputs=4,
        frontend=leaf_keras.Leaf(n_filters=8, filterbank=filterbank),
        encoder=leaf_keras.ConvNet([4], dropout=0.0),
    )
    model(np.zeros((1, 8000), np.float32))
    return model


def _band_limited_classifier():
    model = _classifier("band_limited")
    # Weights away from their initial values, so that copying them is what is checked.
    model.set_weights([w * 1.05 if w.ndim == 1 else w for w in model.get_weights()])
    return model


def test_twin_is_the_exact_engine_with_the_same_weights():
    import keras  # pylint: disable=import-outside-toplevel

    from experiments import exact_twin  # pylint: disable=import-outside-toplevel

    model = _band_limited_classifier()
    twin = exact_twin.exact_twin(model)
    assert type(twin) is type(model) and twin is not model
    assert twin.frontend.filterbank.engine == "fused"
    assert not exact_twin.has_band_limited_engine(twin)
    assert exact_twin.has_band_limited_engine(model)
    for ours, theirs in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    # An exact classifier built by hand from the same arguments and weights computes the
    # same function as the twin.
    by_hand = _classifier("fused")
    by_hand.set_weights(model.get_weights())
    waveforms = np.random.default_rng(0).uniform(-0.5, 0.5, (3, 12000)).astype(np.float32)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(twin(waveforms)),
        keras.ops.convert_to_numpy(by_hand(waveforms)),
        rtol=1e-6,
        atol=1e-6,
    )
    error = exact_twin.twin_error(model, twin, 16000)
    print(f"\ntwin vs band-limited classifier on the probe: {error:.2e}")
    assert 0.0 < error < 1e-2


def test_exact_models_are_their_own_twin():
    import leaf_keras  # pylint: disable=import-outside-toplevel
    from experiments import exact_twin  # pylint: disable=import-outside-toplevel

    frontend = leaf_keras.Leaf(n_filters=4, filterbank="fused")
    frontend.build((None, None))
    assert exact_twin.exact_twin(frontend) is frontend
    assert exact_twin.deployable(frontend, "test", 4000) == (frontend, 0.0)


def test_twin_of_a_frontend_and_unbuilt_models():
    import leaf_keras  # pylint: disable=import-outside-toplevel
    from experiments import exact_twin  # pylint: disable=import-outside-toplevel

    frontend = leaf_keras.Leaf(n_filters=4, filterbank="band_limited")
    with pytest.raises(ValueError, match="exact_twin needs a built model"):
        exact_twin.exact_twin(frontend)
    frontend.build((None, None))
    twin, error = exact_twin.deployable(frontend, "test")
    assert twin.filterbank.engine == "fused" and twin.get_config()["name"] == frontend.name
    # Features (after PCEN) differ by what the band-limited engine's tolerance allows.
    assert 0.0 < error < 5e-3


def test_twin_of_a_frontend_with_a_tolerance():
    import leaf_keras  # pylint: disable=import-outside-toplevel
    from experiments import exact_twin  # pylint: disable=import-outside-toplevel

    frontend = leaf_keras.Leaf(n_filters=4, tolerance=1e-4)
    frontend.build((None, None))
    twin, error = exact_twin.deployable(frontend, "test")
    assert twin.filterbank.engine == "fused" and twin.tolerance is None
    assert "tolerance" not in twin.get_config()
    # The band-limited engine at 1e-4 is within 1e-4 of the exact one (its twin).
    assert 0.0 < error < 1e-4

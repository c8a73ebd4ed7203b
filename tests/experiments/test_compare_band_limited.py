"""experiments.compare_band_limited reads a checkpoint's frontend weights."""

import os

import keras
import numpy as np
import pytest

import leaf_keras
from experiments import compare_band_limited


def _classifier(frontend):
    model = leaf_keras.AudioClassifier(
        num_outputs=3, frontend=frontend, encoder=leaf_keras.ConvNet(filters=(4,))
    )
    model(np.zeros((1, 1600), np.float32))
    return model


@pytest.mark.parametrize("engine", ["fused", "layers", "band_limited"])
def test_checkpoint_weights_rebuild_the_trained_frontend(engine, tmp_path):
    model = _classifier(leaf_keras.Leaf(filterbank=engine))
    rng = np.random.default_rng(0)
    frontend = model.frontend
    frontend.set_weights([w * rng.uniform(0.9, 1.1, w.shape) for w in frontend.get_weights()])
    path = os.path.join(tmp_path, "best.weights.h5")
    model.save_weights(path)
    weights = compare_band_limited.read_frontend_weights(path)
    exact, fast = compare_band_limited.build_pair(weights)
    x = (0.1 * rng.standard_normal((2, 1600))).astype(np.float32)
    trained = keras.ops.convert_to_numpy(frontend(x))
    exact, fast = (keras.ops.convert_to_numpy(f(x)) for f in (exact, fast))
    if engine == "band_limited":
        # The rebuilt band-limited frontend plans its bands for the trained
        # parameters, the trained one kept its initial plan: both are within
        # the band-limited error of the exact frontend.
        assert np.abs(fast - trained).max() < 1e-2 * np.abs(trained).max()
        assert np.abs(exact - trained).max() < 1e-2 * np.abs(exact).max()
    else:
        np.testing.assert_allclose(exact, trained, rtol=1e-5, atol=1e-6)
        assert np.abs(fast - exact).max() < 1e-2 * np.abs(exact).max()

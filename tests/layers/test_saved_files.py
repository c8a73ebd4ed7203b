"""`.keras` files written by earlier versions of leaf_keras still load.

`tests/data/legacy_keras/` holds one file per frontend, saved before the
filterbank became one stage (convolution, activation and pooling were then
stages of the frontend itself), with perturbed weights, and the outputs the
model gave then (`outputs.npz`).
"""

import os

import keras
import numpy as np
import pytest

import leaf_keras  # noqa: F401  (registers the classes)

import testing_utils

LEGACY_DIR = os.path.join(testing_utils.DATA_DIR, "legacy_keras")
# frontend file -> the engine its filterbank runs after loading.
ENGINES = {
    "leaf": "fused",
    "leaf_band_limited": "band_limited",
    "tfbanks": "fused",
    "sincnet": "fused",
    "sincnet_plus": "fused",
    "mel_pcen": None,
}


@pytest.fixture(scope="module")
def saved_outputs():
    with np.load(os.path.join(LEGACY_DIR, "outputs.npz")) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_legacy_file_loads_with_its_weights(name, saved_outputs):
    model = keras.saving.load_model(os.path.join(LEGACY_DIR, name + ".keras"))
    frontend = model.layers[-1]
    if ENGINES[name] is not None:
        assert frontend.filterbank.engine == ENGINES[name]
    outputs = keras.ops.convert_to_numpy(model(saved_outputs["inputs"]))
    # The files hold perturbed weights: initial weights would differ by far
    # more than this.
    assert testing_utils.relative_error(outputs, saved_outputs[name]) < 1e-5


@pytest.mark.parametrize("name", ["leaf", "tfbanks"])
def test_resaved_file_uses_the_new_layout(name, tmp_path, saved_outputs):
    model = keras.saving.load_model(os.path.join(LEGACY_DIR, name + ".keras"))
    path = str(tmp_path / "resaved.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(saved_outputs["inputs"])),
        keras.ops.convert_to_numpy(model(saved_outputs["inputs"])),
        rtol=1e-6,
        atol=1e-7,
    )


def test_weights_move_between_the_exact_engines(tmp_path, saved_outputs):
    """Both exact engines are one class: a checkpoint of one loads into the
    other (same weight paths) and gives the same outputs."""
    x = saved_outputs["inputs"]
    fused = keras.Sequential([keras.Input((None,)), leaf_keras.Leaf(filterbank="fused")])
    rng = np.random.default_rng(0)
    fused.set_weights([w * rng.uniform(0.9, 1.1, w.shape) for w in fused.get_weights()])
    path = str(tmp_path / "fused.weights.h5")
    fused.save_weights(path)
    layers = keras.Sequential([keras.Input((None,)), leaf_keras.Leaf(filterbank="layers")])
    layers.load_weights(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layers(x)),
        keras.ops.convert_to_numpy(fused(x)),
        rtol=1e-4,
        atol=1e-5,
    )

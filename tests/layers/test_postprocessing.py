"""leaf_keras.postprocessing: PCEN, its moving average, log compression, instance norm."""

import functools

import keras
import numpy as np
import pytest

import leaf_keras

import layer_test


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def test_pcen_scan_matches_a_sequential_loop():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 2.0, (2, 150, 3)).astype(np.float32)  # > 2 chunks
    pcen = leaf_keras.PCENLayer(
        alpha=0.9,
        smooth_coef=0.1,
        delta=1.5,
        root=3.0,
        floor=1e-6,
        trainable=True,
        learn_smooth_coef=True,
        per_channel_smooth_coef=True,
    )
    actual = _np(pcen(x))
    state = x[:, 0]
    smooth = np.empty_like(x)
    for t in range(x.shape[1]):
        state = 0.1 * x[:, t] + 0.9 * state
        smooth[:, t] = state
    expected = (x / (1e-6 + smooth) ** 0.9 + 1.5) ** (1 / 3) - 1.5 ** (1 / 3)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_instance_normalization_per_channel_over_time():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 50, 4)).astype(np.float32) * 3 + 1
    y = _np(leaf_keras.InstanceNormalization()(x))
    expected = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(y, expected, atol=1e-4)


# Non-negative energies [batch, frames, channels], as the poolings give them,
# of the shape of the scan test above (on JAX, where every eager op compiles
# once per shape, they share its compilations).
ENERGIES = {"input_shape": (2, 150, 3), "input_range": (0.0, 2.0)}


def test_pcen_layer_contract():
    # The learnable PCEN of the scan test above; its moving average is a
    # sub-layer, created under the global dtype policy.
    layer_test.run_layer_test(
        leaf_keras.PCENLayer,
        {
            "alpha": 0.9,
            "smooth_coef": 0.1,
            "delta": 1.5,
            "root": 3.0,
            "floor": 1e-6,
            "trainable": True,
            "learn_smooth_coef": True,
            "per_channel_smooth_coef": True,
        },
        **ENERGIES,
        expected_output_shape=(2, 150, 3),
        mixed_precision_via="global",
        expected_num_trainable_weights=4,
        expected_num_non_trainable_weights=0,
    )


def test_exponential_moving_average_layer_contract():
    layer_test.run_layer_test(
        leaf_keras.ExponentialMovingAverage,
        {"coeff_init": 0.1, "per_channel": True, "trainable": True},
        **ENERGIES,
        expected_output_shape=(2, 150, 3),
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
    )


def test_log_compression_layer_contract():
    layer_test.run_layer_test(
        leaf_keras.LogCompression,
        {"log_offset": 1e-5},
        **ENERGIES,
        expected_output_shape=(2, 150, 3),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
    )


def test_instance_normalization_layer_contract():
    layer_test.run_layer_test(
        leaf_keras.InstanceNormalization,
        input_shape=(2, 50, 4),
        expected_output_shape=(2, 50, 4),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )


def test_log_compression_function_is_log_of_offset_energies():
    x = np.random.default_rng(1).uniform(0.0, 3.0, (2, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(
        _np(leaf_keras.postprocessing.log_compression(x, log_offset=1e-3)),
        np.log(x + 1e-3),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "compression_fn, log_offset",
    [
        (leaf_keras.frontend.log_compression, 1e-5),
        (functools.partial(leaf_keras.frontend.log_compression, log_offset=1e-3), 1e-3),
        (
            functools.partial(
                functools.partial(leaf_keras.frontend.log_compression), log_offset=2e-2
            ),
            2e-2,
        ),
    ],
)
@pytest.mark.parametrize("frontend_cls", [leaf_keras.Leaf, leaf_keras.MelFilterbanks])
def test_frontends_store_the_original_log_compression_as_a_layer(
    frontend_cls, compression_fn, log_offset, tmp_path
):
    # leaf-audio's README passes functools.partial(frontend.log_compression, log_offset=...).
    frontend = frontend_cls(compression_fn=compression_fn)
    assert isinstance(frontend.compression_fn, leaf_keras.LogCompression)
    assert frontend.compression_fn.log_offset == log_offset
    reference = frontend_cls(compression_fn=leaf_keras.LogCompression(log_offset=log_offset))
    waveform = np.random.default_rng(2).normal(0.0, 0.1, (2, 1600)).astype(np.float32)
    outputs = _np(frontend(waveform))
    reference(waveform)
    reference.set_weights(frontend.get_weights())
    np.testing.assert_array_equal(outputs, _np(reference(waveform)))
    # Stored as a layer, it survives a safe_mode .keras round trip.
    path = str(tmp_path / "frontend.keras")
    keras.Sequential([keras.Input((1600,)), frontend]).save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_np(restored(waveform)), outputs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "compression_fn",
    [np.log, lambda x: x, functools.partial(leaf_keras.frontend.log_compression, 1.0)],
    ids=["numpy_log", "lambda", "partial_with_inputs"],
)
def test_other_callables_are_refused_as_compression(compression_fn):
    with pytest.raises(ValueError, match="compression_fn must be a keras layer"):
        leaf_keras.Leaf(compression_fn=compression_fn)

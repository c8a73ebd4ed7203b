"""leaf_keras.frontend: LEAF and its learnable baselines (and the frontend
contract the mel baselines share): shapes, serialization, jit, mixed
precision, bad input, and `Leaf(band_limited=True)`.

The fused and layers engines of the filterbank stage are compared in
test_filterbank.py, the band-limited layer itself in test_band_limited.py.
"""

import os

import keras
import numpy as np
import pytest

import leaf_keras

import layer_test
import testing_utils

FRONTENDS = {
    "leaf": leaf_keras.Leaf,
    "leaf_preemp_norm": lambda: leaf_keras.Leaf(preemp=True, mean_var_norm=True),
    "tfbanks": leaf_keras.TimeDomainFilterbanks,
    "sincnet": leaf_keras.SincNet,
    "sincnet_plus": leaf_keras.SincNetPlus,
    "mel": leaf_keras.MelFilterbanks,
    "mel_pcen": leaf_keras.MelPCEN,
}
TIME = 1200  # 75 ms: short inputs keep the suite fast


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _expected_frames(frontend, time):
    if isinstance(frontend, leaf_keras.TimeDomainFilterbanks):
        return (time - frontend.window_size) // frontend.stride + 1
    return -(-time // frontend.stride)


@pytest.fixture
def waveforms():
    return (np.random.default_rng(0).standard_normal((2, TIME)) * 0.1).astype(np.float32)


@pytest.mark.parametrize("name", sorted(FRONTENDS))
def test_contract_attributes_and_shapes(name, waveforms):
    frontend = FRONTENDS[name]()
    assert (frontend.sample_rate, frontend.n_filters, frontend.window_size, frontend.stride) == (
        16000,
        40,
        401,
        160,
    )
    out = _np(frontend(waveforms))
    assert out.shape == (2, _expected_frames(frontend, TIME), 40)
    out3 = _np(frontend(waveforms[:, :, None]))
    np.testing.assert_allclose(out3, out, rtol=1e-6, atol=1e-6)
    longer = _np(frontend(np.tile(waveforms, (1, 2))))
    assert longer.shape == (2, _expected_frames(frontend, 2 * TIME), 40)
    assert frontend.compute_output_shape((None, None)) == (None, None, 40)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filterbank": "fast"}, "filterbank must be one of"),
        ({"filterbank": "layers", "band_limited": True}, "contradicts"),
        ({"filterbank": "band_limited", "conv1d_cls": leaf_keras.SincConv1D}, "cannot replace"),
    ],
)
def test_bad_engine_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        leaf_keras.Leaf(**kwargs)


ENGINES = {
    **{
        f"leaf_{engine}": (
            lambda engine=engine: leaf_keras.Leaf(
                preemp=True, mean_var_norm=True, spec_augment=True, filterbank=engine
            )
        )
        for engine in ("fused", "layers", "band_limited")
    },
    **{
        f"{name}_{engine}": (lambda name=name, engine=engine: FRONTENDS[name](filterbank=engine))
        for name in ("tfbanks", "sincnet", "sincnet_plus")
        for engine in ("fused", "layers")
    },
}


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_every_listed_stage_runs_its_call(name, waveforms):
    """What `frontend.layers` lists is what runs: each listed layer's `call`
    executes when the frontend runs (in training, so SpecAugment does too),
    and for the layers engine so does each sub-layer of the filterbank."""
    frontend = ENGINES[name]()
    frontend.build(waveforms.shape)
    watched = list(frontend.layers)
    if frontend.filterbank.engine == "layers":
        fb = frontend.filterbank
        watched += [fb.conv, fb.activation, fb.pooling]
    calls = []
    for layer in watched:

        def counted(*args, _call=layer.call, _layer=layer, **kwargs):
            calls.append(_layer)
            return _call(*args, **kwargs)

        layer.call = counted
    frontend(waveforms, training=True)
    assert [layer for layer in watched if layer not in calls] == []


def test_leaf_gabor_helpers():
    leaf = leaf_keras.Leaf()
    centers = leaf.gabor_center_frequencies_hz()
    widths = leaf.gabor_bandwidths_hz()
    assert centers.shape == widths.shape == (40,)
    assert 0 < centers[0] < 100 and 7000 < centers[-1] < 8000
    assert np.all(np.diff(centers) >= 0) and np.all(widths > 0)


@pytest.mark.parametrize("name", sorted(FRONTENDS))
def test_save_load_round_trip(name, waveforms, tmp_path):
    model = keras.Sequential(
        [FRONTENDS[name](), keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)]
    )
    expected = _np(model(waveforms))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(_np(restored(waveforms)), expected, rtol=1e-5, atol=1e-5)
    frontend = model.layers[0]
    clone = frontend.__class__.from_config(frontend.get_config())
    assert clone.get_config() == frontend.get_config()


def test_functional_model_with_unknown_time_and_jit(waveforms):
    inputs = keras.Input((None,))
    features = leaf_keras.Leaf()(inputs)
    assert tuple(features.shape) == (None, None, 40)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalMaxPooling1D()(features))
    model = keras.Model(inputs, outputs)
    eager = _np(model(waveforms))
    # torch.compile (Keras' jit on torch) takes ~1.5 min to compile here; the
    # XLA-compiled TensorFlow/JAX paths are the ones that matter for speed.
    model.compile(jit_compile=keras.backend.backend() != "torch")
    np.testing.assert_allclose(model.predict(waveforms, verbose=0), eager, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", ["leaf", "sincnet_plus", "mel", "tfbanks"])
def test_mixed_precision_close_to_float32(policy, name, waveforms):
    reference_frontend = FRONTENDS[name]()
    expected = _np(reference_frontend(waveforms))
    keras.mixed_precision.set_global_policy(policy)
    try:
        frontend = FRONTENDS[name]()
        frontend(waveforms)
        frontend.set_weights(reference_frontend.get_weights())
        actual = _np(frontend(waveforms)).astype(np.float32)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(actual).all()
    # Half precision keeps ~3 (float16) or ~2 (bfloat16) significant digits.
    tolerance = 2e-2 if policy == "mixed_float16" else 6e-2
    assert np.abs(actual - expected).max() <= tolerance * np.abs(expected).max()


@pytest.mark.parametrize("name", sorted(FRONTENDS))
@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((TIME,), np.float32), "rank 1"),
        (np.zeros((1, TIME, 1, 1), np.float32), "rank 4|incompatible shape"),
        (np.zeros((1, TIME, 2), np.float32), "2 channels|incompatible shape"),
        (np.zeros((1, TIME), np.int16), "dtype int16"),
        (np.zeros((1, TIME), bool), "dtype bool"),
        (np.zeros((1, 100), np.float32), "at least 401 samples"),
        (np.zeros((0, TIME), np.float32), "empty batch"),
    ],
)
def test_bad_input_raises_clear_value_error(name, bad, message):
    frontend = FRONTENDS[name]()
    if "incompatible" in message:
        frontend(np.zeros((1, TIME), np.float32))  # built: Keras checks rank
    with pytest.raises(ValueError, match=message):
        frontend(bad)


@pytest.mark.parametrize("name", sorted(FRONTENDS))
def test_silence_and_loud_input_give_finite_outputs_and_gradients(name):
    import testing_utils  # pylint: disable=g-import-not-at-top

    frontend = FRONTENDS[name]()
    loud = (np.random.default_rng(0).standard_normal((1, TIME)) * 1e3).astype(np.float32)
    for inputs in (np.zeros((1, TIME), np.float32), loud):
        output = _np(frontend(inputs))
        assert np.isfinite(output).all()
        weights = frontend.trainable_weights
        if weights:
            _, grads = testing_utils.value_and_gradients(
                lambda x=inputs: keras.ops.sum(frontend(x)), weights
            )
            assert all(np.isfinite(g).all() for g in grads if g is not None)


# ------------------------------------------------ Leaf(band_limited=True)
# The opt-in decimated engine wired into the frontend: same weights as the
# exact path, output within 1e-2 of it (after PCEN) at initialization and
# with the reference's trained-like perturbed weights, config and .keras
# round trips. (The layer itself, BandLimitedGaborPooling, is tested in
# test_band_limited.py.)
TOLERANCE = 1e-2


@pytest.fixture(scope="module")
def reference_waveforms():
    return testing_utils.load_reference()["input"]


def _copy_exact_weights(exact, fast):
    """Copies Gabor, pooling and PCEN weights from an exact to a fast Leaf."""
    fused = fast.band_limited_filterbank
    fused.set_weights([exact.complex_conv.get_weights()[0], exact.pooling.get_weights()[0]])
    fast.compression_fn.set_weights(exact.compression_fn.get_weights())


def test_initial_output_matches_exact_path(reference_waveforms):
    exact = leaf_keras.Leaf(filterbank="fused")
    fast = leaf_keras.Leaf(band_limited=True)
    expected = keras.ops.convert_to_numpy(exact(reference_waveforms))
    actual = keras.ops.convert_to_numpy(fast(reference_waveforms))
    assert actual.shape == expected.shape == (2, 100, 40)
    error = testing_utils.relative_error(actual, expected)
    print(f"band-limited vs exact at init: {error:.2e}")
    assert error <= TOLERANCE


def test_perturbed_weights_match_exact_path(reference_waveforms):
    reference = testing_utils.load_reference()
    exact = leaf_keras.Leaf(filterbank="fused")
    leaf_keras.load_leaf_audio_weights(
        exact, testing_utils.case_entries(reference, "leaf_perturbed", "weight")
    )
    fast = leaf_keras.Leaf(band_limited=True)
    fast(reference_waveforms[:, :800])  # build
    _copy_exact_weights(exact, fast)
    expected = keras.ops.convert_to_numpy(exact(reference_waveforms))
    actual = keras.ops.convert_to_numpy(fast(reference_waveforms))
    error = testing_utils.relative_error(actual, expected)
    print(f"band-limited vs exact, perturbed weights: {error:.2e}")
    assert error <= TOLERANCE


def test_gabor_parameters_are_shared_between_modes():
    exact = leaf_keras.Leaf(filterbank="fused")
    fast = leaf_keras.Leaf(band_limited=True)
    np.testing.assert_allclose(
        fast.gabor_center_frequencies_hz(), exact.gabor_center_frequencies_hz(), rtol=1e-6
    )
    np.testing.assert_allclose(fast.gabor_bandwidths_hz(), exact.gabor_bandwidths_hz(), rtol=1e-6)
    assert fast.complex_conv is None
    assert fast.pooling is fast.band_limited_filterbank


def test_keras_round_trip(tmp_path, reference_waveforms):
    model = keras.Sequential(
        [
            keras.Input((None,)),
            leaf_keras.Leaf(band_limited=True),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(3),
        ]
    )
    clip = reference_waveforms[:, :4000]
    expected = model.predict(clip, verbose=0)
    path = os.path.join(tmp_path, "band_limited.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.layers[0].band_limited
    np.testing.assert_allclose(restored.predict(clip, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_rejects_non_gabor_stages():
    with pytest.raises(ValueError, match="band_limited"):
        leaf_keras.SincNet(band_limited=True)
    with pytest.raises(ValueError, match="band_limited"):
        leaf_keras.TimeDomainFilterbanks(band_limited=True)


# ------------------------------------------------------ layer contracts
# The frontends own their stages, created under the global dtype policy.
# With 1200 samples: ceil(1200 / 160) = 8 frames (TimeDomainFilterbanks'
# VALID pooling: (1200 - 401) // 160 + 1 = 5). The default configurations
# on this file's `waveforms`: the tests above run the same shapes (on JAX,
# where every eager op compiles once per shape, they share the compilations).
def test_leaf_layer_contract(waveforms):
    # Gabor kernel, pooling widths, PCEN alpha, delta, root and smoothing.
    layer_test.run_layer_test(
        leaf_keras.Leaf,
        input_data=waveforms,
        expected_output_shape=(2, 8, 40),
        mixed_precision_via="global",
        expected_num_trainable_weights=6,
        expected_num_non_trainable_weights=0,
    )


def test_time_domain_filterbanks_layer_contract(waveforms):
    # Free Gabor-initialized filters and the shared pooling filter.
    layer_test.run_layer_test(
        leaf_keras.TimeDomainFilterbanks,
        input_data=waveforms,
        expected_output_shape=(2, 5, 40),
        mixed_precision_via="global",
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )


def test_sincnet_layer_contract(waveforms):
    # Sinc cutoffs, layer normalization gamma and beta.
    layer_test.run_layer_test(
        leaf_keras.SincNet,
        input_data=waveforms,
        expected_output_shape=(2, 8, 40),
        mixed_precision_via="global",
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=0,
    )


def test_sincnet_plus_layer_contract(waveforms):
    # Sinc cutoffs and pooling widths learned; the PCEN is fixed (alpha,
    # delta, root and smoothing are non-trainable weights).
    layer_test.run_layer_test(
        leaf_keras.SincNetPlus,
        input_data=waveforms,
        expected_output_shape=(2, 8, 40),
        mixed_precision_via="global",
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=4,
    )


NAN_CASES = {
    **FRONTENDS,
    "leaf_band_limited": lambda: leaf_keras.Leaf(filterbank="band_limited"),
    "leaf_layers_engine": lambda: leaf_keras.Leaf(filterbank="layers"),
    "sincnet_layers_engine": lambda: leaf_keras.SincNet(filterbank="layers"),
}


@pytest.mark.parametrize("name", sorted(NAN_CASES))
def test_a_nan_sample_stays_in_its_own_clip(name):
    """A broken clip gives NaN frames, never plausible ones; its neighbours are untouched."""
    frontend = NAN_CASES[name]()
    x = np.random.default_rng(3).uniform(-0.5, 0.5, (2, 4000)).astype(np.float32)
    clean = _np(frontend(x[1:]))
    x[0, 1234] = np.nan
    outputs = _np(frontend(x))
    assert np.isnan(outputs[0]).any()
    # Float32 round-off only: a batch of two may block its FFTs and products differently
    # from a batch of one (2e-6 of the largest frame with pre-emphasis and instance norm on
    # TensorFlow without oneDNN, i.e. on AVX2-only CPUs).
    scale = float(np.abs(clean).max())
    np.testing.assert_allclose(outputs[1], clean[0], rtol=1e-5, atol=1e-5 * scale)

"""Frontend contract: shapes, serialization, jit, mixed precision, bad input."""

import os

import keras
import numpy as np
import pytest

import leaf_keras

FRONTENDS = {
    "leaf": leaf_keras.Leaf,
    "leaf_preemp_norm": lambda: leaf_keras.Leaf(preemp=True,
                                                mean_var_norm=True),
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
    return (np.random.default_rng(0).standard_normal((2, TIME)) * 0.1
            ).astype(np.float32)


@pytest.mark.parametrize("name", sorted(FRONTENDS))
def test_contract_attributes_and_shapes(name, waveforms):
    frontend = FRONTENDS[name]()
    assert (frontend.sample_rate, frontend.n_filters, frontend.window_size,
            frontend.stride) == (16000, 40, 401, 160)
    out = _np(frontend(waveforms))
    assert out.shape == (2, _expected_frames(frontend, TIME), 40)
    out3 = _np(frontend(waveforms[:, :, None]))
    np.testing.assert_allclose(out3, out, rtol=1e-6, atol=1e-6)
    longer = _np(frontend(np.tile(waveforms, (1, 2))))
    assert longer.shape == (2, _expected_frames(frontend, 2 * TIME), 40)
    assert frontend.compute_output_shape((None, None)) == (None, None, 40)


# Frontends whose filterbank the fused engine can compute, with the stages
# it fuses. Each factory takes the Leaf arguments (e.g. filterbank=...).
FUSED = {
    # Gabor FFT correlation, squared modulus, Gaussian pooling.
    "leaf_preemp": lambda **kw: leaf_keras.Leaf(preemp=True, **kw),
    # Free Conv1D filters, squared modulus, shared VALID pooling.
    "tfbanks": leaf_keras.TimeDomainFilterbanks,
    # Sinc filters, LeakyReLU, max pooling (-inf padding).
    "sincnet": leaf_keras.SincNet,
    # An odd channel count: the last pair has a zero imaginary filter.
    "sincnet_5_filters": lambda **kw: leaf_keras.SincNet(n_filters=5, **kw),
    # Sinc filters, LeakyReLU, Gaussian pooling.
    "sincnet_plus": leaf_keras.SincNetPlus,
    # Unit-norm free filters, ReLU, per-channel learnable pooling.
    "normalized_relu_channelwise": lambda **kw: leaf_keras.Leaf(
        conv1d_cls=leaf_keras.NormalizedConv1D,
        activation=keras.layers.ReLU(),
        pooling_cls=leaf_keras.ChannelWiseLearnablePooling1D,
        pooling_init=leaf_keras.LowpassInit(), compression_fn=None, **kw),
}


@pytest.mark.parametrize("name", sorted(FUSED))
def test_fused_engine_equals_layers_engine(name, waveforms):
    """The fused engine computes convolution, activation and pooling as one
    channels-first pass: it must equal the layers engine (the sub-layers one
    after the other) with the same weights, in value and in gradient, for
    every fusable combination of stages."""
    import testing_utils  # pylint: disable=g-import-not-at-top
    fused_model = FUSED[name]()
    layers_model = FUSED[name](filterbank="layers")
    assert isinstance(fused_model.filterbank, leaf_keras.FusedFilterbank)
    assert type(layers_model.filterbank) is leaf_keras.Filterbank
    fused_model.build(waveforms.shape)
    layers_model.build(waveforms.shape)
    # Move the filter and pooling parameters away from their initial values.
    rng = np.random.default_rng(1)
    layers_model.set_weights([w * rng.uniform(0.8, 1.2, w.shape)
                              for w in fused_model.get_weights()])
    fused_model.set_weights(layers_model.get_weights())

    fused, staged = _np(fused_model(waveforms)), _np(layers_model(waveforms))
    assert fused.shape == staged.shape
    np.testing.assert_allclose(fused, staged, rtol=1e-4,
                               atol=1e-4 * np.abs(staged).max())
    cotangent = keras.ops.convert_to_tensor(
        rng.standard_normal(fused.shape).astype(np.float32))
    _, fused_grads = testing_utils.value_and_gradients(
        lambda: keras.ops.sum(fused_model(waveforms) * cotangent),
        fused_model.trainable_weights)
    _, staged_grads = testing_utils.value_and_gradients(
        lambda: keras.ops.sum(layers_model(waveforms) * cotangent),
        layers_model.trainable_weights)
    for weight, fused_grad, staged_grad in zip(
            fused_model.trainable_weights, fused_grads, staged_grads):
        np.testing.assert_allclose(
            fused_grad, staged_grad, rtol=1e-4,
            atol=1e-4 * np.abs(staged_grad).max(), err_msg=weight.path)


@pytest.mark.parametrize("name", sorted(FUSED))
def test_fused_filterbank_traces_with_an_unknown_batch(name, waveforms):
    """A graph traced with an unknown batch (as `model.fit` traces on
    TensorFlow) keeps the static channel count the poolings reshape with."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("only TensorFlow traces graphs with an unknown batch")
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    frontend = FUSED[name]()
    expected = _np(frontend(waveforms))
    traced = tf.function(frontend, input_signature=[
        tf.TensorSpec((None, TIME), tf.float32)])
    np.testing.assert_allclose(_np(traced(waveforms)), expected, rtol=1e-5,
                               atol=1e-6)


def test_auto_engine_falls_back_to_layers_for_stages_it_cannot_fuse():
    # An activation with act(0) != 0, or one the fused engine does not
    # know, runs layer by layer; asking for the fused engine names why not.
    for kwargs in ({"activation": keras.layers.Activation("tanh")},
                   {"pooling_cls": leaf_keras.pooling.MaxPooling1D,
                    "activation": keras.layers.Softmax()},
                   {"activation": keras.layers.ReLU(threshold=0.5)}):
        model = leaf_keras.Leaf(**kwargs)
        assert model.filterbank.engine == "layers"
        with pytest.raises(ValueError, match="fused filterbank needs"):
            leaf_keras.Leaf(filterbank="fused", **kwargs)
    assert leaf_keras.Leaf().filterbank.engine == "fused"


@pytest.mark.parametrize("kwargs, message", [
    ({"filterbank": "fast"}, "filterbank must be one of"),
    ({"filterbank": "layers", "band_limited": True}, "contradicts"),
    ({"filterbank": "band_limited",
      "conv1d_cls": leaf_keras.SincConv1D}, "cannot replace"),
])
def test_bad_engine_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        leaf_keras.Leaf(**kwargs)


ENGINES = {
    **{f"leaf_{engine}": (lambda engine=engine: leaf_keras.Leaf(
        preemp=True, mean_var_norm=True, spec_augment=True,
        filterbank=engine)) for engine in ("fused", "layers", "band_limited")},
    **{f"{name}_{engine}": (lambda name=name, engine=engine: FUSED[name](
        filterbank=engine)) for name in ("tfbanks", "sincnet", "sincnet_plus")
       for engine in ("fused", "layers")},
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
    model = keras.Sequential([FRONTENDS[name](),
                              keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(3)])
    expected = _np(model(waveforms))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(_np(restored(waveforms)), expected, rtol=1e-5,
                               atol=1e-5)
    frontend = model.layers[0]
    clone = frontend.__class__.from_config(frontend.get_config())
    assert clone.get_config() == frontend.get_config()


def test_functional_model_with_unknown_time_and_jit(waveforms):
    inputs = keras.Input((None,))
    features = leaf_keras.Leaf()(inputs)
    assert tuple(features.shape) == (None, None, 40)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalMaxPooling1D()(
        features))
    model = keras.Model(inputs, outputs)
    eager = _np(model(waveforms))
    # torch.compile (Keras' jit on torch) takes ~1.5 min to compile here; the
    # XLA-compiled TensorFlow/JAX paths are the ones that matter for speed.
    model.compile(jit_compile=keras.backend.backend() != "torch")
    np.testing.assert_allclose(model.predict(waveforms, verbose=0), eager,
                               rtol=1e-4, atol=1e-4)


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
    assert np.abs(actual - expected).max() <= tolerance * np.abs(
        expected).max()


@pytest.mark.parametrize("name", sorted(FRONTENDS))
@pytest.mark.parametrize("bad, message", [
    (np.zeros((TIME,), np.float32), "rank 1"),
    (np.zeros((1, TIME, 1, 1), np.float32), "rank 4|incompatible shape"),
    (np.zeros((1, TIME, 2), np.float32), "2 channels|incompatible shape"),
    (np.zeros((1, TIME), np.int16), "dtype int16"),
    (np.zeros((1, TIME), bool), "dtype bool"),
    (np.zeros((1, 100), np.float32), "at least 401 samples"),
    (np.zeros((0, TIME), np.float32), "empty batch"),
])
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
    loud = (np.random.default_rng(0).standard_normal((1, TIME)) * 1e3
            ).astype(np.float32)
    for inputs in (np.zeros((1, TIME), np.float32), loud):
        output = _np(frontend(inputs))
        assert np.isfinite(output).all()
        weights = frontend.trainable_weights
        if weights:
            _, grads = testing_utils.value_and_gradients(
                lambda x=inputs: keras.ops.sum(frontend(x)), weights)
            assert all(np.isfinite(g).all() for g in grads if g is not None)

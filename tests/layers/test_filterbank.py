"""leaf_keras.filterbank: the convolution -> activation -> pooling stage and its engines."""

import keras
import numpy as np
import pytest

import leaf_keras

import layer_test

TIME = 1200  # 75 ms: short inputs keep the suite fast


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.fixture
def waveforms():
    return (np.random.default_rng(0).standard_normal((2, TIME)) * 0.1).astype(np.float32)


# Frontends whose filterbank the fused engine can compute, with the stages
# it fuses. Each factory takes the Leaf arguments (e.g. filterbank=...).
FUSED = {
    # Gabor FFT correlation, squared modulus, Gaussian pooling.
    "leaf_preemp": lambda filterbank="fused", **kw: leaf_keras.Leaf(
        preemp=True, filterbank=filterbank, **kw
    ),
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
        pooling_init=leaf_keras.LowpassInit(),
        compression_fn=None,
        **kw,
    ),
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
    assert fused_model.filterbank.engine == "fused"
    assert layers_model.filterbank.engine == "layers"
    fused_model.build(waveforms.shape)
    layers_model.build(waveforms.shape)
    # Move the filter and pooling parameters away from their initial values.
    rng = np.random.default_rng(1)
    layers_model.set_weights(
        [w * rng.uniform(0.8, 1.2, w.shape) for w in fused_model.get_weights()]
    )
    fused_model.set_weights(layers_model.get_weights())

    fused, staged = _np(fused_model(waveforms)), _np(layers_model(waveforms))
    assert fused.shape == staged.shape
    np.testing.assert_allclose(fused, staged, rtol=1e-4, atol=1e-4 * np.abs(staged).max())
    cotangent = keras.ops.convert_to_tensor(rng.standard_normal(fused.shape).astype(np.float32))
    _, fused_grads = testing_utils.value_and_gradients(
        lambda: keras.ops.sum(fused_model(waveforms) * cotangent), fused_model.trainable_weights
    )
    _, staged_grads = testing_utils.value_and_gradients(
        lambda: keras.ops.sum(layers_model(waveforms) * cotangent), layers_model.trainable_weights
    )
    for weight, fused_grad, staged_grad in zip(
        fused_model.trainable_weights, fused_grads, staged_grads
    ):
        np.testing.assert_allclose(
            fused_grad,
            staged_grad,
            rtol=1e-4,
            atol=1e-4 * np.abs(staged_grad).max(),
            err_msg=weight.path,
        )


@pytest.mark.parametrize("name", sorted(FUSED))
def test_fused_filterbank_traces_with_an_unknown_batch(name, waveforms):
    """A graph traced with an unknown batch (as `model.fit` traces on
    TensorFlow) keeps the static channel count the poolings reshape with."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("only TensorFlow traces graphs with an unknown batch")
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    frontend = FUSED[name]()
    expected = _np(frontend(waveforms))
    traced = tf.function(frontend, input_signature=[tf.TensorSpec((None, TIME), tf.float32)])
    np.testing.assert_allclose(_np(traced(waveforms)), expected, rtol=1e-5, atol=1e-6)


def test_auto_engine_falls_back_to_layers_for_stages_it_cannot_fuse():
    # An activation with act(0) != 0, or one the fused engine does not
    # know, runs layer by layer; asking for the fused engine names why not.
    for kwargs in (
        {"activation": keras.layers.Activation("tanh")},
        {"pooling_cls": leaf_keras.pooling.MaxPooling1D, "activation": keras.layers.Softmax()},
        {"activation": keras.layers.ReLU(threshold=0.5)},
    ):
        model = leaf_keras.Leaf(**kwargs)
        assert model.filterbank.engine == "layers"
        with pytest.raises(ValueError, match="fused filterbank needs"):
            leaf_keras.Leaf(filterbank="fused", **kwargs)
    # LEAF's own stages in float64, or told not to be band-limited, fuse.
    assert leaf_keras.Leaf(dtype="float64").filterbank.engine == "fused"
    assert leaf_keras.Leaf(band_limited=False).filterbank.engine == "fused"


def test_a_stage_that_overrides_call_runs_on_the_layers_engine():
    """The fused engine computes the known layers' `call`: a subclass with
    its own `call` must not be bypassed silently."""

    class DoubledPooling(leaf_keras.GaussianLowpass):
        def call(self, inputs):
            return 2.0 * super().call(inputs)

    class PlainSubclass(leaf_keras.GaussianLowpass):
        pass

    assert leaf_keras.Leaf(pooling_cls=DoubledPooling).filterbank.engine == "layers"
    assert leaf_keras.Leaf(pooling_cls=PlainSubclass).filterbank.engine == "fused"
    with pytest.raises(ValueError, match="overrides `call`"):
        leaf_keras.Leaf(pooling_cls=DoubledPooling, filterbank="fused")


def _gabor_filterbank(**kwargs):
    """LEAF's filterbank: 40 complex Gabor filters of 401 taps, squared
    modulus, Gaussian pooling every 160 samples (ceil(1200 / 160) = 8
    frames), the shapes of Leaf() above (on JAX, where every eager op
    compiles once per shape, they share its compilations)."""
    return leaf_keras.Filterbank(
        leaf_keras.GaborConv1D(80, 401),
        leaf_keras.SquaredModulus(),
        leaf_keras.GaussianLowpass(401, 160, trainable=True),
        **kwargs,
    )


# The sub-layers are the filterbank's arguments, created under the global
# dtype policy; the output is in the pooling's compute dtype.
@pytest.mark.parametrize("engine", ["fused", "layers"])
def test_filterbank_layer_contract(engine, waveforms):
    layer_test.run_layer_test(
        _gabor_filterbank,
        {"engine": engine},
        input_data=waveforms[:, :, None],
        expected_output_shape=(2, 8, 40),
        mixed_precision_via="global",
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )

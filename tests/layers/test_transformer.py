"""Tests of leaf_keras.transformer on the current Keras backend (narrow, shallow encoders)."""

import keras
import numpy as np
import pytest
from keras import ops

from leaf_keras import mel_frontend
from leaf_keras import models
from leaf_keras import transformer

import layer_test
import testing_utils

BINS = 8
# Narrow and shallow: the tests check the computation, not the capacity.
SMALL = {"d_model": 16, "num_heads": 2, "num_blocks": 2, "ff_dim": 32}
ON_JAX = keras.backend.backend() == "jax"


def _features(batch=2, frames=12, bins=BINS, channels=1, seed=0):
    return (
        np.random.default_rng(seed).normal(size=(batch, frames, bins, channels)).astype("float32")
    )


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def _randomize(layer, seed=1):
    """Sets every weight to random values (the biases and norms start at 0 and 1)."""
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]
    )


# ---------------------------------------------------------------------------- numpy reference


def _numpy_encoding(frames, depth):
    """Vaswani et al. (2017), Section 3.5, written out dimension by dimension."""
    encoding = np.zeros((frames, depth))
    for t in range(frames):
        for i in range(0, depth, 2):
            angle = t / 10000.0 ** (i / depth)
            encoding[t, i] = np.sin(angle)
            if i + 1 < depth:
                encoding[t, i + 1] = np.cos(angle)
    return encoding


def _layer_norm(x, norm):
    mean = x.mean(-1, keepdims=True)
    variance = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + norm.epsilon) * _numpy(norm.gamma) + _numpy(norm.beta)


def _numpy_block(x, block):
    """One post-norm block: x (frames, d_model), weights read from `block`."""
    attention = block.attention
    q, k, v = (
        np.einsum("tm,mhd->thd", x, _numpy(dense.kernel)) + _numpy(dense.bias)
        for dense in (attention._query_dense, attention._key_dense, attention._value_dense)
    )
    scores = np.einsum("thd,shd->hts", q, k) / np.sqrt(q.shape[-1])
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads = np.einsum("hts,shd->thd", weights, v)
    output_dense = attention._output_dense
    attended = np.einsum("thd,hdm->tm", heads, _numpy(output_dense.kernel))
    x = _layer_norm(x + attended + _numpy(output_dense.bias), block.attention_norm)
    hidden = np.maximum(x @ _numpy(block.ff_hidden.kernel) + _numpy(block.ff_hidden.bias), 0.0)
    transformed = hidden @ _numpy(block.ff_output.kernel) + _numpy(block.ff_output.bias)
    return _layer_norm(x + transformed, block.ff_norm)


def _numpy_encoder(features, encoder):
    outputs = []
    for example in features.astype(np.float64):
        x = example.reshape(example.shape[0], -1)
        x = x @ _numpy(encoder.embedding.kernel) + _numpy(encoder.embedding.bias)
        x = x + _numpy_encoding(x.shape[0], encoder.d_model)
        for block in encoder.blocks:
            x = _numpy_block(x, block)
        outputs.append(x)
    return np.stack(outputs)


@pytest.mark.parametrize("frames, depth", [(1, 4), (50, 16), (7, 5)])
def test_sinusoidal_encoding_matches_the_papers_formula(frames, depth):
    encoding = _numpy(transformer.sinusoidal_encoding(frames, depth))
    assert encoding.shape == (frames, depth) and encoding.dtype == np.float32
    np.testing.assert_allclose(encoding, _numpy_encoding(frames, depth), atol=2e-5)
    half = transformer.sinusoidal_encoding(frames, depth, dtype="float16")
    assert keras.backend.standardize_dtype(half.dtype) == "float16"


def test_encoder_matches_a_numpy_transformer():
    # Two blocks and inputs with two channels, so bins and channels are merged in order.
    encoder = transformer.TransformerEncoder(dropout=0.3, **SMALL)
    features = _features(2, 12, BINS // 2, channels=2)
    encoder(features)
    _randomize(encoder)
    np.testing.assert_allclose(
        _numpy(encoder(features, training=False)),
        _numpy_encoder(features, encoder),
        rtol=1e-4,
        atol=1e-4,
    )


def test_positional_encoding_makes_the_order_of_the_frames_matter():
    # Self-attention alone commutes with a permutation of the frames; with the positional
    # encodings reversing the input must not just reverse the output.
    encoder = transformer.TransformerEncoder(dropout=0.0, **SMALL)
    features = _features(1, 10)
    forward = _numpy(encoder(features))
    backward = _numpy(encoder(features[:, ::-1]))
    assert not np.allclose(backward[:, ::-1], forward, atol=1e-3)


# ---------------------------------------------------------------------------- shapes


def test_output_shape_follows_compute_output_shape_for_any_frame_count():
    encoder = transformer.TransformerEncoder(**SMALL)
    for frames in (1, 12, 30):
        features = _features(2, frames, BINS // 2, channels=2)
        output = encoder(features)
        assert tuple(output.shape) == (2, frames, 16)
        assert encoder.compute_output_shape(features.shape) == (2, frames, 16)
    inputs = keras.Input((None, BINS // 2, 2))
    assert keras.Model(inputs, encoder(inputs)).output_shape == (None, None, 16)
    assert encoder.compute_output_shape((None, None, 5, 3)) == (None, None, 16)


def test_defaults_and_feed_forward_width():
    encoder = transformer.TransformerEncoder()
    assert (encoder.d_model, encoder.num_heads, encoder.num_blocks) == (256, 8, 4)
    assert encoder.ff_dim == 1024 and encoder.dropout == 0.1
    assert len(encoder.blocks) == 4
    assert transformer.TransformerEncoder(d_model=32, num_heads=4).ff_dim == 128
    block = encoder.blocks[0]
    assert block.attention.num_heads == 8 and block.attention.key_dim == 32
    assert block.ff_hidden.units == 1024 and block.ff_output.units == 256


# ---------------------------------------------------------------------------- training


def test_dropout_is_active_only_in_training():
    encoder = transformer.TransformerEncoder(dropout=0.5, **SMALL)
    features = _features()
    inference = _numpy(encoder(features, training=False))
    np.testing.assert_array_equal(_numpy(encoder(features, training=False)), inference)
    np.testing.assert_array_equal(_numpy(encoder(features)), inference)
    assert not np.allclose(_numpy(encoder(features, training=True)), inference)


def test_gradients_reach_every_weight():
    encoder = transformer.TransformerEncoder(dropout=0.0, **SMALL)
    features = _features()
    encoder(features)
    _randomize(encoder)
    target = ops.convert_to_tensor(np.random.default_rng(2).normal(size=(2, 12, 16)), "float32")

    def loss():
        return ops.sum(encoder(features, training=True) * target)

    _, gradients = testing_utils.value_and_gradients(loss, encoder.trainable_weights)
    for weight, gradient in zip(encoder.trainable_weights, gradients):
        assert gradient is not None, weight.path
        assert np.isfinite(gradient).all(), weight.path
        if weight.path.endswith("attention/key/bias"):
            # Adding a constant to the keys shifts each query's scores by the same amount:
            # softmax ignores it, so this gradient is zero up to round-off.
            assert np.abs(gradient).max() < 1e-3, weight.path
        else:
            assert np.abs(gradient).max() > 1e-6, weight.path


# ---------------------------------------------------------------------------- AudioClassifier


@pytest.mark.parametrize("seconds", [1.0, 2.5])
def test_classifier_with_transformer_on_16khz_audio(seconds):
    model = models.AudioClassifier(
        5,
        frontend=mel_frontend.MelFilterbanks(n_filters=BINS),
        encoder=transformer.TransformerEncoder(**SMALL),
        pooling="avg",
    )
    waveforms = np.random.default_rng(0).normal(scale=0.1, size=(2, int(16000 * seconds)))
    logits = _numpy(model(waveforms.astype("float32"), training=False))
    assert logits.shape == (2, 5) and np.isfinite(logits).all()
    # Average pooling of the encoder's frames is what the head classifies.
    embedding = _numpy(model.embed(waveforms.astype("float32"), training=False))
    assert embedding.shape == (2, 16)


def test_classifier_trains_and_round_trips_through_a_keras_file(tmp_path):
    # One block: compiling the train step is most of this test's time on JAX.
    model = models.AudioClassifier(
        3,
        encoder=transformer.TransformerEncoder(**dict(SMALL, num_blocks=1)),
        pooling="avg",
        use_batch_norm=False,
    )
    # The shape of the other tests' inputs: on JAX the eager calls reuse their compilations.
    features = _features()[..., 0]
    labels = np.arange(2)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    first = float(model.train_on_batch(features, labels))
    second = float(model.train_on_batch(features, labels))
    assert np.isfinite(first) and np.isfinite(second) and first != second
    expected = _numpy(model(features, training=False))
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.encoder, transformer.TransformerEncoder)
    assert restored.encoder.get_config() == model.encoder.get_config()
    np.testing.assert_allclose(
        _numpy(restored(features, training=False)), expected, rtol=1e-5, atol=1e-6
    )


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"d_model": 0}, "d_model"),
        ({"d_model": 16.0}, "d_model"),
        ({"num_heads": 0}, "num_heads"),
        ({"d_model": 10, "num_heads": 4}, "num_heads.*divide.*d_model"),
        ({"num_blocks": 0}, "num_blocks"),
        ({"num_blocks": True}, "num_blocks"),
        ({"ff_dim": -1}, "ff_dim"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=f"TransformerEncoder: .*{match}"):
        transformer.TransformerEncoder(**kwargs)


def test_bad_block_arguments_raise():
    with pytest.raises(ValueError, match="TransformerBlock: `ff_dim`"):
        transformer.TransformerBlock(8, 2, 0)
    with pytest.raises(ValueError, match="TransformerBlock: `num_heads` must divide"):
        transformer.TransformerBlock(8, 3, 16)
    with pytest.raises(ValueError, match=r"d_model=8, got shape \(2, 5, 6\)"):
        transformer.TransformerBlock(8, 2, 16).build((2, 5, 6))


def test_bad_input_shapes_raise():
    with pytest.raises(ValueError, match=r"TransformerEncoder expects .*got shape \(2, 12, 8\)"):
        transformer.TransformerEncoder(**SMALL)(_features()[..., 0])
    with pytest.raises(ValueError, match="must be known"):
        transformer.TransformerEncoder(**SMALL).build((None, None, None, 1))


# ---------------------------------------------------------------------------- layer contracts
# The encoder creates its sub-layers under the global dtype policy. The first call of the
# contract runs without `training`, so dropout is inactive and outputs are comparable.


def test_transformer_encoder_layer_contract():
    # Embedding (kernel, bias); per block: four attention projections (kernel, bias), two
    # layer normalizations (gamma, beta) and two feed-forward layers (kernel, bias).
    layer_test.run_layer_test(
        transformer.TransformerEncoder,
        dict(SMALL, dropout=0.2),
        input_data=_features(),
        expected_output_shape=(2, 12, 16),
        mixed_precision_via="global",
        expected_num_trainable_weights=2 + 2 * 16,
        expected_num_non_trainable_weights=0,
    )


def test_transformer_block_layer_contract():
    layer_test.run_layer_test(
        transformer.TransformerBlock,
        {"d_model": 16, "num_heads": 2, "ff_dim": 32},
        input_shape=(2, 12, 16),
        expected_output_shape=(2, 12, 16),
        mixed_precision_via="global",
        expected_num_trainable_weights=16,
        expected_num_non_trainable_weights=0,
    )

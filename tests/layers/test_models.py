"""Tests of leaf_keras.models on the current Keras backend (tiny inputs, small widths).

The PANN encoders (leaf_keras.pann, re-exported by models) are tested in
test_pann.py; the parametrized tests below that cover every encoder stay here.
"""

import keras
import numpy as np
import pytest
from keras import ops

from leaf_keras import mel_frontend
from leaf_keras import models
from leaf_keras.spec_augment import SpecAugment

import layer_test
import testing_utils

BINS = 16
# On JAX every eagerly run op is compiled once per shape, which makes eager training of
# the larger models cost minutes on CPU; there the tests use Keras' jitted functions.
ON_JAX = keras.backend.backend() == "jax"


def _features(batch=2, frames=24, bins=BINS, channels=1, seed=0):
    shape = (batch, frames, bins) + ((channels,) if channels else ())
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _waveforms(batch=2, samples=6400, seed=0):
    return np.random.default_rng(seed).normal(scale=0.1, size=(batch, samples)).astype("float32")


def _numpy(x):
    return ops.convert_to_numpy(x)


def _output_shape_with_none_time(layer, inner_shape):
    inputs = keras.Input(inner_shape)
    return keras.Model(inputs, layer(inputs)).output_shape


def _predict(model, inputs):
    if ON_JAX:
        return model.predict(inputs, verbose=0, batch_size=len(inputs))
    return _numpy(model(inputs, training=False))


def _train_save_load(model, inputs, num_outputs, tmp_path, run_eagerly=True):
    """Trains two steps, checks the loss, then checks a .keras round trip.

    Big backbones train eagerly on TensorFlow and PyTorch: compiling their train step
    would dominate the suite's time there (on JAX, jitting is the cheaper option).
    """
    run_eagerly = run_eagerly and not ON_JAX
    labels = np.arange(inputs.shape[0]) % num_outputs
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=run_eagerly,
    )
    before = _predict(model, inputs)
    assert before.shape == (inputs.shape[0], num_outputs)
    first = float(model.train_on_batch(inputs, labels))
    second = float(model.train_on_batch(inputs, labels))
    assert np.isfinite(first) and np.isfinite(second)
    assert first != second
    after = _predict(model, inputs)
    assert np.all(np.isfinite(after)) and not np.allclose(before, after)

    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(model)
    np.testing.assert_allclose(_predict(restored, inputs), after, rtol=1e-5, atol=1e-6)
    return restored


# ---------------------------------------------------------------------------- encoders


@pytest.mark.parametrize(
    "make_encoder, expected",
    [
        (lambda: models.ConvNet([4, 8, 8], dropout=0.1), (2, 6, 4, 8)),
        (lambda: models.PANN(depth=2), (2, 6, 4, 128)),
        (lambda: models.ConvBlock(4, max_pooling=False), (2, 24, BINS, 4)),
        (lambda: models.PANNConvBlock(4, (2, 1)), (2, 12, BINS, 4)),
    ],
)
def test_encoder_shapes_keep_none_time(make_encoder, expected):
    encoder = make_encoder()
    features = _features()
    assert tuple(_numpy(encoder(features)).shape) == expected
    assert encoder.compute_output_shape(features.shape) == expected
    assert _output_shape_with_none_time(encoder, (None, BINS, 1)) == (None, None) + expected[2:]


def test_conv_net_pools_at_first_and_odd_blocks():
    net = models.ConvNet([2, 2, 2, 2, 2, 2], dropout=0.0)
    pools = [block.max_pooling for block in net.stack]
    assert pools == [True, True, False, True, False, True]
    # Four 2x2 "valid" max poolings: 35 -> 17 -> 8 -> 4 -> 2 frames, 48 -> 3 bins.
    assert tuple(_numpy(net(_features(1, 35, 48))).shape) == (1, 2, 3, 2)
    default = models.ConvNet()
    assert default.filters == [64, 128, 256, 256, 512, 512] and default.dropout == 0.1


def test_conv_block_layer_order_matches_original():
    block = models.ConvBlock(4, activation="tanh", dropout=0.2)
    kinds = [type(layer).__name__ for layer in block.stack]
    unit = ["Conv2D", "Activation", "BatchNormalization", "Dropout"]
    assert kinds == unit + unit + ["MaxPooling2D"]
    assert [layer.kernel_size for layer in block.stack if hasattr(layer, "kernel_size")] == [
        (3, 1),
        (1, 3),
    ]
    plain = models.ConvBlock(4, use_batch_norm=False, max_pooling=False)
    assert [type(layer).__name__ for layer in plain.stack] == ["Conv2D", "Activation"] * 2


# ---------------------------------------------------------------------------- SmallConvNet


def test_small_conv_net_defaults_and_layer_order():
    net = models.SmallConvNet()
    assert net.filters == [32, 64, 128] and net.dense_units == 420 and net.dropout == 0.18
    assert net.pooling == "max"
    kinds = [type(layer).__name__ for layer in net.stack]
    assert kinds == ["Conv2D", "MaxPooling2D"] * 3 + ["GlobalMaxPooling2D", "Dense", "Dropout"]
    convs = [layer for layer in net.stack if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.padding) for c in convs] == [
        (32, (3, 3), "same"),
        (64, (3, 3), "same"),
        (128, (3, 3), "same"),
    ]
    assert all(c.activation is keras.activations.relu for c in convs)
    dense = net.stack[-2]
    assert dense.units == 420 and dense.activation is keras.activations.relu
    assert net.stack[-1].rate == 0.18
    # One second of 40 mel bins (101 frames): 101 x 40 -> 50 x 20 -> 25 x 10 -> 12 x 5.
    assert net.compute_output_shape((None, None, 40, 1)) == (None, 420)
    plain = models.SmallConvNet([4], dense_units=3, dropout=0.0, pooling="avg")
    assert [type(layer).__name__ for layer in plain.stack] == [
        "Conv2D",
        "MaxPooling2D",
        "GlobalAveragePooling2D",
        "Dense",
    ]


@pytest.mark.parametrize("pooling, reduce", [("max", np.max), ("avg", np.mean)])
def test_small_conv_net_pools_globally_before_its_dense_layer(pooling, reduce):
    # Any number of frames gives one embedding: the dense layer sees the feature map
    # reduced over frames and bins.
    net = models.SmallConvNet([4, 8], dense_units=6, pooling=pooling)
    for frames in (8, 24, 37):
        features = _features(2, frames)
        outputs = _numpy(net(features, training=False))
        assert outputs.shape == (2, 6) == net.compute_output_shape(features.shape)
        feature_map = features
        for layer in net.stack[:4]:
            feature_map = layer(feature_map)
        assert _numpy(feature_map).shape == (2, frames // 4, BINS // 4, 8)
        pooled = reduce(_numpy(feature_map), axis=(1, 2))
        dense = net.stack[5]
        expected = np.maximum(pooled @ _numpy(dense.kernel) + _numpy(dense.bias), 0.0)
        np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)
    assert _output_shape_with_none_time(net, (None, BINS, 1)) == (None, 6)


def test_small_conv_net_dropout_only_in_training_and_gradients_reach_every_weight():
    net = models.SmallConvNet([4, 8], dense_units=6, dropout=0.5)
    features = _features()
    inference = _numpy(net(features, training=False))
    np.testing.assert_array_equal(_numpy(net(features, training=False)), inference)
    np.testing.assert_array_equal(_numpy(net(features)), inference)
    assert not np.allclose(_numpy(net(features, training=True)), inference)

    net = models.SmallConvNet([4, 8], dense_units=6, dropout=0.0)
    net(features)
    # Positive biases keep every ReLU unit alive, so every weight receives a gradient.
    net.set_weights([w if w.ndim > 1 else np.full_like(w, 0.5) for w in net.get_weights()])

    def loss():
        return ops.sum(net(features, training=True))

    _, gradients = testing_utils.value_and_gradients(loss, net.trainable_weights)
    for weight, gradient in zip(net.trainable_weights, gradients):
        assert gradient is not None and np.isfinite(gradient).all(), weight.path
        assert np.abs(gradient).max() > 0.0, weight.path


def test_classifier_uses_an_already_pooled_encoder_output_as_the_embedding():
    # A rank-2 encoder output is the embedding: neither pooling touches it.
    features = _features(3, 24, BINS, 0)
    for pooling in ("max", "avg"):
        encoder = models.SmallConvNet([4, 8], dense_units=6)
        model = models.AudioClassifier(4, encoder=encoder, pooling=pooling, use_batch_norm=False)
        embedding = _numpy(model.embed(features, training=False))
        np.testing.assert_array_equal(embedding, _numpy(encoder(features[..., None])))
        assert _numpy(model(features)).shape == (3, 4)
        assert model.head.kernel.shape == (6, 4)
    assert _output_shape_with_none_time(model, (None, BINS)) == (None, 4)


@pytest.mark.parametrize("seconds", [1.0, 2.5])
def test_classifier_with_small_conv_net_on_16khz_audio(seconds):
    model = models.AudioClassifier(
        5,
        frontend=mel_frontend.MelFilterbanks(n_filters=BINS),
        encoder=models.SmallConvNet([4, 8], dense_units=6),
    )
    waveforms = _waveforms(2, int(16000 * seconds))
    logits = _numpy(model(waveforms, training=False))
    assert logits.shape == (2, 5) and np.isfinite(logits).all()


def test_small_conv_net_classifier_trains_and_round_trips(tmp_path):
    model = models.AudioClassifier(
        3, encoder=models.SmallConvNet([4, 8], dense_units=6, dropout=0.1)
    )
    restored = _train_save_load(model, _features(4, 24, BINS, 0), 3, tmp_path, run_eagerly=False)
    assert isinstance(restored.encoder, models.SmallConvNet)
    assert restored.encoder.get_config() == model.encoder.get_config()


# ---------------------------------------------------------------------------- EfficientNet


@pytest.fixture(scope="module")
def efficientnet_encoder():
    return models.EfficientNetB0Encoder()


def test_efficientnet_shapes_small_inputs_and_no_imagenet_preprocessing(efficientnet_encoder):
    encoder = efficientnet_encoder
    assert _output_shape_with_none_time(encoder, (None, 64, 1)) == (None, None, 2, 1280)
    layer_types = {type(layer).__name__ for layer in encoder.backbone.layers}
    assert "Rescaling" not in layer_types and "Normalization" not in layer_types
    assert encoder.backbone.get_layer("stem_conv").kernel.shape == (3, 3, 1, 32)
    assert encoder.compute_output_shape((None, None, 40, 1)) == (None, None, 1, 1280)
    assert encoder.compute_output_shape((1, 101, 64, 1)) == (1, 3, 2, 1280)
    if ON_JAX:
        pytest.skip("running EfficientNet-B0 on JAX/CPU costs minutes of XLA compilation")
    out = _numpy(encoder(_features(2, 70, BINS), training=False))
    assert out.shape == (2, 2, 1, 1280) and np.all(np.isfinite(out))
    assert encoder.compute_output_shape((2, 70, BINS, 1)) == (2, 2, 1, 1280)
    # Smaller than EfficientNet's minimum of 32 per axis: padded, still works.
    assert tuple(_numpy(encoder(_features(1, 5, 3), training=False)).shape) == (1, 1, 1, 1280)


@pytest.mark.skipif(
    ON_JAX, reason="EfficientNet-B0 training costs minutes of XLA compilation on JAX/CPU"
)
def test_efficientnet_classifier_trains_and_round_trips(efficientnet_encoder, tmp_path):
    model = models.AudioClassifier(3, encoder=efficientnet_encoder, use_batch_norm=False)
    restored = _train_save_load(model, _features(2, 20, 8, channels=0), 3, tmp_path)
    assert isinstance(restored.encoder, models.EfficientNetB0Encoder)


# ---------------------------------------------------------------------------- AudioClassifier


@pytest.mark.parametrize(
    "make_model, inputs, run_eagerly",
    [
        (
            lambda: models.AudioClassifier(3, encoder=models.ConvNet([4, 8])),
            _features(4, 24, BINS, 0),
            False,
        ),
        (
            lambda: models.AudioClassifier(3, encoder=models.PANN(depth=2, dropout_rate=0.1)),
            _features(4, 12, 8, 0),
            True,
        ),
        (
            lambda: models.AudioClassifier(
                3, frontend=models.WaveGram(), encoder=models.ConvNet([4]), pooling="avg"
            ),
            _waveforms(4, 3200),
            True,
        ),
    ],
    ids=["convnet_compiled", "pann", "wavegram"],
)
def test_classifier_trains_one_step_and_round_trips(make_model, inputs, run_eagerly, tmp_path):
    model = make_model()
    restored = _train_save_load(model, inputs, 3, tmp_path, run_eagerly=run_eagerly)
    assert restored.get_config()["pooling"] == model.pooling
    assert type(restored.encoder) is type(model.encoder)
    assert type(restored.frontend) is type(model.frontend)


def test_classifier_with_leaf_frontend_round_trips(tmp_path):
    frontend_module = pytest.importorskip("leaf_keras.frontend")
    model = models.AudioClassifier(
        2, frontend=frontend_module.Leaf(), encoder=models.ConvNet([4, 4], dropout=0.0)
    )
    waveforms = _waveforms(2, 1600)
    assert _output_shape_with_none_time(model, (None,)) == (None, 2)
    _train_save_load(model, waveforms, 2, tmp_path)


def test_classifier_pooling_and_head_match_numpy():
    features = _features(3, 10, 6, 0)
    for pooling, reduce in (("max", np.max), ("avg", np.mean)):
        model = models.AudioClassifier(4, pooling=pooling, use_batch_norm=False)
        embedding = _numpy(model.embed(features))
        np.testing.assert_allclose(embedding, reduce(features, axis=(1, 2))[:, None], rtol=1e-6)
        logits = _numpy(model(features))
        kernel, bias = (_numpy(w) for w in model.head.weights)
        np.testing.assert_allclose(logits, embedding @ kernel + bias, rtol=1e-5, atol=1e-6)
    softmax = models.AudioClassifier(4, head_activation="softmax", use_batch_norm=False)
    np.testing.assert_allclose(_numpy(softmax(features)).sum(axis=1), 1.0, rtol=1e-5)


def test_classifier_batch_norm_normalizes_each_bin_in_training():
    features = _features(8, 10, 6, 0) * 5.0 + 3.0
    model = models.AudioClassifier(2, pooling="avg")
    normalized = _numpy(model.feature_norm(features[..., None], training=True))[..., 0]
    np.testing.assert_allclose(normalized.mean(axis=(0, 1)), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalized.std(axis=(0, 1)), 1.0, atol=1e-2)


def test_classifier_forwards_training_flag_to_frontend():
    features = np.abs(_features(2, 30, 12, 0)) + 1.0
    model = models.AudioClassifier(
        2, frontend=SpecAugment(seed=0, time_warp_max_frames=0), use_batch_norm=False, pooling="avg"
    )
    inference = _numpy(model(features, training=False))
    np.testing.assert_array_equal(inference, _numpy(model(features)))
    assert not np.allclose(_numpy(model(features, training=True)), inference)


def test_classifier_shapes_with_none_time():
    model = models.AudioClassifier(5, frontend=models.WaveGram(), encoder=models.ConvNet([4]))
    assert _output_shape_with_none_time(model, (None,)) == (None, 5)
    assert model.compute_output_shape((7, 6400)) == (7, 5)
    features_model = models.AudioClassifier(5, encoder=models.PANN(depth=1))
    assert _output_shape_with_none_time(features_model, (None, BINS)) == (None, 5)


@pytest.mark.parametrize(
    "layer",
    [
        models.ConvBlock(4, activation="elu", dropout=0.3, max_pooling=False),
        models.ConvNet([4, 8], use_batch_norm=False),
        models.PANNConvBlock(8, (2, 1)),
        models.PANNWavBlock(8, 2),
        models.PANN(depth=3, dropout_rate=0.1),
        models.WaveGram(sample_rate=8000),
        models.EfficientNetB0Encoder(min_size=40),
        models.SmallConvNet([4, 8], dense_units=6, dropout=0.0, pooling="avg"),
        models.AudioClassifier(
            3,
            frontend=models.WaveGram(),
            encoder=models.ConvNet([4]),
            pooling="avg",
            use_batch_norm=False,
            head_activation="sigmoid",
        ),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_config_round_trip(layer):
    config = layer.get_config()
    restored = type(layer).from_config(config)
    assert restored.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert type(keras.saving.deserialize_keras_object(serialized)) is type(layer)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: models.AudioClassifier(0), "num_outputs"),
        (lambda: models.AudioClassifier(2, pooling="mean"), "pooling"),
        (lambda: models.AudioClassifier(2, frontend="leaf"), "frontend"),
        (lambda: models.ConvNet([]), "filters"),
        (lambda: models.ConvNet([4, -1]), "filters"),
        (lambda: models.ConvBlock(4, dropout=1.0), "dropout"),
        (lambda: models.PANN(depth=0), "depth"),
        (lambda: models.PANNConvBlock(4, (2,)), "pool_size"),
        (lambda: models.PANNWavBlock(4, 0), "pool_size"),
        (lambda: models.EfficientNetB0Encoder(min_size=16), "min_size"),
        (lambda: models.SmallConvNet([]), "SmallConvNet: `filters`"),
        (lambda: models.SmallConvNet(32), "SmallConvNet: `filters`"),
        (lambda: models.SmallConvNet([4, 0]), "SmallConvNet: `filters`"),
        (lambda: models.SmallConvNet(dense_units=0), "SmallConvNet: `dense_units`"),
        (lambda: models.SmallConvNet(dense_units=4.5), "SmallConvNet: `dense_units`"),
        (lambda: models.SmallConvNet(dropout=1.0), "SmallConvNet: `dropout`"),
        (lambda: models.SmallConvNet(pooling="mean"), "SmallConvNet: `pooling`"),
    ],
)
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_input_shapes_raise():
    with pytest.raises(ValueError, match=r"ConvNet expects .*got shape \(2, 24, 16\)"):
        models.ConvNet([4])(_features(channels=0))
    with pytest.raises(ValueError, match=r"mono.*\(2, 100, 2\)"):
        models.WaveGram()(np.zeros((2, 100, 2), "float32"))
    with pytest.raises(ValueError, match="bins axis must be known"):
        models.PANN(depth=1).build((None, None, None, 1))
    with pytest.raises(ValueError, match=r"SmallConvNet expects .*got shape \(2, 24, 16\)"):
        models.SmallConvNet([4])(_features(channels=0))
    with pytest.raises(ValueError, match="known channels"):
        models.EfficientNetB0Encoder().build((None, None, 8, None))
    with pytest.raises(ValueError, match=r"\(batch, frames, bins\[, channels\]\).*\(2, 5\)"):
        models.AudioClassifier(2)(np.zeros((2, 5), "float32"))


# ---------------------------------------------------------------------------- layer contracts
# The blocks create their sub-layers (convolutions, batch normalizations) under the
# global dtype policy. Batch normalization runs in inference mode (no `training`).
# The configurations and inputs of test_encoder_shapes_keep_none_time (or their first
# blocks): on JAX, where every eager op compiles once per shape, they share its
# compilations.


def test_conv_block_layer_contract():
    # Two convolutions (kernel, bias) and two batch normalizations (gamma, beta; moving
    # mean and variance).
    layer_test.run_layer_test(
        models.ConvBlock,
        {"filters": 4, "max_pooling": False},
        input_data=_features(),
        expected_output_shape=(2, 24, BINS, 4),
        mixed_precision_via="global",
        expected_num_trainable_weights=8,
        expected_num_non_trainable_weights=4,
    )


def test_conv_net_layer_contract():
    # Two pooling blocks (the encoder of the classifier below): 24 x 16 -> 6 x 4.
    layer_test.run_layer_test(
        models.ConvNet,
        {"filters": [4, 8], "dropout": 0.1},
        input_data=_features(),
        expected_output_shape=(2, 6, 4, 8),
        mixed_precision_via="global",
        expected_num_trainable_weights=16,
        expected_num_non_trainable_weights=8,
    )


def test_small_conv_net_layer_contract():
    # Two convolutions and the dense layer (kernel, bias each); the output is the pooled
    # embedding, with no time axis. The first call has no `training`: dropout is off.
    layer_test.run_layer_test(
        models.SmallConvNet,
        {"filters": [4, 8], "dense_units": 6, "dropout": 0.18},
        input_data=_features(),
        expected_output_shape=(2, 6),
        output_time_axis=None,
        mixed_precision_via="global",
        expected_num_trainable_weights=6,
        expected_num_non_trainable_weights=0,
    )


def test_efficientnet_encoder_layer_contract():
    # An untrained EfficientNet-B0 with inference-mode batch norm and no input
    # normalization scales its input by ~1e-6: unit inputs give outputs (~1e-7) in
    # float16's subnormal range, where float16 keeps no relative precision. Inputs of
    # amplitude 100 keep them (~1e-2) in its normal range.
    skip = {}
    if ON_JAX:
        skip = {
            "call": "running EfficientNet-B0 eagerly on JAX/CPU costs minutes of XLA "
            "compilation (see test_efficientnet_shapes_...)",
            "symbolic_none_time": "building EfficientNet-B0 on JAX/CPU compiles its "
            "initializers (~1 min); its None-time output shape is "
            "checked by test_efficientnet_shapes_...",
        }
    layer_test.run_layer_test(
        models.EfficientNetB0Encoder,
        input_shape=(1, 8, 8, 1),
        input_range=(-100.0, 100.0),
        expected_output_shape=(1, 1, 1, 1280),
        mixed_precision_via="global",
        expected_num_trainable_weights=211,
        expected_num_non_trainable_weights=98,
        skip=skip,
    )


def test_audio_classifier_layer_contract():
    # Features (batch, frames, bins) to logits: the output has no time axis. Weights:
    # the features' batch normalization, two ConvBlocks and the dense head.
    layer_test.run_layer_test(
        lambda **kwargs: models.AudioClassifier(3, encoder=models.ConvNet([4, 8]), **kwargs),
        input_data=_features(channels=0),
        expected_output_shape=(2, 3),
        output_time_axis=None,
        mixed_precision_via="global",
        # Three logits after batch norms, two ConvBlocks and max pooling in bfloat16 (8-bit
        # mantissa): the largest logit's error reached 0.095 on TensorFlow (random weights).
        mixed_tolerance={"mixed_bfloat16": 0.15},
        expected_num_trainable_weights=20,
        expected_num_non_trainable_weights=10,
    )


def test_multitask_classifier_has_one_head_per_task_on_a_shared_embedding(tmp_path):
    model = models.AudioClassifier(
        {"events": 3, "family": 2}, encoder=models.ConvNet([4, 4]), use_batch_norm=False
    )
    features = np.random.default_rng(3).normal(size=(2, 16, 12)).astype("float32")
    outputs = model(features)
    assert {task: tuple(value.shape) for task, value in outputs.items()} == {
        "events": (2, 3),
        "family": (2, 2),
    }
    assert model.compute_output_shape((2, None, 12)) == {"events": (2, 3), "family": (2, 2)}
    # Each head is a dense layer on the same pooled embedding.
    embedding = _numpy(model.embed(features))
    for task, head in model.heads.items():
        kernel, bias = (_numpy(w) for w in head.weights)
        np.testing.assert_allclose(
            _numpy(outputs[task]), embedding @ kernel + bias, rtol=1e-5, atol=1e-6
        )
    path = str(tmp_path / "multitask.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    for task in ("events", "family"):
        np.testing.assert_allclose(
            _numpy(restored(features)[task]),
            _numpy(outputs[task]),
            rtol=1e-6,
        )


@pytest.mark.parametrize(
    "num_outputs, match",
    [({}, "empty"), ({"two words": 2}, "identifiers"), ({"a": 0}, "num_outputs")],
)
def test_multitask_classifier_bad_heads(num_outputs, match):
    with pytest.raises(ValueError, match=match):
        models.AudioClassifier(num_outputs)

"""Padding masks: a batch of clips of different lengths, padded at the end, gives each
clip what the clip alone gives (frames, embeddings, logits, gradients), on every backend.

`KERAS_BACKEND=<backend> python -m pytest -s tests/layers/test_masking.py` prints each
relative error.
"""

import keras
import numpy as np
import pytest
from keras import ops

import leaf_keras
from leaf_keras import masking
from leaf_keras import models
from leaf_keras import pann
from leaf_keras import transformer
from leaf_keras.ops import padding as padding_lib

import testing_utils

# Lengths with different remainders modulo the 160-sample stride: LEAF's SAME pooling
# pads each of them on the left by a different amount (120 to 200 samples).
LENGTHS = (2000, 1234, 1721)
TOLERANCE = 1e-5
# Logits and gradients of a classifier compound the frames' float32 round-off (a few 1e-7,
# up to 5e-6 after mean_var_norm) through its convolutions and poolings.
CLASSIFIER_TOLERANCE = 5e-5
FRONTENDS = dict(testing_utils.EVERY_FRONTEND)
FRONTENDS["leaf_preemp_mean_var_norm"] = lambda: leaf_keras.Leaf(preemp=True, mean_var_norm=True)


def _clips(lengths=LENGTHS, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.5, 0.5, n).astype("float32") for n in lengths]


def _padded(clips):
    batch = np.zeros((len(clips), max(len(c) for c in clips)), "float32")
    for row, clip in enumerate(clips):
        batch[row, : len(clip)] = clip
    return batch, np.array([len(c) for c in clips], "int32")


def _numpy(tensor):
    return np.asarray(ops.convert_to_numpy(tensor))


def _run(layer, inputs, **kwargs):
    """`layer(inputs, **kwargs)` in inference, as numpy. On JAX the call is compiled
    whole: op by op, JAX compiles every op again for every new length."""
    if keras.backend.backend() != "jax":
        return _numpy(layer(inputs, **kwargs))
    import jax  # pylint: disable=g-import-not-at-top

    if not layer.built:
        layer.build(inputs.shape)

    def apply(trainable, non_trainable, inputs, kwargs):
        return layer.stateless_call(trainable, non_trainable, inputs, **kwargs)[0]

    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]
    return _numpy(jax.jit(apply)(trainable, non_trainable, inputs, kwargs))


def _report(label, error, tolerance=TOLERANCE):
    print(f"{label}: relative error {error:.2e}")
    assert error <= tolerance, (label, error)


@pytest.mark.parametrize("name", sorted(FRONTENDS))
def test_frontend_frames_of_a_padded_batch_are_each_clips_own(name):
    frontend = FRONTENDS[name]()
    # 483 samples: 4 frames, so that the band-limited engine's recomputed first and last
    # two frames are all of them (and 3 * 160 + 3 ends a sample into the last frame).
    clips = _clips(LENGTHS + (483,)) if "band_limited" in name else _clips()
    batch, lengths = _padded(clips)
    mask = masking.sequence_mask(lengths, batch.shape[1])
    frames = _run(frontend, batch, mask=mask)
    frame_mask = _numpy(frontend.compute_mask(batch, mask))
    frame_lengths = _numpy(frontend.frame_lengths(lengths))
    assert frame_mask.shape == frames.shape[:2]
    np.testing.assert_array_equal(frame_mask.sum(axis=1), frame_lengths)
    for row, clip in enumerate(clips):
        alone = _run(frontend, clip[None])[0]
        assert alone.shape[0] == frame_lengths[row]
        error = testing_utils.relative_error(frames[row, : len(alone)], alone)
        _report(f"{name}, clip of {len(clip)} samples", error)


def test_without_a_mask_the_last_frames_see_the_padding():
    """What the mask is for: unmasked, a short clip's frames shift and see the padding."""
    frontend = leaf_keras.Leaf()
    clips = _clips()
    batch, _ = _padded(clips)
    unmasked = _run(frontend, batch)
    alone = _run(frontend, clips[1][None])[0]
    assert testing_utils.relative_error(unmasked[1, : len(alone)], alone) > 1e-2


def _classifier(encoder, pooling="max", use_batch_norm=True, frontend=None):
    # Seeded: with an unlucky draw every unit of SmallConvNet's ReLU dense layer is dead
    # and all logits are 0 whatever the input, which proves nothing about masks.
    keras.utils.set_random_seed(0)
    model = models.AudioClassifier(
        4,
        frontend=frontend or leaf_keras.Leaf(),
        encoder=encoder,
        pooling=pooling,
        use_batch_norm=use_batch_norm,
    )
    model.build((None, None))
    if model.feature_norm is not None:
        # Statistics away from (0, 1), so that the normalization does something.
        rng = np.random.default_rng(1)
        model.feature_norm.moving_mean.assign(rng.normal(size=(40,)).astype("float32"))
        model.feature_norm.moving_variance.assign(rng.uniform(0.5, 2, 40).astype("float32"))
    return model


ENCODERS = {
    "conv_net_avg": lambda: (models.ConvNet([6, 6, 6]), "avg"),
    "small_conv_net": lambda: (models.SmallConvNet([4, 6], dense_units=16), "max"),
    "no_encoder_max": lambda: (None, "max"),
}


@pytest.mark.parametrize("encoder_name", sorted(ENCODERS))
def test_classifier_logits_of_a_padded_batch_are_each_clips_own(encoder_name):
    encoder, pooling = ENCODERS[encoder_name]()
    model = _classifier(encoder, pooling)
    clips = _clips()
    batch, lengths = _padded(clips)
    alone = np.concatenate([_run(model, clip[None]) for clip in clips])
    assert np.abs(alone).max() > 0, "the classifier's logits are all 0: a degenerate init"
    by_lengths = _run(model, batch, lengths=lengths)
    by_mask = _run(model, batch, mask=_numpy(masking.sequence_mask(lengths, batch.shape[1])))
    for label, logits in (("lengths", by_lengths), ("mask", by_mask)):
        error = testing_utils.relative_error(logits, alone)
        _report(f"{encoder_name}, {label}", error, CLASSIFIER_TOLERANCE)
    # And the padding does change the unmasked logits.
    assert testing_utils.relative_error(_run(model, batch), alone) > 1e-3


@pytest.mark.parametrize("filterbank", ["fused", "band_limited"])
def test_training_loss_and_gradients_of_a_padded_batch_are_the_clips_mean(filterbank):
    """Without batch statistics, a padded batch trains like its clips one by one."""
    model = _classifier(
        models.ConvNet([4, 4], use_batch_norm=False, dropout=0.0),
        use_batch_norm=False,
        frontend=leaf_keras.Leaf(filterbank=filterbank),
    )
    clips = _clips()
    batch, lengths = _padded(clips)
    labels = np.array([0, 3, 1])
    loss_of = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    variables = model.trainable_variables

    def padded_loss():
        return loss_of(labels, model(batch, training=True, lengths=lengths))

    def clips_loss():
        losses = [
            loss_of(labels[row : row + 1], model(clip[None], training=True))
            for row, clip in enumerate(clips)
        ]
        return ops.mean(ops.stack(losses))

    padded_value, padded_grads = testing_utils.value_and_gradients(padded_loss, variables)
    clips_value, clips_grads = testing_utils.value_and_gradients(clips_loss, variables)
    _report("loss", testing_utils.relative_error(padded_value, clips_value), CLASSIFIER_TOLERANCE)
    for variable, padded_grad, clips_grad in zip(variables, padded_grads, clips_grads):
        error = testing_utils.relative_error(padded_grad, clips_grad)
        _report(f"gradient {variable.path}", error, CLASSIFIER_TOLERANCE)


def test_keras_masking_layer_reaches_the_frontend_and_pooling():
    """Keras's own masks: `Masking` marks the samples, Leaf turns them into frames and
    `GlobalAveragePooling1D` averages each clip's frames only."""
    model = keras.Sequential(
        [
            keras.Input((None, 1)),
            keras.layers.Masking(mask_value=0.0),
            leaf_keras.Leaf(),
            keras.layers.GlobalAveragePooling1D(),
        ]
    )
    clips = _clips()
    batch, _ = _padded(clips)
    # Digital silence inside a clip is masked by `Masking` but keeps the clip's length.
    batch[0, 100:140] = 0.0
    clips[0][100:140] = 0.0
    pooled = _run(model, batch[:, :, None])
    for row, clip in enumerate(clips):
        alone = _run(model, clip[None, :, None])[0]
        _report(
            f"Masking, clip of {len(clip)} samples",
            testing_utils.relative_error(pooled[row], alone),
        )


def test_lengths_from_mask_is_one_past_the_last_true_sample():
    mask = np.zeros((3, 10), bool)
    mask[0, :10] = True
    mask[1, [0, 1, 5]] = True
    np.testing.assert_array_equal(_numpy(masking.lengths_from_mask(mask)), [10, 6, 0])


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize(("kernel_size", "strides"), [(401, 160), (3, 1), (2, 2), (5, 3)])
def test_window_lengths_of_tensors_equal_the_static_rule(padding, kernel_size, strides):
    lengths = np.arange(kernel_size, kernel_size + 400, dtype="int32")
    expected = [padding_lib.output_length(int(n), kernel_size, strides, padding) for n in lengths]
    actual = _numpy(
        masking.window_lengths(ops.convert_to_tensor(lengths), kernel_size, strides, padding)
    )
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize(
    ("encoder", "match"),
    [
        (lambda: pann.PANN(depth=1), "AveragePooling2D"),
        (
            lambda: transformer.TransformerEncoder(d_model=8, num_heads=2, num_blocks=1),
            "TransformerEncoder cannot ignore padded frames",
        ),
    ],
)
def test_encoders_that_cannot_ignore_padding_refuse_lengths(encoder, match):
    model = models.AudioClassifier(4, encoder=encoder(), use_batch_norm=False)
    features = np.ones((2, 16, 8), "float32")
    model.build(features.shape)
    with pytest.raises(ValueError, match=match):
        model(features, lengths=np.array([16, 9], "int32"))


@pytest.mark.parametrize(
    ("lengths", "match"),
    [
        (np.array([[2000, 1234, 1721]], "int32"), r"shape \(batch,\)"),
        (np.array([2000.0, 1234.0, 1721.0], "float32"), "must be integers"),
        (np.array([2000, 1234], "int32"), "2 entries for a batch of 3"),
    ],
)
def test_bad_lengths_are_refused(lengths, match):
    model = _classifier(None)
    batch, _ = _padded(_clips())
    with pytest.raises(ValueError, match=match):
        model(batch, lengths=lengths)

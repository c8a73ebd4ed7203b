"""Tests of leaf_keras.spec_augment.SpecAugment on the current Keras backend."""

import keras
import numpy as np
import pytest
from keras import ops

from leaf_keras.spec_augment import SpecAugment

import layer_test

BATCH, FRAMES, BINS = 64, 50, 24
NO_WARP = dict(time_warp_max_frames=0)
NO_MASKS = dict(freq_mask_count=0, time_mask_count=0)


def _positive_features(batch=BATCH, frames=FRAMES, bins=BINS, seed=0):
    # Strictly positive so that a zero in the output can only come from a mask.
    return np.random.default_rng(seed).uniform(0.5, 1.5, (batch, frames, bins)).astype("float32")


def _run(layer, features, training=True):
    return ops.convert_to_numpy(layer(features, training=training))


def _runs_of_true(flags):
    """Lengths of the maximal runs of True in a 1-D boolean array."""
    padded = np.concatenate([[False], flags, [False]]).astype(int)
    edges = np.flatnonzero(np.diff(padded))
    return edges[1::2] - edges[0::2]


def _gradient_of_sum(layer, features):
    """d(sum(layer(x)))/dx on the current backend, as numpy."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(features)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(layer(x, training=True))
        return tape.gradient(total, x).numpy()
    if backend == "jax":
        import jax

        # The layer's seed state is updated eagerly outside jit: run it un-jitted.
        return np.asarray(jax.grad(lambda x: layer(x, training=True).sum())(features))
    if backend == "torch":
        import torch

        x = torch.tensor(features, requires_grad=True)
        layer(x, training=True).sum().backward()
        return x.grad.numpy()
    pytest.skip(f"no gradient helper for backend {backend}")


def test_identity_when_not_training():
    features = _positive_features()
    layer = SpecAugment(seed=1)
    np.testing.assert_array_equal(_run(layer, features, training=False), features)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(features)), features)


def test_masks_are_whole_zero_bands_within_documented_widths():
    features = _positive_features()
    layer = SpecAugment(
        freq_mask_max_bins=7,
        freq_mask_count=2,
        time_mask_max_frames=9,
        time_mask_count=3,
        seed=3,
        **NO_WARP,
    )
    out = _run(layer, features)
    zero = out == 0.0
    frame_masked = zero.all(axis=2)  # [batch, frames]
    bin_masked = zero.all(axis=1)  # [batch, bins]
    # Every zero lies in a fully masked frame or a fully masked bin.
    np.testing.assert_array_equal(zero, frame_masked[:, :, None] | bin_masked[:, None, :])
    # Everything else is untouched when warping is off.
    np.testing.assert_array_equal(out[~zero], features[~zero])
    for example in range(BATCH):
        for flags, count, max_width in ((frame_masked[example], 3, 9), (bin_masked[example], 2, 7)):
            runs = _runs_of_true(flags)
            assert len(runs) <= count
            assert flags.sum() <= count * (max_width - 1)
    # Single masks: one contiguous band whose widths cover {0, ..., max - 1} over the batch.
    single = SpecAugment(
        freq_mask_max_bins=6, freq_mask_count=1, time_mask_count=0, seed=4, **NO_WARP
    )
    masked_bins = (_run(single, features) == 0).all(axis=1)
    assert all(len(_runs_of_true(flags)) <= 1 for flags in masked_bins)
    widths = masked_bins.sum(axis=1)
    assert widths.max() == 5 and widths.min() == 0
    assert set(widths.tolist()) == set(range(6))


def test_time_mask_max_ratio_caps_width():
    features = _positive_features()
    layer = SpecAugment(
        time_mask_max_frames=40,
        time_mask_count=1,
        time_mask_max_ratio=0.1,
        freq_mask_count=0,
        seed=5,
        **NO_WARP,
    )
    widths = (_run(layer, features) == 0).all(axis=2).sum(axis=1)
    assert widths.max() == int(0.1 * FRAMES)


def test_zero_counts_and_zero_warp_are_identity():
    features = _positive_features()
    layer = SpecAugment(freq_mask_count=0, time_mask_count=0, time_warp_max_frames=0, seed=6)
    np.testing.assert_array_equal(_run(layer, features), features)
    ratio_off = SpecAugment(time_warp_max_ratio=0.0, freq_mask_max_bins=0, time_mask_max_frames=0)
    np.testing.assert_array_equal(_run(ratio_off, features), features)


def test_time_warp_is_monotone_bounded_and_keeps_end_frames():
    max_shift = 6
    ramp = np.tile(np.arange(FRAMES, dtype="float32")[None, :, None], (BATCH, 1, 2))
    layer = SpecAugment(time_warp_max_frames=max_shift, seed=7, **NO_MASKS)
    # Linear interpolation of a ramp returns the source coordinate of every output frame.
    source = _run(layer, ramp)[:, :, 0]
    assert np.all(source[:, 0] == 0.0) and np.all(source[:, -1] == FRAMES - 1)
    assert np.all(np.diff(source, axis=1) > 0.0)
    assert np.max(np.abs(source - np.arange(FRAMES))) <= max_shift + 1e-4
    assert np.any(np.abs(source - np.arange(FRAMES)) > 1.0), "the warp never moved anything"
    # Both channels are warped identically, first/last frames of any signal are kept.
    features = _positive_features()
    warped = _run(SpecAugment(time_warp_max_frames=max_shift, seed=8, **NO_MASKS), features)
    np.testing.assert_allclose(warped[:, [0, -1]], features[:, [0, -1]], rtol=1e-6)
    assert not np.allclose(warped, features)


def test_time_warp_output_is_between_adjacent_input_frames():
    features = _positive_features(batch=8)
    warped = _run(SpecAugment(time_warp_max_frames=4, seed=9, **NO_MASKS), features)
    low = np.minimum(features[:, :-1], features[:, 1:]).min(axis=1)
    high = np.maximum(features[:, :-1], features[:, 1:]).max(axis=1)
    assert np.all(warped.min(axis=1) >= low - 1e-6) and np.all(warped.max(axis=1) <= high + 1e-6)


def test_short_inputs_are_not_warped():
    features = _positive_features(frames=2)
    out = _run(SpecAugment(time_warp_max_frames=8, seed=10, **NO_MASKS), features)
    np.testing.assert_array_equal(out, features)


def test_same_seed_same_output_and_examples_differ():
    features = np.repeat(_positive_features(batch=1), 16, axis=0)
    first = _run(SpecAugment(seed=11), features)
    second = _run(SpecAugment(seed=11), features)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, _run(SpecAugment(seed=12), features))
    distinct = {first[i].tobytes() for i in range(16)}
    assert len(distinct) > 8, "identical examples should get independent augmentations"
    # Successive calls draw new masks.
    layer = SpecAugment(seed=11)
    assert not np.array_equal(_run(layer, features), _run(layer, features))


def test_four_dimensional_input():
    features = _positive_features(batch=4)
    out = _run(SpecAugment(seed=13), features[..., None])
    assert out.shape == (4, FRAMES, BINS, 1)
    np.testing.assert_array_equal(out[..., 0], _run(SpecAugment(seed=13), features))


def test_gradients_are_finite_and_masks_block_them():
    features = _positive_features(batch=4)
    layer = SpecAugment(seed=14, **NO_WARP)
    output = _run(SpecAugment(seed=14, **NO_WARP), features)
    gradient = _gradient_of_sum(layer, features)
    assert np.all(np.isfinite(gradient))
    np.testing.assert_array_equal(gradient, (output != 0).astype("float32"))
    warped_gradient = _gradient_of_sum(SpecAugment(seed=15), features)
    assert np.all(np.isfinite(warped_gradient)) and np.any(warped_gradient > 0)


def test_trains_in_compiled_model_with_none_time_axis():
    inputs = keras.Input((None, BINS))
    augmented = SpecAugment(seed=16)(inputs)
    outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(augmented))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse", jit_compile=keras.backend.backend() != "torch")
    assert model.output_shape == (None, 1)
    for frames in (30, 45):
        features = _positive_features(batch=4, frames=frames)
        loss = model.train_on_batch(features, np.zeros((4, 1), "float32"))
        assert np.isfinite(loss)
    # Inference is deterministic (augmentation off).
    features = _positive_features(batch=4)
    np.testing.assert_allclose(
        model.predict(features, verbose=0), model.predict(features, verbose=0)
    )


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.function specific")
def test_dynamic_shapes_in_tf_function():
    import tensorflow as tf

    layer = SpecAugment(seed=17)
    traced = tf.function(
        lambda x: layer(x, training=True),
        input_signature=[tf.TensorSpec((None, None, BINS), tf.float32)],
    )
    for frames in (20, 33):
        out = traced(_positive_features(batch=3, frames=frames)).numpy()
        assert out.shape == (3, frames, BINS) and np.all(np.isfinite(out))


def test_config_round_trip():
    layer = SpecAugment(freq_mask_max_bins=3, time_mask_count=1, time_warp_max_ratio=0.5, seed=18)
    restored = SpecAugment.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    features = _positive_features(batch=4)
    np.testing.assert_array_equal(_run(restored, features), _run(layer, features))
    serialized = keras.saving.serialize_keras_object(layer)
    assert isinstance(keras.saving.deserialize_keras_object(serialized), SpecAugment)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(freq_mask_max_bins=-1),
        dict(time_mask_count=1.5),
        dict(time_mask_max_ratio=1.5),
        dict(time_warp_max_ratio=-0.1),
        dict(seed="a"),
    ],
)
def test_bad_arguments_raise(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        SpecAugment(**kwargs)


def test_bad_input_rank_raises():
    with pytest.raises(ValueError, match=r"\(batch, frames, bins\).*got shape \(2, 10\)"):
        SpecAugment()(np.ones((2, 10), "float32"), training=True)
    with pytest.raises(ValueError, match="got shape"):
        SpecAugment()(np.ones((2, 10, 4, 3), "float32"), training=True)


def test_spec_augment_layer_contract():
    # The features of the tests above (on JAX, where every eager op compiles once per
    # shape, they share their compilations). Inference (the default, and what a saved
    # model does): the identity.
    layer_test.run_layer_test(
        SpecAugment,
        {"seed": 0},
        input_data=_positive_features(),
        expected_output_shape=(BATCH, FRAMES, BINS),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
    )
    # Training: masks and warps, also traced with a None time axis and under the mixed
    # policies. A layer with the same seed, called as often, draws the same masks: the
    # clone and the mixed layers are called twice (build, compare) like the layer is
    # before its outputs are recorded.
    layer_test.run_layer_test(
        SpecAugment,
        {"seed": 0},
        input_data=_positive_features(),
        call_kwargs={"training": True},
        expected_output_shape=(BATCH, FRAMES, BINS),
        skip={
            "keras_file_round_trip": "the saved model's generator state has moved on "
            "since the outputs compared with were drawn"
        },
    )

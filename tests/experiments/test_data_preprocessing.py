"""Tests of the waveform preprocessing and batching in experiments.data.preprocessing."""

import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

from experiments.data import preprocessing
from experiments.data import resample


def _numpy_loudness(x, target_db=15.0, max_gain_db=30.0):
    gain = min(10 ** (max_gain_db / 20), 10 ** (target_db / 20) / (np.std(x) + 1e-9))
    return gain * x


def test_to_float_waveform_scales_and_downmixes():
    ints = np.array([-32768, 0, 16384, 32767], np.int16)
    np.testing.assert_allclose(
        preprocessing.to_float_waveform(ints).numpy(), [-1.0, 0.0, 0.5, 32767 / 32768]
    )
    np.testing.assert_allclose(
        preprocessing.to_float_waveform(ints.astype(np.int64)).numpy(), ints / 32768.0
    )
    floats = np.array([0.25, -0.5], np.float32)
    np.testing.assert_array_equal(preprocessing.to_float_waveform(floats).numpy(), floats)
    stereo = np.array([[0.2, 0.4], [-0.2, 0.0]], np.float32)
    np.testing.assert_allclose(preprocessing.to_float_waveform(stereo).numpy(), [0.3, -0.1])
    with pytest.raises(ValueError, match="shape"):
        preprocessing.to_float_waveform(np.zeros((2, 2, 2), np.float32))


@pytest.mark.parametrize("scale", [0.5, 0.01, 1e-5, 0.0])
def test_loudness_normalization_matches_numpy(scale):
    x = scale * np.random.default_rng(0).standard_normal(3000).astype(np.float32)
    got = preprocessing.loudness_normalization(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, _numpy_loudness(x.astype(np.float64)), rtol=1e-4, atol=1e-7)


def test_loudness_normalization_reaches_target_and_caps_gain():
    x = 0.5 * np.random.default_rng(1).standard_normal(4000).astype(np.float32)
    assert np.std(preprocessing.loudness_normalization(x).numpy()) == pytest.approx(
        10 ** (15 / 20), rel=1e-3
    )
    quiet = 1e-4 * x
    np.testing.assert_allclose(
        preprocessing.loudness_normalization(quiet).numpy(), 10**1.5 * quiet, rtol=1e-5
    )


def test_padded_serving_preprocessing_treats_each_clip_as_alone():
    """Clips of 3000, 900 and 2000 samples in one zero-padded batch, with a 1600-sample
    training length: each row is what `serving_preprocessing` makes of the clip alone."""
    rng = np.random.default_rng(2)
    clips = [
        scale * rng.standard_normal(n).astype(np.float32)
        for n, scale in ((3000, 0.3), (900, 0.3), (2000, 1e-6))
    ]
    batch = np.zeros((3, 3000), np.float32)
    for row, clip in enumerate(clips):
        batch[row, : len(clip)] = clip
    waveforms, lengths = preprocessing.padded_serving_preprocessing(
        batch, [3000, 900, 2000], min_length=1600, loudness_normalize=True
    )
    np.testing.assert_array_equal(lengths.numpy(), [3000, 1600, 2000])
    for row, clip in enumerate(clips):
        alone = preprocessing.serving_preprocessing(clip[None], 1600, True).numpy()[0]
        np.testing.assert_allclose(
            waveforms.numpy()[row, : len(alone)], alone, rtol=1e-5, atol=1e-7
        )
        assert not waveforms.numpy()[row, len(alone) :].any()
    # A whole-batch normalization would not: the short clip's padding lowers its std.
    assert not np.allclose(
        preprocessing.serving_preprocessing(batch, 1600, True).numpy()[1, :900],
        preprocessing.serving_preprocessing(clips[1][None], 1600, True).numpy()[0, :900],
        rtol=1e-3,
    )


def test_random_crop_or_pad_lengths_and_content():
    short = tf.range(1, 101, dtype=tf.float32)
    padded = preprocessing.random_crop_or_pad(short, 160, tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(padded, np.concatenate([np.arange(1, 101), np.zeros(60)]))
    long = np.arange(1000, dtype=np.float32)
    offsets = set()
    for seed in range(20):
        crop = preprocessing.random_crop_or_pad(long, 160, tf.constant([seed, 0])).numpy()
        assert crop.shape == (160,)
        np.testing.assert_array_equal(crop, long[int(crop[0]) : int(crop[0]) + 160])
        offsets.add(int(crop[0]))
    assert len(offsets) > 10  # Crops really are random.
    again = preprocessing.random_crop_or_pad(long, 160, tf.constant([3, 0])).numpy()
    np.testing.assert_array_equal(
        again, preprocessing.random_crop_or_pad(long, 160, tf.constant([3, 0])).numpy()
    )


def _clips(lengths):
    clips = [np.full(n, i + 1, np.float32) for i, n in enumerate(lengths)]
    return tf.data.Dataset.from_generator(
        lambda: ((c, np.int32(i)) for i, c in enumerate(clips)),
        output_signature=(tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32)),
    )


def test_eval_pipeline_pads_short_clips_and_never_mixes_lengths():
    lengths = [500, 300, 800, 800, 800, 500, 1200]
    batches = list(
        preprocessing.make_eval_pipeline(
            _clips(lengths), batch_size=2, min_length=600, loudness_normalize=False
        )
    )
    seen = []
    for audio, labels in batches:
        assert audio.shape[0] <= 2
        for row, label in zip(audio.numpy(), labels.numpy()):
            original = lengths[label]
            assert row.shape[0] == max(original, 600)
            np.testing.assert_array_equal(row[:original], label + 1)
            np.testing.assert_array_equal(row[original:], 0)
            seen.append(int(label))
    assert sorted(seen) == list(range(len(lengths)))
    # 500, 300 (padded to 600) and 500 share one length; so do the three 800s.
    assert sorted(int(a.shape[1]) for a, _ in batches) == [600, 600, 800, 800, 1200]


def test_train_pipeline_shapes_and_seeded_reproducibility():
    lengths = [500, 300, 800, 2000, 900, 1200]

    def epoch(seed):
        pipeline = preprocessing.make_train_pipeline(
            _clips(lengths),
            batch_size=4,
            clip_length=640,
            loudness_normalize=True,
            shuffle_buffer=10,
            seed=seed,
        )
        return [(a.numpy(), l.numpy()) for a, l in pipeline]

    first = epoch(3)
    assert [a.shape for a, _ in first] == [(4, 640), (2, 640)]
    assert sorted(np.concatenate([l for _, l in first]).tolist()) == list(range(6))
    for (a, la), (b, lb) in zip(first, epoch(3)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    # Each row is its (constant-valued) clip, cropped or padded, then loudness-normalized.
    for audio, labels in first:
        for row, label in zip(audio, labels):
            raw = np.where(np.arange(640) < lengths[label], label + 1.0, 0.0)
            if lengths[label] >= 640:
                raw[:] = label + 1.0
            np.testing.assert_allclose(row, _numpy_loudness(raw), rtol=1e-4)


def test_resample_matches_scipy_resample_poly():
    x = np.random.default_rng(2).standard_normal(2000)
    for rate_in, rate_out in ((8000, 16000), (32000, 16000), (48000, 16000)):
        up, down = max(rate_out // rate_in, 1), max(rate_in // rate_out, 1)
        expected = scipy.signal.resample_poly(x, up, down)
        got = resample.resample(tf.constant(x, tf.float32), rate_in, rate_out).numpy()
        np.testing.assert_allclose(got, expected, atol=2e-3)
        np.testing.assert_allclose(
            resample.resample_numpy(x, rate_in, rate_out), expected, atol=1e-6
        )
    with pytest.raises(ValueError, match="44100"):
        resample.resample(tf.constant(x, tf.float32), 44100, 16000)
    with pytest.raises(ValueError, match="44100"):
        resample.resample_numpy(x, 44100, 16000)


def test_resample_keeps_a_sine():
    t_in = np.arange(8000) / 8000.0
    got = resample.resample(
        tf.constant(np.sin(2 * np.pi * 440 * t_in), tf.float32), 8000, 16000
    ).numpy()
    expected = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000.0)
    np.testing.assert_allclose(got[400:-400], expected[400:-400], atol=1e-2)


def test_train_and_eval_preprocessing_agree_on_clips_of_the_training_length():
    """A clip exactly `clip_length` long is seen identically in training and evaluation."""
    rng = np.random.default_rng(5)
    clips = [0.1 * rng.standard_normal(640).astype(np.float32) for _ in range(5)]
    dataset = tf.data.Dataset.from_tensor_slices((np.stack(clips), np.arange(5, dtype=np.int32)))
    train = preprocessing.make_train_pipeline(
        dataset, batch_size=5, clip_length=640, loudness_normalize=True, shuffle_buffer=0, seed=0
    )
    evaluation = preprocessing.make_eval_pipeline(
        dataset, batch_size=5, min_length=640, loudness_normalize=True
    )
    ((train_audio, train_labels),) = list(train)
    ((eval_audio, eval_labels),) = list(evaluation)
    np.testing.assert_array_equal(train_labels, eval_labels)
    np.testing.assert_allclose(train_audio, eval_audio, rtol=1e-6)

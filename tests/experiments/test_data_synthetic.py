"""Tests of the generated `synthetic_commands` dataset."""

import collections

import numpy as np
import pytest

from experiments import data
from experiments.data import synthetic_commands as sc


def test_generation_is_deterministic_and_per_clip():
    audio, labels = sc.generate_split("validation", 20, seed=7)
    again, labels_again = sc.generate_split("validation", 20, seed=7)
    np.testing.assert_array_equal(audio, again)
    np.testing.assert_array_equal(labels, labels_again)
    # A clip depends only on (seed, split, index): a shorter split is a prefix.
    prefix, _ = sc.generate_split("validation", 10, seed=7)
    np.testing.assert_array_equal(prefix, audio[:10])
    other_seed, _ = sc.generate_split("validation", 20, seed=8)
    other_split, _ = sc.generate_split("test", 20, seed=7)
    assert not np.array_equal(other_seed, audio) and not np.array_equal(other_split, audio)


def test_clips_are_one_second_int16_balanced_and_varied():
    audio, labels = sc.generate_split("train", 50)
    assert audio.shape == (50, 16000) and audio.dtype == np.int16
    assert np.bincount(labels).tolist() == [5] * 10
    peaks = np.abs(audio).max(axis=1) / 32768.0
    assert np.all(peaks > 10 ** (-31 / 20)) and np.all(peaks < 10 ** (-2.9 / 20))
    # Jitter: two clips of the same class are never identical.
    assert not np.array_equal(audio[0], audio[10])
    with pytest.raises(ValueError, match="bogus"):
        sc.generate_split("bogus", 1)


def test_classes_differ_in_spectrum():
    """Low vs high noise bursts and harmonic stacks put their energy where designed."""
    audio, labels = sc.generate_split("train", 40)
    freqs = np.fft.rfftfreq(16000, 1 / 16000)

    def centroid(index):
        power = np.abs(np.fft.rfft(audio[index].astype(np.float64))) ** 2
        return np.sum(freqs * power) / np.sum(power)

    by_class = collections.defaultdict(list)
    for index, label in enumerate(labels):
        by_class[sc.CLASS_NAMES[label]].append(centroid(index))
    assert max(by_class["low_noise_burst"]) < min(by_class["high_noise_burst"])
    assert np.mean(by_class["low_harmonics"]) < np.mean(by_class["high_harmonics"])


def test_load_task_synthetic_tiny(synthetic_commands_data_dir):
    task = data.load_task(
        "synthetic_commands/tiny",
        data_dir=synthetic_commands_data_dir,
        batch_size=16,
        eval_batch_size=8,
    )
    assert task.num_classes == 10 and task.class_names == sc.CLASS_NAMES
    assert not task.multi_label and task.sample_rate == 16000
    train = [(a.numpy(), l.numpy()) for a, l in task.train]
    assert [a.shape for a, _ in train] == [(16, 16000), (16, 16000), (8, 16000)]
    counts = collections.Counter(np.concatenate([l for _, l in train]).tolist())
    assert counts == {label: 4 for label in range(10)}
    validation = [(a.numpy(), l.numpy()) for a, l in task.validation]
    assert sum(len(l) for _, l in validation) == 20
    again = [(a.numpy(), l.numpy()) for a, l in task.validation]
    for (a, la), (b, lb) in zip(validation, again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)


def test_stored_clips_equal_the_generator(synthetic_commands_data_dir):
    task = data.load_task(
        "synthetic_commands/tiny",
        data_dir=synthetic_commands_data_dir,
        loudness_normalization=False,
    )
    stored = sorted(
        (tuple(np.round(a * 32768).astype(np.int16)[:64]), int(l))
        for a, l in task.test.unbatch().as_numpy_iterator()
    )
    audio, labels = sc.generate_split("test", 20)
    expected = sorted((tuple(a[:64]), int(l)) for a, l in zip(audio, labels))
    assert stored == expected


def test_family_labels_are_a_coarser_label_of_the_same_clips():
    audio, events = sc.generate_split("validation", 20)
    same_audio, families = sc.generate_split("validation", 20, labels="family")
    np.testing.assert_array_equal(audio, same_audio)
    names = [sc.FAMILY_NAMES[f] for f in families]
    for event, family in zip(events, names):
        kind = sc.CLASS_NAMES[event]
        expected = {"harmonics": "harmonic", "burst": "noise", "clicks": "clicks"}
        assert family == next((v for k, v in expected.items() if k in kind), "tone"), kind
    with pytest.raises(ValueError, match="labels"):
        sc.generate_split("train", 2, labels="speaker")


# double_beep; slow_clicks whose buffer's middle is 120 ms after its sound's; fast_clicks.
@pytest.mark.parametrize("label, seed", [(2, 2), (8, 0), (9, 9)])
def test_a_recording_places_each_event_at_the_middle_of_its_sound(label, seed):
    samples, events = sc.synthesize_recording([label, 0], np.random.default_rng(seed), snr_db=90.0)
    assert [event[1] for event in events] == [label, 0]
    # Halfway between the two centres lies in the gap between the events.
    between = int((events[0][0] + events[1][0]) / 2 * sc.SAMPLE_RATE)
    loud = np.flatnonzero(np.abs(samples[:between]) > 30)
    middle = (loud[0] + loud[-1] + 1) / 2 / sc.SAMPLE_RATE
    # Within a few samples: a click's (or fade's) quietest samples are below the bound.
    assert events[0][0] == pytest.approx(middle, abs=0.004)
    assert 1.0 < loud[0] / sc.SAMPLE_RATE < events[0][0]  # after the first 1 s gap

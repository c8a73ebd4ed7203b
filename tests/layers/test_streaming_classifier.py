"""leaf_keras.StreamingClassifier: each step scores the window the offline layers give."""

import keras
import numpy as np
import pytest

import leaf_keras

import testing_utils

WINDOW_SECONDS = 0.5  # 50 frames at 16 kHz, stride 160
HOPS = (1600, 1600, 3200, 1600, 1600)


def _classifier(frontend=None):
    keras.utils.set_random_seed(0)  # weights whose logits are not all near 0
    classifier = leaf_keras.AudioClassifier(
        num_outputs=5,
        frontend=frontend or leaf_keras.Leaf(n_filters=8, filterbank="fused"),
        encoder=leaf_keras.ConvNet(filters=[4, 4]),
    )
    classifier.build((None, 16000))
    return classifier


def _offline_energies(frontend, x):
    """Pooled energies of the whole recording by the offline layers."""
    if isinstance(frontend, leaf_keras.MelFilterbanks):
        return keras.ops.convert_to_numpy(frontend.mel_power(x))
    return keras.ops.convert_to_numpy(frontend.filterbank(x[:, :, None]))


FRONTENDS = {
    "leaf": lambda: leaf_keras.Leaf(n_filters=8),  # band-limited, tolerance 1e-4
    "leaf_exact": lambda: leaf_keras.Leaf(n_filters=8, filterbank="fused"),
    "mel_pcen": lambda: leaf_keras.MelPCEN(n_filters=8),
}


@pytest.mark.parametrize("frontend", list(FRONTENDS))
@pytest.mark.parametrize("loudness", [True, False])
def test_each_step_scores_the_offline_window(frontend, loudness):
    classifier = _classifier(FRONTENDS[frontend]())
    spotter = leaf_keras.StreamingClassifier(
        classifier,
        window_seconds=WINDOW_SECONDS,
        sample_rate=16000,
        loudness_normalization={} if loudness else None,
    )
    rng = np.random.default_rng(0)
    # Without the gain, quiet energies would give PCEN outputs near its offset.
    level = 0.05 if loudness else 0.5
    x = (level * rng.standard_normal((2, sum(HOPS)))).astype("float32")
    x[1] *= 0.1  # another loudness: another gain
    frames = spotter.window_frames
    window_samples = frames * spotter.stride
    # The window starts with frames of silence: energies 0, samples 0.
    energies = np.concatenate(
        [np.zeros((2, frames, 8), "float32"), _offline_energies(classifier.frontend, x)], axis=1
    )
    samples = np.concatenate([np.zeros((2, window_samples), "float32"), x], axis=1)
    state = spotter.initial_state(2)
    received, worst = 0, 0.0
    for hop in HOPS:
        logits, state = spotter.step(x[:, received : received + hop], state)
        received += hop
        emitted = spotter.emitted_frames(received)
        window = energies[:, emitted : emitted + frames]
        if loudness:
            std = samples[:, emitted * spotter.stride :][:, :window_samples].std(axis=1) + 1e-9
            gain = np.minimum(10**1.5, 10**0.75 / std)
            window = window * (gain**2)[:, None, None]
        features = spotter.stream.compress(window)
        expected = keras.ops.convert_to_numpy(
            classifier.classify_features(features, training=False)
        )
        streamed = keras.ops.convert_to_numpy(logits)
        worst = max(worst, testing_utils.relative_error(streamed, expected))
    print(f"\n[{keras.backend.backend()}] streaming classifier vs offline window: {worst:.1e}")
    assert np.abs(expected).max() > 1e-3  # not a constant output
    assert worst < 2e-5


def test_window_time_follows_the_latency():
    spotter = leaf_keras.StreamingClassifier(_classifier(), window_seconds=WINDOW_SECONDS)
    assert spotter.latency == 321 and spotter.window_frames == 50
    assert spotter.emitted_frames(1600) == (1600 - 321) // 160
    assert spotter.window_end_seconds(16000) == pytest.approx(97 * 160 / 16000)


def test_bad_arguments_are_refused():
    classifier = _classifier()
    with pytest.raises(ValueError, match="multiple of the frontend's stride"):
        leaf_keras.StreamingClassifier(classifier, window_seconds=0.505)
    with pytest.raises(ValueError, match="8000 Hz"):
        leaf_keras.StreamingClassifier(classifier, sample_rate=8000)
    with pytest.raises(ValueError, match="AudioClassifier"):
        leaf_keras.StreamingClassifier(classifier.frontend)
    with pytest.raises(ValueError, match="target_db and max_gain_db"):
        leaf_keras.StreamingClassifier(classifier, loudness_normalization={"gain": 1})
    spotter = leaf_keras.StreamingClassifier(classifier, window_seconds=WINDOW_SECONDS)
    with pytest.raises(ValueError, match="keys"):
        spotter.step(np.zeros((1, 160), "float32"), spotter.stream.initial_state(1))
    with pytest.raises(ValueError, match="multiple of the stride"):
        spotter.step(np.zeros((1, 100), "float32"), spotter.initial_state(1))
    with pytest.raises(ValueError, match="batch size"):
        spotter.step(np.zeros((2, 160), "float32"), spotter.initial_state(1))


def test_a_batch_of_streams_scores_each_stream_as_alone():
    """Streams of different lengths in one batch (the shorter padded with zeros past its
    end): while a stream lasts, its logits are those it gets streamed alone. Rows never
    mix: each keeps its own buffers, PCEN smoother and loudness gain."""
    spotter = leaf_keras.StreamingClassifier(
        _classifier(), window_seconds=WINDOW_SECONDS, loudness_normalization={}
    )
    rng = np.random.default_rng(2)
    long_stream = (0.1 * rng.standard_normal(sum(HOPS))).astype("float32")
    short_stream = (0.02 * rng.standard_normal(sum(HOPS[:3]))).astype("float32")
    batch = np.zeros((2, sum(HOPS)), "float32")
    batch[0], batch[1, : len(short_stream)] = long_stream, short_stream

    def logits_per_hop(x):
        state, received, out = spotter.initial_state(x.shape[0]), 0, []
        for hop in HOPS:
            logits, state = spotter.step(x[:, received : received + hop], state)
            received += hop
            out.append(keras.ops.convert_to_numpy(logits))
        return np.stack(out, axis=1)  # [batch, hops, classes]

    together = logits_per_hop(batch)
    alone_long = logits_per_hop(long_stream[None])[0]
    alone_short = logits_per_hop(np.pad(short_stream, (0, sum(HOPS) - len(short_stream)))[None])
    np.testing.assert_allclose(together[0], alone_long, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(together[1, :3], alone_short[0, :3], rtol=1e-5, atol=1e-6)
    assert np.abs(together[0] - together[1]).max() > 1e-3  # two different streams

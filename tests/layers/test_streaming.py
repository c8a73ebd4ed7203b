"""leaf_keras.streaming: chunked frontends give the offline frames."""

import keras
import numpy as np
import pytest

import leaf_keras
from leaf_keras import streaming

import testing_utils

STRIDE = 160
# 0.2 s at 16 kHz, a multiple of the stride, and an uneven mix of chunk lengths
# (JAX compiles every new shape: few steps, few shapes).
TIME = 3200
UNEVEN = (160, 480, 1600, 320, 640)
assert sum(UNEVEN) == TIME


def _signal(batch=2, time=TIME, seed=0):
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((batch, time))).astype("float32")


def _streamed(frontend, x, chunks, counts=None):
    """Frames of `x` cut into `chunks`, concatenated with the flush (the
    frames of each call appended to `counts`).

    On JAX the steps run under `jax.jit` (their shapes are static), which
    also compiles faster than JAX's op-by-op dispatch of each new shape.
    """
    stream = streaming.stream(frontend)
    step = stream.step
    if keras.backend.backend() == "jax":
        import jax  # pylint: disable=g-import-not-at-top

        step = jax.jit(stream.step)
    state = stream.initial_state(x.shape[0])
    outputs, start = [], 0
    for length in chunks:
        frames, state = step(x[:, start : start + length], state)
        outputs.append(keras.ops.convert_to_numpy(frames))
        start += length
    frames, state = stream.flush(state)
    outputs.append(keras.ops.convert_to_numpy(frames))
    if counts is not None:
        counts.extend(frames.shape[1] for frames in outputs)
    # flush hands back a fresh state.
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        k: tuple(v.shape) for k, v in stream.initial_state(x.shape[0]).items()
    }
    return np.concatenate(outputs, axis=1)


def _relative_error(streamed, offline):
    """`testing_utils.relative_error` of equal shapes, printed (`pytest -s`) for the docs."""
    assert streamed.shape == offline.shape
    error = testing_utils.relative_error(streamed, offline)
    print(f"\n[{keras.backend.backend()}] stream vs offline: {error:.1e}")
    return error


@pytest.mark.parametrize(
    "chunks", [(160,) * 20, (320,) * 10, (1600,) * 2, UNEVEN], ids=["160", "320", "1600", "uneven"]
)
def test_exact_leaf_stream_equals_offline_frames(chunks):
    frontend = leaf_keras.Leaf(filterbank="fused")
    x = _signal()
    offline = keras.ops.convert_to_numpy(frontend(x))
    counts = []
    assert _relative_error(_streamed(frontend, x, chunks, counts), offline) <= 1e-5
    # Each frame is emitted by the step that completes its window: after N
    # samples, (N - latency) // stride frames; the flush emits the rest.
    latency = streaming.stream(frontend).latency
    received = np.cumsum(chunks)
    emitted = np.maximum(0, (received - latency) // STRIDE)
    np.testing.assert_array_equal(counts[:-1], np.diff(emitted, prepend=0))
    assert counts[-1] == -(-latency // STRIDE) == 3


@pytest.mark.parametrize(
    "make_frontend",
    [
        lambda: leaf_keras.Leaf(filterbank="layers"),
        lambda: leaf_keras.Leaf(filterbank="fused", preemp=True),
        lambda: leaf_keras.TimeDomainFilterbanks(),
        lambda: leaf_keras.TimeDomainFilterbanks(filterbank="layers"),
        lambda: leaf_keras.SincNet(),
        lambda: leaf_keras.SincNet(filterbank="layers"),
        lambda: leaf_keras.SincNetPlus(),
        lambda: leaf_keras.MelFilterbanks(),
        lambda: leaf_keras.MelPCEN(),
    ],
    ids=[
        "leaf_layers",
        "leaf_preemp",
        "tdf",
        "tdf_layers",
        "sincnet",
        "sincnet_layers",
        "sincnet_plus",
        "mel",
        "mel_pcen",
    ],
)
def test_frontend_streams_equal_offline_frames(make_frontend):
    frontend = make_frontend()
    x = _signal()
    offline = keras.ops.convert_to_numpy(frontend(x))
    assert _relative_error(_streamed(frontend, x, UNEVEN), offline) <= 1e-5


@pytest.fixture(scope="module")
def band_limited_leaf():
    frontend = leaf_keras.Leaf(filterbank="band_limited")
    frontend.build((None, None))
    return frontend


@pytest.mark.parametrize(
    "time, chunks",
    [
        (12800, (1600,) * 8),
        (12800, UNEVEN * 4),
        (9600, (4800, 4800)),
        (800, (160,) * 5),  # 5 frames, all emitted by flush
        (640, (640,)),  # 4 frames: every one crosses an edge of the clip
    ],
    ids=["1600", "uneven", "4800", "short", "four_frames"],
)
def test_band_limited_stream_equals_offline_frames(band_limited_leaf, time, chunks):
    x = _signal(time=time)
    x[:, time // 3 : time // 2] *= 20.0  # a loud burst: the edges of the bands matter
    offline = keras.ops.convert_to_numpy(band_limited_leaf(x))
    counts = []
    assert _relative_error(_streamed(band_limited_leaf, x, chunks, counts), offline) <= 1e-5
    # Frames come one block at a time (28 frames per 4480-sample block), each at
    # most `latency` samples after its hop (with chunks of one stride; longer
    # chunks add what a frame waits for the end of its chunk).
    stream = streaming.stream(band_limited_leaf)
    received = np.cumsum(chunks)
    emitted = [stream.emitted_frames(n) for n in received]
    np.testing.assert_array_equal(counts[:-1], np.diff(emitted, prepend=0))
    for frame in range(emitted[-1]):
        arrived = received[np.searchsorted(emitted, frame + 1)]
        assert arrived - (frame + 1) * STRIDE <= stream.latency + max(chunks) - STRIDE
    assert stream.latency == 5120


def test_default_leaf_stream_equals_offline_frames():
    # `Leaf()` is the band-limited engine at tolerance 1e-4: wider bands, finer
    # decimations and 11-tap pooling kernels, so a longer guard before each
    # block's first window, which the stream carries too.
    frontend = leaf_keras.Leaf()
    assert frontend.band_limited and frontend.tolerance == 1e-4
    x = _signal(time=9600)
    x[:, 3200:4800] *= 20.0
    offline = keras.ops.convert_to_numpy(frontend(x))
    assert _relative_error(_streamed(frontend, x, (1600,) * 6), offline) <= 1e-5


@pytest.mark.parametrize(
    "time, chunks",
    [(9600, (1600,) * 6), (12800, UNEVEN * 4), (640, (640,))],
    ids=["1600", "uneven", "four_frames"],
)
def test_band_limited_leaf_with_preemphasis_streams_offline_frames(time, chunks):
    # The pre-emphasis streams in front of the blocks: they read its outputs one
    # sample behind the waveform, and the flush hands on its right padding first.
    frontend = leaf_keras.Leaf(preemp=True)
    assert frontend.band_limited
    x = _signal(time=time)
    x[:, time // 3 : time // 2] *= 20.0
    offline = keras.ops.convert_to_numpy(frontend(x))
    counts = []
    assert _relative_error(_streamed(frontend, x, chunks, counts), offline) <= 1e-5
    stream = streaming.stream(frontend)
    emitted = [stream.emitted_frames(n) for n in np.cumsum(chunks)]
    np.testing.assert_array_equal(counts[:-1], np.diff(emitted, prepend=0))


def test_time_domain_filterbanks_stream_keeps_valid_frame_count():
    # VALID pooling: (3200 - 401) // 160 + 1 = 18 frames, not 20.
    frontend = leaf_keras.TimeDomainFilterbanks()
    assert _streamed(frontend, _signal(), (1600,) * 2).shape == (2, 18, 40)


@pytest.mark.parametrize(
    "make_frontend, latency",
    [
        (leaf_keras.Leaf, 5280),  # the band-limited engine at 1e-4: one block
        (lambda: leaf_keras.Leaf(filterbank="fused"), 321),
        (lambda: leaf_keras.Leaf(filterbank="fused", preemp=True), 322),
        # The pre-emphasis delays the blocks by one sample, within the same stride.
        (lambda: leaf_keras.Leaf(preemp=True), 5280),
        (leaf_keras.TimeDomainFilterbanks, 441),
        (leaf_keras.SincNet, 321),
        (leaf_keras.MelPCEN, 241),
    ],
    ids=["leaf", "leaf_exact", "leaf_exact_preemp", "leaf_preemp", "tdf", "sincnet", "mel_pcen"],
)
def test_latency_is_the_derived_look_ahead(make_frontend, latency):
    stream = streaming.stream(make_frontend())
    assert stream.latency == latency and stream.stride == STRIDE


@pytest.mark.parametrize(
    "make_frontend, message",
    [
        (lambda: leaf_keras.Leaf(mean_var_norm=True), "tfbanks_instancenorm"),
        (lambda: leaf_keras.Leaf(spec_augment=True), "SpecAugment"),
        (lambda: keras.layers.Dense(3), "leaf_keras frontend"),
    ],
    ids=["mean_var_norm", "spec_augment", "not_a_frontend"],
)
def test_frontends_that_cannot_stream_exactly_are_refused(make_frontend, message):
    with pytest.raises(ValueError, match=message):
        streaming.stream(make_frontend())


@pytest.fixture(scope="module")
def leaf_stream():
    return streaming.stream(leaf_keras.Leaf(filterbank="fused"))


@pytest.mark.parametrize(
    "shape, message",
    [
        ((1, 250), "multiple of the stride"),
        ((1, 160, 2), "channels"),
        ((1, 1, 160, 1), "rank"),
    ],
    ids=["length", "channels", "rank"],
)
def test_bad_chunks_are_refused(leaf_stream, shape, message):
    state = leaf_stream.initial_state(1)
    with pytest.raises(ValueError, match=message):
        leaf_stream.step(np.zeros(shape, "float32"), state)


def test_integer_chunks_are_refused(leaf_stream):
    with pytest.raises(ValueError, match="float"):
        leaf_stream.step(np.zeros((1, 160), "int32"), leaf_stream.initial_state(1))


def test_state_of_another_batch_size_is_refused(leaf_stream):
    with pytest.raises(ValueError, match="batch size 2 and a state of batch size 3"):
        leaf_stream.step(np.zeros((2, 160), "float32"), leaf_stream.initial_state(3))


@pytest.mark.parametrize(
    "make_other, message",
    [
        (lambda: leaf_keras.Leaf(filterbank="fused", n_filters=20), "n_filters=40"),
        (lambda: leaf_keras.Leaf(filterbank="fused", window_len=20.0), "never reaches"),
        (leaf_keras.MelFilterbanks, "keys"),
    ],
    ids=["n_filters", "buffer_length", "other_frontend"],
)
def test_state_of_another_stream_is_refused(leaf_stream, make_other, message):
    state = streaming.stream(make_other()).initial_state(1)
    with pytest.raises(ValueError, match=message):
        leaf_stream.step(np.zeros((1, 160), "float32"), state)
    with pytest.raises(ValueError, match=message):
        leaf_stream.flush(state)

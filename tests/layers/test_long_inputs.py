"""A 60-second clip through every frontend and engine: finite outputs and gradients.

Long recordings reach the frontends in evaluation and serving (a minute of a sound-event
stream). The FFT correlation works in overlap-save blocks, the pooling in stride blocks
and PCEN's moving average in chunks, so nothing should grow faster than the length; these
tests check that the values stay finite and frame-aligned at 60 s. The memory at 1, 10
and 60 s is measured by `benchmarks/benchmark_frontends.py --batch-configs 1x1 1x10 1x60`
(benchmarks/README.md), not here.
"""

import keras
import numpy as np
import pytest

import testing_utils

SAMPLE_RATE = 16000
SECONDS = 60
FRONTENDS = testing_utils.EVERY_FRONTEND


@pytest.fixture(scope="module")
def minute():
    """A chirp sweeping 100 Hz → 7 kHz over 60 s with white noise, and a one-second copy
    of its start."""
    t = np.arange(SECONDS * SAMPLE_RATE) / SAMPLE_RATE
    phase = 2 * np.pi * (100 * t + (7000 - 100) / (2 * SECONDS) * t**2)
    noise = 0.05 * np.random.default_rng(0).standard_normal(t.shape)
    return (0.5 * np.sin(phase) + noise).astype(np.float32)[None, :]


def _forward(frontend, waveforms):
    """`frontend(waveforms)` as numpy; compiled on JAX, whose op-by-op dispatch would
    compile every operation of a long graph separately."""
    if keras.backend.backend() == "jax":
        import jax  # pylint: disable=g-import-not-at-top

        return np.asarray(jax.jit(frontend)(waveforms))
    return keras.ops.convert_to_numpy(frontend(waveforms))


@pytest.mark.parametrize("name", sorted(FRONTENDS))
def test_sixty_seconds_give_finite_outputs_and_gradients(name, minute):
    frontend = FRONTENDS[name]()
    frontend.build((None, None))
    expected_frames = frontend.compute_output_shape((1, minute.shape[1]))[1]
    loss, grads = testing_utils.value_and_gradients(
        lambda: keras.ops.mean(frontend(minute)), frontend.trainable_weights, jit=True
    )
    assert np.isfinite(loss), name
    assert all(np.isfinite(g).all() for g in grads), name
    if not grads:  # mel: nothing to learn, so check the gradient that reaches the waveform
        grad = testing_utils.gradients_of_input(lambda x: keras.ops.mean(frontend(x)), minute)
        assert np.isfinite(grad).all() and np.abs(grad).max() > 0, name
    long = _forward(frontend, minute)
    assert long.shape == (1, expected_frames, 40)
    assert np.isfinite(long).all(), name
    # Frames of the first second depend on nothing after it (but for the last frames'
    # look-ahead): the long run is aligned frame by frame with a one-second run.
    short = _forward(frontend, minute[:, :SAMPLE_RATE])
    head = short.shape[1] - 3
    assert testing_utils.relative_error(long[:, :head], short[:, :head]) <= 1e-4, name

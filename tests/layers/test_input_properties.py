"""Property-based tests of the frontends' input validation (hypothesis).

Random shapes, dtypes, lengths and values, for every frontend and engine: the result is
either an output of the documented shape, or a ValueError that names the problem; never
another exception type. Non-finite samples follow the documented rule: the frames of that
clip are NaN, the other clips' frames are finite.
"""

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import leaf_keras

import testing_utils

FRONTENDS = testing_utils.EVERY_FRONTEND
_BUILT = {}

DTYPES = ("float32", "float64", "float16", "int16", "int32", "uint8", "bool")


def _frontend(name):
    # One instance per frontend: each example is a new input, not a new layer.
    if name not in _BUILT:
        _BUILT[name] = FRONTENDS[name]()
    return _BUILT[name]


def _expected_frames(frontend, time):
    if isinstance(frontend, leaf_keras.TimeDomainFilterbanks):
        return (time - frontend.window_size) // frontend.stride + 1
    return -(-time // frontend.stride)


def _problems(shape, dtype, window):
    """What the input contract says is wrong with the input (any may be reported)."""
    if len(shape) not in (2, 3):
        return ["rank"]
    problems = []
    if len(shape) == 3 and shape[2] != 1:
        problems.append("channels")
    if dtype not in ("float32", "float64", "float16"):
        problems.append("dtype")
    if shape[0] == 0:
        problems.append("empty batch")
    if shape[1] < window:
        problems.append("samples")
    return problems


_MESSAGES = {
    "rank": "shape",
    "channels": "mono",
    "dtype": "float waveforms",
    "empty batch": "empty batch",
    "samples": "at least 401 samples",
}


@st.composite
def waveform_inputs(draw):
    rank = draw(st.sampled_from([1, 2, 2, 2, 3, 3, 4]))
    batch = draw(st.sampled_from([0, 1, 2]))
    time = draw(st.sampled_from([0, 1, 200, 400, 401, 561, 1200]))
    shape = [batch, time] + [draw(st.sampled_from([1, 1, 2]))] * (rank - 2)
    shape = shape[:rank] if rank < 2 else shape
    return tuple(shape), draw(st.sampled_from(DTYPES))


@pytest.mark.parametrize("name", sorted(FRONTENDS))
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=waveform_inputs())
def test_valid_output_or_a_value_error_naming_the_problem(name, case):
    shape, dtype = case
    frontend = _frontend(name)
    values = np.random.default_rng(0).uniform(-0.5, 0.5, shape)
    if dtype == "bool":
        waveforms = values > 0
    elif dtype.startswith("float"):
        waveforms = values.astype(dtype)
    else:  # integer PCM
        waveforms = (values * 1000).astype(dtype)
    problems = _problems(shape, dtype, frontend.window_size)
    if problems:
        with pytest.raises(ValueError) as error:
            frontend(waveforms)
        assert any(_MESSAGES[p] in str(error.value) for p in problems), (problems, error.value)
        return
    output = np.asarray(keras.ops.convert_to_numpy(frontend(waveforms)))
    assert output.shape == (shape[0], _expected_frames(frontend, shape[1]), 40)
    assert np.all(np.isfinite(output))


@pytest.mark.parametrize("name", sorted(FRONTENDS))
@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_a_non_finite_sample_makes_only_its_clip_nan(name, bad_value):
    frontend = _frontend(name)
    waveforms = np.random.default_rng(1).uniform(-0.5, 0.5, (2, 1200)).astype("float32")
    waveforms[1, 600] = bad_value
    output = np.asarray(keras.ops.convert_to_numpy(frontend(waveforms)))
    assert np.all(np.isfinite(output[0]))
    assert np.any(np.isnan(output[1])), "the corrupt clip's frames must show it"

"""leaf_keras.ops.linear_recurrence: chunked scan and its written-out gradient."""

import keras
import numpy as np
import pytest


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.mark.parametrize("decay", [0.0, 0.5, 1.0])
def test_linear_recurrence_edge_decays(decay):
    from leaf_keras.ops import linear_recurrence  # pylint: disable=g-import-not-at-top

    x = np.random.default_rng(1).random((1, 130, 2)).astype(np.float32)
    actual = _np(
        linear_recurrence.linear_recurrence(np.full((2,), decay, np.float32), x, chunk_size=16)
    )
    state = np.zeros((1, 2))
    for t in range(130):
        state = decay * state + x[:, t]
        np.testing.assert_allclose(actual[:, t], state, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("time,chunk_size", [(37, 16), (130, 16), (64, 64)])
def test_linear_recurrence_gradient_matches_sequential_loop(time, chunk_size):
    # linear_recurrence has a written-out gradient (the adjoint recurrence
    # run backwards); it must equal autodiff of the plain sequential loop.
    from leaf_keras.ops import linear_recurrence  # pylint: disable=g-import-not-at-top

    import testing_utils  # pylint: disable=g-import-not-at-top

    rng = np.random.default_rng(7)
    decay = keras.Variable(rng.uniform(0.5, 0.99, 3).astype(np.float32))
    inputs = keras.Variable(rng.random((2, time, 3)).astype(np.float32))
    cotangent = keras.ops.convert_to_tensor(rng.standard_normal((2, time, 3)).astype(np.float32))

    def chunked():
        return keras.ops.sum(
            cotangent
            * linear_recurrence.linear_recurrence(
                keras.ops.add(decay, 0.0), keras.ops.add(inputs, 0.0), chunk_size=chunk_size
            )
        )

    def sequential():
        state, states = keras.ops.zeros((2, 3)), []
        for t in range(time):
            state = decay * state + inputs[:, t]
            states.append(state)
        return keras.ops.sum(cotangent * keras.ops.stack(states, axis=1))

    loss, grads = testing_utils.value_and_gradients(chunked, [decay, inputs])
    expected_loss, expected = testing_utils.value_and_gradients(sequential, [decay, inputs])
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    for actual, wanted in zip(grads, expected):
        assert testing_utils.relative_error(actual, wanted) <= 1e-5

"""leaf_keras.ops.tie_gradients: TensorFlow's values and gradients, NaN kept."""

import keras
import numpy as np
import pytest

from leaf_keras.ops import tie_gradients

import testing_utils

X = np.array([-2.0, 0.5, 1.0, 3.0, np.nan, np.inf, -np.inf], np.float32)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("minimum", np.array([-2.0, 0.5, 1.0, 1.0, np.nan, 1.0, -np.inf])),
        ("maximum", np.array([1.0, 1.0, 1.0, 3.0, np.nan, np.inf, 1.0])),
    ],
)
def test_minimum_and_maximum_keep_nan(name, expected):
    got = keras.ops.convert_to_numpy(getattr(tie_gradients, name)(X, 1.0))
    np.testing.assert_array_equal(got, expected.astype(np.float32))


def test_clip_keeps_nan():
    got = keras.ops.convert_to_numpy(tie_gradients.clip(X, 0.0, 1.0))
    np.testing.assert_array_equal(got, np.array([0, 0.5, 1, 1, np.nan, 1, 0], np.float32))


@pytest.mark.parametrize(
    "fn, gradient",
    [
        # The whole gradient goes to x at a tie (x = 1), as with tf.minimum / tf.maximum.
        (lambda x: tie_gradients.minimum(x, 1.0), [1.0, 1.0, 1.0, 0.0]),
        (lambda x: tie_gradients.maximum(x, 1.0), [0.0, 0.0, 1.0, 1.0]),
        (lambda x: tie_gradients.clip(x, 0.5, 1.0), [0.0, 1.0, 1.0, 0.0]),
    ],
)
def test_gradient_at_ties_goes_to_x(fn, gradient):
    x = np.array([-2.0, 0.5, 1.0, 3.0], np.float32)
    got = testing_utils.gradients_of_input(lambda v: keras.ops.sum(fn(v)), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), np.array(gradient, np.float32))

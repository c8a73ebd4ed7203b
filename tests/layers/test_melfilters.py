"""leaf_keras.melfilters: the mel matrix of tf.signal, in numpy."""

import numpy as np
import pytest

from leaf_keras import melfilters


@pytest.mark.parametrize(
    "args",
    [
        (40, 257, 16000, 60.0, 7800.0),
        (64, 513, 22050, 0.0, 11025.0),
        (20, 129, 8000, 125.0, 3800.0),
    ],
)
@pytest.mark.parametrize("dtype, atol", [("float32", 2e-5), ("float64", 1e-12)])
def test_mel_matrix_matches_tf_signal(args, dtype, atol):
    tf = pytest.importorskip("tensorflow")
    expected = tf.signal.linear_to_mel_weight_matrix(*args, dtype=tf.as_dtype(dtype)).numpy()
    actual = melfilters.linear_to_mel_weight_matrix(*args, dtype=dtype)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, atol=atol)


def test_mel_matrix_rejects_bad_edges():
    with pytest.raises(ValueError, match="above the Nyquist"):
        melfilters.linear_to_mel_weight_matrix(40, 257, 16000, 60.0, 9000.0)

"""leaf_keras.ops.band_power: the band power of the band-limited engine and its gradient."""

import keras
import numpy as np
from keras import ops

from leaf_keras.ops import band_power

from testing_utils import relative_error


def test_band_power_gradient_matches_autodiff():
    # `ops.band_power` has a hand-written gradient (recomputation, row sums);
    # it must equal the backend's autodiff of the same formula.
    import testing_utils  # pylint: disable=g-import-not-at-top

    rng = np.random.default_rng(4)
    shapes = {"x_real": (3, 6, 16), "x_imag": (3, 6, 16), "g_real": (3, 16), "g_imag": (3, 16)}
    variables = {
        name: keras.Variable(rng.standard_normal(shape).astype(np.float32), name=name)
        for name, shape in shapes.items()
    }
    cotangent = ops.convert_to_tensor(rng.standard_normal((3, 6, 16)).astype(np.float32))
    ordered = [variables[name] for name in shapes]

    def custom():
        # (Tensors, not variables: a custom gradient takes tensors.)
        tensors = [ops.add(v, 0.0) for v in ordered]
        return ops.sum(cotangent * band_power.band_power(*tensors))

    def plain():
        x_re, x_im, g_re, g_im = ordered
        g_re, g_im = g_re[:, None, :], g_im[:, None, :]
        y_re, y_im = x_re * g_re - x_im * g_im, x_re * g_im + x_im * g_re
        out_re, out_im = ops.fft((y_re, -y_im))
        return ops.sum(cotangent * (ops.square(out_re) + ops.square(out_im)))

    loss, grads = testing_utils.value_and_gradients(custom, ordered)
    expected_loss, expected_grads = testing_utils.value_and_gradients(plain, ordered)
    values = [np.asarray(ops.convert_to_numpy(v), np.float64) for v in ordered]
    numpy_power = (
        np.abs(
            np.fft.fft(
                np.conj((values[0] + 1j * values[1]) * (values[2] + 1j * values[3])[:, None]),
                axis=-1,
            )
        )
        ** 2
    )
    np.testing.assert_allclose(
        loss, np.sum(ops.convert_to_numpy(cotangent) * numpy_power), rtol=1e-4
    )
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    for name, actual, expected in zip(shapes, grads, expected_grads):
        assert relative_error(actual, expected) <= 1e-5, name

"""leaf_keras.utils: analysis windows and the mel scale."""

import numpy as np
import pytest

from leaf_keras import utils


def test_windows_follow_the_original_formulas():
    n = np.arange(11)
    np.testing.assert_allclose(
        utils.window("hamming", 11), 0.54 - 0.46 * np.cos(2 * np.pi * n / 11)
    )
    hanning = 0.5 * (1 - np.cos(2 * np.pi * (n - 1) / 10))
    np.testing.assert_allclose(utils.window(utils.WindowType.HANNING, 11), hanning)
    np.testing.assert_allclose(utils.window("squared_hanning", 11), hanning**2)
    with pytest.raises(ValueError, match="Unknown window type 'kaiser'"):
        utils.window("kaiser", 11)


def test_mel_scale_round_trip():
    f = np.array([0.0, 60.0, 1000.0, 7800.0])
    np.testing.assert_allclose(utils.mel2hz(utils.hz2mel(f)), f, atol=1e-9)
    assert abs(utils.hz2mel(1000.0) - 1000.0) < 0.1

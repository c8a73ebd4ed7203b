"""leaf_keras.mel_frontend: the log mel and mel-PCEN baselines."""

import numpy as np
import scipy.signal

import leaf_keras

import layer_test


def test_scipy_hann_is_what_mel_uses_for_odd_windows():
    frontend = leaf_keras.MelFilterbanks()
    np.testing.assert_allclose(
        frontend._window,  # pylint: disable=protected-access
        scipy.signal.windows.hann(401, sym=True),
        atol=1e-6,
    )


# 1200 samples: ceil(1200 / 160) = 8 frames of the default 40 bands. Both
# own a compression sub-layer, created under the global dtype policy.
def test_mel_filterbanks_layer_contract():
    layer_test.run_layer_test(
        leaf_keras.MelFilterbanks,
        input_shape=(2, 1200),
        expected_output_shape=(2, 8, 40),
        mixed_precision_via="global",
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
    )


def test_mel_pcen_layer_contract():
    # LEAF's PCEN: alpha, delta, root and the per-channel smoothing learned.
    layer_test.run_layer_test(
        leaf_keras.MelPCEN,
        input_shape=(2, 1200),
        expected_output_shape=(2, 8, 40),
        mixed_precision_via="global",
        expected_num_trainable_weights=4,
        expected_num_non_trainable_weights=0,
    )

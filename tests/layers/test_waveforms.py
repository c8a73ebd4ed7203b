"""leaf_keras.waveforms: the waveform input stage of every frontend."""

import leaf_keras

import layer_test


def test_waveform_input_layer_contract():
    # The stage passes waveforms through in their own dtype (autocast=False):
    # float32 under a mixed policy too, which the float32 filters read.
    layer_test.run_layer_test(
        leaf_keras.WaveformInput,
        {"min_length": 401},
        input_shape=(2, 1200),
        expected_output_shape=(2, 1200, 1),
        mixed_output_dtype="float32",
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
    )

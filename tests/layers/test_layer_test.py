"""The shared helper layer_test.run_layer_test: opt-outs and a check that bites."""

import keras
import pytest

import layer_test


@keras.saving.register_keras_serializable(package="leaf_keras_tests")
class _Scale(keras.layers.Layer):
    """`x * factor * w`, w one trainable weight per channel."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.factor * self.w

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="leaf_keras_tests")
class _ForgetfulScale(_Scale):
    def get_config(self):
        return keras.layers.Layer.get_config(self)  # drops `factor`


ARGUMENTS = {"input_shape": (2, 10, 3), "expected_output_shape": (2, 10, 3)}


def test_passes_and_reports_the_skipped_checks():
    results = layer_test.run_layer_test(
        _Scale, {"factor": 3.0}, **ARGUMENTS, expected_num_trainable_weights=1
    )
    assert results == {check: "passed" for check in layer_test.CHECKS}
    # Skipping the eager call skips the checks that compare with its outputs.
    results = layer_test.run_layer_test(_Scale, **ARGUMENTS, skip={"call": "a reason"})
    assert results.pop("call") == "skipped: a reason"
    assert results == {
        check: "skipped: needs the eager call (a reason)"
        if check in ("clone_outputs", "keras_file_round_trip", "mixed_float16", "mixed_bfloat16")
        else "passed"
        for check in results
    }


def test_opt_outs_need_a_known_check_and_a_reason():
    with pytest.raises(ValueError, match="needs a reason"):
        layer_test.run_layer_test(_Scale, **ARGUMENTS, skip={"mixed_float16": ""})
    with pytest.raises(ValueError, match="Unknown checks"):
        layer_test.run_layer_test(_Scale, **ARGUMENTS, skip={"mixed": "x"})


def test_a_config_that_drops_an_argument_fails():
    with pytest.raises(AssertionError, match="clone with copied weights"):
        layer_test.run_layer_test(_ForgetfulScale, {"factor": 3.0}, **ARGUMENTS)

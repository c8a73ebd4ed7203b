"""The SavedModel (with TensorFlow) and the TFLite model (with LiteRT's interpreter), loaded
in a fresh process, match Keras."""

import json
import os
import textwrap

import fixtures_train
import numpy as np
import pytest

# Clip lengths (samples): the training length and a longer, odd one.
LENGTHS = (16000, 20037)


@pytest.fixture(scope="module")
def exported_leaf(synthetic_commands_data_dir, tmp_path_factory):
    """Trains a tiny LEAF classifier, exports it, and records Keras's outputs."""
    import keras  # pylint: disable=import-outside-toplevel

    import gin  # pylint: disable=import-outside-toplevel
    from experiments import data  # pylint: disable=import-outside-toplevel
    from experiments import experiment  # pylint: disable=import-outside-toplevel
    from experiments import export  # pylint: disable=import-outside-toplevel
    from experiments import train  # pylint: disable=import-outside-toplevel

    workdir = str(tmp_path_factory.mktemp("export"))
    gin.clear_config()
    try:
        experiment.parse_gin(
            ["gin/leaf.gin", "gin/datasets/synthetic_commands.gin"],
            fixtures_train.tiny_bindings(synthetic_commands_data_dir),
        )
        task = data.load_task()
        model = train.train(task, workdir).model
        path = export.export(model, workdir, multi_label=False, tflite=True)
    finally:
        gin.clear_config()
    rng = np.random.default_rng(1)
    expected = {}
    for length in LENGTHS:
        waveforms = rng.uniform(-0.5, 0.5, (2, length)).astype(np.float32)
        probabilities = keras.ops.softmax(model(waveforms, training=False), axis=-1)
        expected[f"input_{length}"] = waveforms
        expected[f"probabilities_{length}"] = keras.ops.convert_to_numpy(probabilities)
        expected[f"features_{length}"] = keras.ops.convert_to_numpy(
            model.frontend(waveforms, training=False)
        )
    np.savez(os.path.join(workdir, "expected.npz"), **expected)
    return workdir, path


_LOAD_AND_RUN = (
    textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    workdir, path = sys.argv[1], sys.argv[2]
    assert "leaf_keras" not in sys.modules
    expected = np.load(workdir + "/expected.npz")
    loaded = tf.saved_model.load(path)
    errors = {}
    for length in LENGTHS:
        x = tf.constant(expected[f"input_{length}"])
        for signature, key in (("serving_default", "probabilities"), ("frontend", "features")):
            got = loaded.signatures[signature](waveform=x)[key].numpy()
            want = expected[f"{key}_{length}"]
            assert got.shape == want.shape, (signature, got.shape, want.shape)
            errors[f"saved_model/{signature}/{length}"] = float(
                np.max(np.abs(got - want)) / np.max(np.abs(want)))
        if length != TFLITE_LENGTH:
            continue
        interpreter = Interpreter(model_path=path + "/model.tflite")
        runner = interpreter.get_signature_runner("serving_default")
        got = runner(waveform=expected[f"input_{length}"])["probabilities"]
        want = expected[f"probabilities_{length}"]
        errors[f"tflite/{length}"] = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
    print("RESULT " + json.dumps(errors))
""")
    .replace("LENGTHS", repr(LENGTHS))
    .replace("TFLITE_LENGTH", "16000")
)


def test_saved_model_and_tflite_match_keras_in_a_fresh_process(exported_leaf):
    workdir, path = exported_leaf
    with open(os.path.join(path, "export_info.json")) as f:
        info = json.load(f)
    # LEAF converts to TFLite builtins only (fixed clip length, dynamic batch).
    assert info["tflite_op_sets"] == "builtins"
    assert info["tflite_input_shape"] == [None, 16000]
    process = fixtures_train.run_script(
        _LOAD_AND_RUN.replace(
            "workdir, path = sys.argv[1], sys.argv[2]", f"workdir, path = {workdir!r}, {path!r}"
        )
    )
    assert process.returncode == 0, fixtures_train.describe(process)
    line = [l for l in process.stdout.splitlines() if l.startswith("RESULT ")][-1]
    errors = json.loads(line[len("RESULT ") :])
    assert len(errors) == 2 * len(LENGTHS) + 1
    for name, error in errors.items():
        tolerance = 1e-4 if name.startswith("tflite") else 1e-5
        assert error <= tolerance, (name, error, errors)

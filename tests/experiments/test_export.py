"""The SavedModel (with TensorFlow) and the TFLite model (with LiteRT's interpreter), loaded
in a fresh process, match Keras."""

import json
import os
import re
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


_BAD_INPUTS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    path = sys.argv[1]
    loaded = tf.saved_model.load(path)
    rng = np.random.default_rng(0)
    clips = rng.uniform(-0.5, 0.5, (3, 16000)).astype(np.float32)
    nan = clips[:2].copy()
    nan[1, 77] = np.nan
    cases = {
        "int16": (clips[:2] * 32767).astype(np.int16),
        "short": clips[:2, :400],
        "empty_clip": clips[:2, :0],
        "empty_batch": clips[:0],
        "nan": nan,
        "inf": np.where(nan != nan, np.inf, nan).astype(np.float32),
        "rank3": clips[:2, :, None],
        "stereo": np.stack([clips[:2], clips[:2]], axis=1),
    }
    result = {"errors": {}, "rows": {}}
    for signature in ("serving_default", "frontend"):
        for name, waveform in cases.items():
            try:
                loaded.signatures[signature](waveform=waveform)
                result["errors"][f"{signature}/{name}"] = None
            except tf.errors.InvalidArgumentError as error:
                result["errors"][f"{signature}/{name}"] = str(error)
    runner = Interpreter(model_path=path + "/model.tflite").get_signature_runner()
    for batch in (1, 2, 3):
        result["rows"][f"saved_model/{batch}"] = int(
            loaded.signatures["serving_default"](waveform=clips[:batch])["probabilities"].shape[0])
        tflite = runner(waveform=clips[:batch])["probabilities"]
        result["rows"][f"tflite/{batch}"] = int(tflite.shape[0])
    result["tflite_lengths"] = {}
    for shape in ((2, 8000), (1, 32000), (3, 15999)):
        try:
            runner(waveform=np.zeros(shape, np.float32))
            result["tflite_lengths"][str(shape)] = None
        except Exception as error:  # LiteRT raises RuntimeError or ValueError
            result["tflite_lengths"][str(shape)] = f"{type(error).__name__}: {error}"
    print("RESULT " + json.dumps(result))
""")

_EXPECTED_ERRORS = {
    "int16": "divide int16 PCM by 32768",
    "short": "at least 401 samples",
    "empty_clip": "at least 401 samples",
    "empty_batch": "empty batch",
    "nan": "NaN or inf",
    "inf": "NaN or inf",
    "rank3": r"\[batch, time\].*got shape\] \[2 16000 1\]",
    "stereo": r"\[batch, time\].*got shape\] \[2 2 16000\]",
}


def test_exports_refuse_wrong_input_and_keep_the_batch(exported_leaf):
    _, path = exported_leaf
    process = fixtures_train.run_script(_BAD_INPUTS.replace("sys.argv[1]", repr(path)))
    assert process.returncode == 0, fixtures_train.describe(process)
    line = [l for l in process.stdout.splitlines() if l.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT ") :])
    for name, message in result["errors"].items():
        expected = _EXPECTED_ERRORS[name.split("/")[1]]
        assert message is not None, f"{name} was accepted"
        assert re.search(expected, message), (name, message[:300])
    assert result["rows"] == {f"{k}/{b}": b for k in ("saved_model", "tflite") for b in (1, 2, 3)}
    # A fixed-length TFLite model refuses other lengths rather than regrouping the samples.
    for shape, message in result["tflite_lengths"].items():
        assert message is not None, f"TFLite accepted {shape}"
        assert "broadcastable" in message, (shape, message[:300])


def test_padded_signature_gives_each_clip_what_it_gets_alone(exported_leaf):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    workdir, path = exported_leaf
    with open(os.path.join(path, "export_info.json")) as f:
        assert "serving_padded" in json.load(f)["signatures"]
    loaded = tf.saved_model.load(path)
    padded_serving = loaded.signatures["serving_padded"]
    rng = np.random.default_rng(3)
    lengths = [20037, 9000, 16000]  # 9000: shorter than the training clip, padded to it
    clips = [rng.uniform(-0.3, 0.3, n).astype(np.float32) * (i + 1) for i, n in enumerate(lengths)]
    batch = np.zeros((3, max(lengths)), np.float32)
    for row, clip in enumerate(clips):
        batch[row, : len(clip)] = clip
    together = padded_serving(waveform=tf.constant(batch), lengths=tf.constant(lengths))
    together = together["probabilities"].numpy()
    alone = np.concatenate(
        [
            loaded.signatures["serving_default"](waveform=tf.constant(clip[None]))[
                "probabilities"
            ].numpy()
            for clip in clips
        ]
    )
    error = np.abs(together - alone).max() / np.abs(alone).max()
    print(f"\nserving_padded vs serving_default per clip: {error:.1e}")
    assert error < 1e-5
    # The whole batch through serving_default would not give the clips' scores.
    unpadded = loaded.signatures["serving_default"](waveform=tf.constant(batch))
    assert np.abs(unpadded["probabilities"].numpy() - alone).max() > 1e-4
    for bad, message in [
        ([20037, 9000], "one entry per clip"),
        ([20037, 9000, 30000], "at most the padded batch"),
        ([20037, 9000, 100], "at least one frontend window"),
    ]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            padded_serving(waveform=tf.constant(batch), lengths=tf.constant(bad))

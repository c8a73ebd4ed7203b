"""Exports a trained classifier as a TensorFlow SavedModel and a TFLite model.

``<workdir>/export/`` holds a SavedModel with two signatures, both taking
``waveform``: float32 [batch, time] with dynamic batch and time (16 kHz for the
built-in tasks, in [-1, 1]):

- ``serving_default`` → ``{"probabilities": [batch, num_classes]}`` (softmax, or a
  sigmoid per class for multi-label tasks);
- ``frontend`` → ``{"features": [batch, frames, n_filters]}``, the frontend's output.

``<workdir>/export/model.tflite`` holds ``serving_default`` for TFLite (dynamic shapes;
resize the input before allocating tensors, or use ``get_signature_runner``), and
``export_info.json`` says which op set the conversion needed: TFLite builtins when they
suffice, otherwise builtins + SELECT_TF_OPS (the Flex delegate, included in the
``tensorflow`` pip package's interpreter but not in ``tflite-runtime``).

Example (any process, no leaf_keras import needed)::

    import tensorflow as tf
    loaded = tf.saved_model.load("workdir/export")
    probabilities = loaded.signatures["serving_default"](
        waveform=tf.zeros([2, 16000]))["probabilities"]
"""

import json
import os

from absl import logging
import gin
import keras

EXPORT_DIR = "export"
TFLITE_FILE = "model.tflite"
INFO_FILE = "export_info.json"


def _probabilities(logits, multi_label):
    return keras.ops.sigmoid(logits) if multi_label else keras.ops.softmax(logits, axis=-1)


def export_saved_model(model, path, multi_label):
    """Writes the SavedModel with ``serving_default`` and ``frontend`` signatures.

    Args:
        model: a built AudioClassifier (with a ``frontend`` attribute).
        path: output directory.
        multi_label: sigmoid instead of softmax outputs.

    Returns:
        `path`.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    if keras.backend.backend() != "tensorflow":
        raise ValueError("SavedModel export needs KERAS_BACKEND=tensorflow, got "
                         f"{keras.backend.backend()}.")
    spec = tf.TensorSpec([None, None], tf.float32, name="waveform")
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(waveform):
        logits = model(waveform, training=False)
        return {"probabilities": _probabilities(logits, multi_label)}

    archive.add_endpoint("serving_default", serve, input_signature=[spec])
    frontend = getattr(model, "frontend", None)
    if frontend is not None:

        def features(waveform):
            return {"features": frontend(waveform, training=False)}

        archive.add_endpoint("frontend", features, input_signature=[spec])
    archive.write_out(path, verbose=False)
    return path


def export_tflite(saved_model_path, tflite_path, op_sets="auto"):
    """Converts the SavedModel's ``serving_default`` signature to TFLite.

    Args:
        saved_model_path: the SavedModel directory.
        tflite_path: output file.
        op_sets: "builtins" (fail if an op is not a TFLite builtin), "select_tf_ops"
            (builtins + TensorFlow ops via the Flex delegate) or "auto" (builtins if
            possible, else select_tf_ops).

    Returns:
        The op set used: "builtins" or "select_tf_ops".
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    if op_sets not in ("auto", "builtins", "select_tf_ops"):
        raise ValueError(f"op_sets must be 'auto', 'builtins' or 'select_tf_ops', got "
                         f"{op_sets!r}.")
    attempts = ["builtins", "select_tf_ops"] if op_sets == "auto" else [op_sets]
    last_error = None
    for attempt in attempts:
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_model_path, signature_keys=["serving_default"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if attempt == "select_tf_ops":
            converter.target_spec.supported_ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        try:
            flatbuffer = converter.convert()
        except Exception as error:  # pylint: disable=broad-except
            # The converter raises ConverterError (and sometimes others) for ops that
            # are not builtins; retry with the Flex delegate.
            logging.info("TFLite conversion with %s failed: %s", attempt,
                         str(error).splitlines()[0] if str(error) else error)
            last_error = error
            continue
        with open(tflite_path, "wb") as f:
            f.write(flatbuffer)
        return attempt
    raise RuntimeError(f"TFLite conversion failed with {attempts}: {last_error}")


@gin.configurable(denylist=["model", "workdir", "multi_label", "extra_info"])
def export(model, workdir, multi_label, tflite=True, tflite_op_sets="auto", extra_info=None):
    """Exports the SavedModel (and TFLite model) to ``<workdir>/export``.

    Args:
        model: the trained, built AudioClassifier.
        workdir: the experiment's workdir.
        multi_label: sigmoid outputs instead of softmax.
        tflite: also write ``model.tflite``.
        tflite_op_sets: see `export_tflite`.
        extra_info: more entries for ``export_info.json`` (e.g. class names).

    Returns:
        The export directory.
    """
    path = os.path.join(workdir, EXPORT_DIR)
    export_saved_model(model, path, multi_label)
    info = {"saved_model": path, "signatures": ["serving_default", "frontend"],
            "output": "sigmoid" if multi_label else "softmax"}
    if tflite:
        tflite_path = os.path.join(path, TFLITE_FILE)
        info["tflite"] = tflite_path
        info["tflite_op_sets"] = export_tflite(path, tflite_path, tflite_op_sets)
    info.update(extra_info or {})
    with open(os.path.join(path, INFO_FILE), "w") as f:
        json.dump(info, f, indent=2)
    logging.info("Exported to %s (%s)", path, info)
    return path

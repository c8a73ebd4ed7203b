"""Exports a trained classifier as a TensorFlow SavedModel and a TFLite model.

``<workdir>/export/`` holds a SavedModel with two signatures, both taking
``waveform``: float32 [batch, time] with dynamic batch and time (16 kHz for the
built-in tasks, in [-1, 1]):

- ``serving_default`` → ``{"probabilities": [batch, num_classes]}`` (softmax, or a
  sigmoid per class for multi-label tasks). It first does to each clip what evaluation
  did (`preprocessing.serving_preprocessing`: pad to the training clip length, loudness
  normalization), so raw waveforms get the scores ``metrics.json`` measured;
- ``frontend`` → ``{"features": [batch, frames, n_filters]}``, the frontend's output on
  the waveform as given.

Both refuse wrong input with an InvalidArgumentError that names the problem
(`preprocessing.check_serving_waveforms`): a rank other than [batch, time], an empty batch,
clips shorter than one frontend window (401 samples for LEAF), NaN or inf samples, and
samples beyond ±2 (int16 PCM cast to float without dividing by 32768). float64 input is
refused by the signature itself (float32 only).

``model.keras`` is the trained Keras model (reload it after ``import leaf_keras``); it
takes waveforms as training fed them, after the preprocessing above.

``<workdir>/export/model.tflite`` holds ``serving_default`` for TFLite with a fixed clip
length (``export.tflite_num_samples``, 16000 by default) and a dynamic batch, converted
with TFLite builtin ops only when possible (``export_info.json`` records the op set). To
get there the model is traced with its long convolutions switched from FFTs to the direct
algorithm (TFLite has no builtin inverse FFT and its RFFT2D needs power-of-two sizes);
with a dynamic length the depthwise pooling and PCEN's strided slices would need the Flex
delegate (SELECT_TF_OPS), which the pip builds of LiteRT (``ai_edge_litert``) do not include.

Example (any process, no leaf_keras import needed)::

    import tensorflow as tf
    loaded = tf.saved_model.load("workdir/export")
    probabilities = loaded.signatures["serving_default"](
        waveform=tf.zeros([2, 16000]))["probabilities"]
"""

import contextlib
import json
import os
import tempfile

import keras
from absl import logging

import gin
import leaf_keras
from experiments.data import preprocessing as preprocessing_lib

EXPORT_DIR = "export"
TFLITE_FILE = "model.tflite"
KERAS_FILE = "model.keras"
INFO_FILE = "export_info.json"


def _probabilities(logits, multi_label):
    return keras.ops.sigmoid(logits) if multi_label else keras.ops.softmax(logits, axis=-1)


def _task_names(multi_label):
    return list(multi_label) if isinstance(multi_label, dict) else []


def _output_kinds(multi_label):
    if isinstance(multi_label, dict):
        return {name: _output_kinds(flag) for name, flag in multi_label.items()}
    return "sigmoid" if multi_label else "softmax"


def _min_samples(model):
    """The shortest clip the exported model accepts: one frontend window."""
    frontend = getattr(model, "frontend", None)
    return int(getattr(frontend, "window_size", 1) or 1)


def export_saved_model(
    model, path, multi_label, num_samples=None, preprocessing=None, check_inputs=True
):
    """Writes the SavedModel with ``serving_default`` and ``frontend`` signatures.

    Args:
        model: a built AudioClassifier (with a ``frontend`` attribute).
        path: output directory.
        multi_label: sigmoid instead of softmax outputs; {task: flag} for a multi-task
            model, whose ``serving_default`` returns {task: probabilities} and which
            gets one more signature per task, named after it.
        num_samples: fixed clip length of the signatures (None = dynamic).
        preprocessing: keyword arguments of `preprocessing.serving_preprocessing`, applied
            by ``serving_default`` before the model (None: the model alone).
        check_inputs: every signature first checks its input
            (`preprocessing.check_serving_waveforms`: rank, empty batch, clips shorter than
            a frontend window, NaN/inf, unscaled integer PCM) and fails naming the problem.
            The TFLite trace turns this off: TFLite has no builtin assertion op; with a
            fixed `num_samples` a clip of another length then fails to broadcast.

    Returns:
        `path`.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"SavedModel export needs KERAS_BACKEND=tensorflow, got {keras.backend.backend()}."
        )
    # With checks, any rank is let in so that a wrong one gets the checks' message rather
    # than the signature binder's.
    # A fixed length without checks (the TFLite trace) keeps the time axis unknown in the
    # signature: `checked` then fixes it with an op that the converter cannot fold away.
    shape = None if check_inputs and num_samples is None else [None, num_samples]
    if not check_inputs and num_samples is not None:
        shape = [None, None]
    spec = tf.TensorSpec(shape, tf.float32, name="waveform")
    archive = keras.export.ExportArchive()
    archive.track(model)
    min_samples = _min_samples(model)

    def checked(waveform):
        if check_inputs:
            return preprocessing_lib.check_serving_waveforms(waveform, min_samples)
        if num_samples is not None:
            # LiteRT's signature runner resizes the input to whatever it is given: with a
            # [None, 16000] signature a [2, 8000] batch is read as one clip. A broadcast to
            # [batch, num_samples] fails for any other length ("Output shape must be
            # broadcastable"), and only for an unknown time axis: the converter removes
            # it (and a reshape) when the signature already says 16000.
            return tf.broadcast_to(waveform, tf.stack([tf.shape(waveform)[0], num_samples]))
        return waveform

    def logits_of(waveform):
        waveform = checked(waveform)
        if preprocessing:
            waveform = preprocessing_lib.serving_preprocessing(waveform, **preprocessing)
        return model(waveform, training=False)

    if isinstance(multi_label, dict):
        # Multi-task: every task's probabilities, and one signature per task.
        def serve(waveform):
            logits = logits_of(waveform)
            return {name: _probabilities(logits[name], flag) for name, flag in multi_label.items()}

        for name, flag in multi_label.items():

            def serve_task(waveform, name=name, flag=flag):
                return {"probabilities": _probabilities(logits_of(waveform)[name], flag)}

            archive.add_endpoint(name, serve_task, input_signature=[spec])
    else:

        def serve(waveform):
            return {"probabilities": _probabilities(logits_of(waveform), multi_label)}

    archive.add_endpoint("serving_default", serve, input_signature=[spec])
    frontend = getattr(model, "frontend", None)
    if frontend is not None:

        def features(waveform):
            return {"features": frontend(checked(waveform), training=False)}

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
        raise ValueError(f"op_sets must be 'auto', 'builtins' or 'select_tf_ops', got {op_sets!r}.")
    attempts = ["builtins", "select_tf_ops"] if op_sets == "auto" else [op_sets]
    last_error = None
    for attempt in attempts:
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_model_path, signature_keys=["serving_default"]
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if attempt == "select_tf_ops":
            converter.target_spec.supported_ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        try:
            flatbuffer = converter.convert()
        except Exception as error:  # pylint: disable=broad-except
            # The converter raises ConverterError (and sometimes others) for ops that
            # are not builtins; retry with the Flex delegate.
            logging.info(
                "TFLite conversion with %s failed: %s",
                attempt,
                str(error).splitlines()[0] if str(error) else error,
            )
            last_error = error
            continue
        with open(tflite_path, "wb") as f:
            f.write(flatbuffer)
        return attempt
    raise RuntimeError(f"TFLite conversion failed with {attempts}: {last_error}")


@contextlib.contextmanager
def _direct_convolutions(model):
    """Temporarily makes the model's FFT-based filterbanks use direct convolutions.

    leaf_keras computes LEAF's 401-tap convolutions with FFTs by default. TFLite's builtin
    RFFT2D only accepts power-of-two lengths (the FFT size follows the clip length) and
    it has no builtin inverse FFT, while a direct convolution is a builtin CONV_2D. Inside
    this context every exact filterbank stage runs its layers engine and every convolution
    its direct algorithm: same weights, same function, so a model traced here converts
    with builtin ops. (Keras has no public recursive walk over sub-layers, hence
    ``_flatten_layers``.)
    """
    switched = []
    for layer in model._flatten_layers(include_self=True, recursive=True):  # pylint: disable=protected-access
        if isinstance(layer, leaf_keras.Filterbank) and layer.engine == "fused":
            switched.append((layer, "engine", layer.engine))
            layer.engine = "layers"
        if getattr(layer, "implementation", None) in ("fft", "overlap_add"):
            switched.append((layer, "implementation", layer.implementation))
            layer.implementation = "direct"
    try:
        yield len(switched)
    finally:
        for layer, attribute, value in switched:
            setattr(layer, attribute, value)


@gin.configurable(denylist=["model", "workdir", "multi_label", "extra_info", "preprocessing"])
def export(
    model,
    workdir,
    multi_label,
    tflite=True,
    tflite_op_sets="auto",
    tflite_num_samples=16000,
    extra_info=None,
    preprocessing=None,
):
    """Exports the SavedModel (and TFLite model) to ``<workdir>/export``.

    Args:
        model: the trained, built AudioClassifier.
        workdir: the experiment's workdir.
        multi_label: sigmoid outputs instead of softmax.
        tflite: also write ``model.tflite``.
        tflite_op_sets: see `export_tflite`.
        tflite_num_samples: clip length of the TFLite model's input (the batch stays
            dynamic). A fixed length lets every op of LEAF convert to a TFLite builtin;
            with a dynamic length the depthwise pooling and PCEN's strided slices would
            need the Flex delegate, which the tensorflow 2.21 pip interpreter lacks.
        extra_info: more entries for ``export_info.json`` (e.g. class names).
        preprocessing: what the serving signatures do to a clip before the model, as
            keyword arguments of `preprocessing.serving_preprocessing` (the task's
            ``eval_preprocessing``); None: nothing.

    Returns:
        The export directory.
    """
    path = os.path.join(workdir, EXPORT_DIR)
    export_saved_model(model, path, multi_label, preprocessing=preprocessing)
    keras_path = os.path.join(path, KERAS_FILE)
    model.save(keras_path)
    info = {
        "saved_model": path,
        "signatures": ["serving_default", *_task_names(multi_label), "frontend"],
        "output": _output_kinds(multi_label),
        "preprocessing": dict(preprocessing or {}),
        "keras": keras_path,
    }
    if tflite:
        tflite_path = os.path.join(path, TFLITE_FILE)
        info["tflite"] = tflite_path
        info["tflite_input_shape"] = [None, tflite_num_samples]
        with tempfile.TemporaryDirectory() as temporary, _direct_convolutions(model):
            direct = export_saved_model(
                model,
                os.path.join(temporary, "direct"),
                multi_label,
                num_samples=tflite_num_samples,
                preprocessing=preprocessing,
                check_inputs=False,
            )
            info["tflite_op_sets"] = export_tflite(direct, tflite_path, tflite_op_sets)
    info.update(extra_info or {})
    with open(os.path.join(path, INFO_FILE), "w") as f:
        json.dump(info, f, indent=2)
    logging.info("Exported to %s", path)
    return path

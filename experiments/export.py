"""Exports a trained classifier as a TensorFlow SavedModel, TFLite models and ONNX.

``<workdir>/export/`` holds a SavedModel with two signatures, both taking
``waveform``: float32 [batch, time] with dynamic batch and time (16 kHz for the
built-in tasks, in [-1, 1]):

- ``serving_default`` → ``{"probabilities": [batch, num_classes]}`` (softmax, or a
  sigmoid per class for multi-label tasks). It first does to each clip what evaluation
  did (`preprocessing.serving_preprocessing`: pad to the training clip length, loudness
  normalization), so raw waveforms get the scores ``metrics.json`` measured;
- ``frontend`` → ``{"features": [batch, frames, n_filters]}``, the frontend's output on
  the waveform as given;
- ``serving_padded`` (``waveform`` and ``lengths``: int32 [batch]) → what
  ``serving_default`` gives each clip alone, for a batch of clips of different lengths
  zero-padded at the end (each clip normalized by its own samples, the padding masked).
  Written when the model takes ``lengths`` (not with PANN, EfficientNet or the
  Transformer); it also refuses lengths that are not one per clip,
  beyond the time axis or shorter than a frontend window.

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
algorithm (TFLite has no builtin inverse FFT and its RFFT2D needs power-of-two sizes).
Next to it (``export.tflite_variants``, ``export.tflite_dynamic_length``):

- ``model_float16.tflite``: the same model with float16 weights and constants (float32
  compute); ``model_dynamic_range.tflite``: the weights of the large matmuls and
  convolutions in int8, activations quantized on the fly. Measured against Keras on a small
  trained LEAF classifier (tests/experiments/test_export_litert.py, 1 s clips): float16
  9e-4 relative on the features, 4e-4 on the logits; dynamic range 2e-3 on the logits, the
  features unchanged (the frontend stays float32: its kernels are computed from the Gabor
  parameters at run time). Sizes for the quickstart model (benchmarks/benchmark_exports.py):
  model.tflite 1.39 MB, float16 0.72 MB (0.52), dynamic range 1.03 MB (0.74: the ConvNet's
  weights; PCEN's folded smoother matrices stay float32).
- ``model_dynamic.tflite``: [batch, time] with both dynamic, builtin ops only, the same
  probabilities as the SavedModel (1e-4). A batched trace with both dimensions unknown
  does not convert correctly (the converter drops a reshape of the pooling's einsum and
  returns [batch * frames, classes], see `export_dynamic_length_saved_model`), so this
  model runs the clips one after the other in a builtin WHILE loop, each a batch of one:
  prefer ``model.tflite`` for batches of fixed-length clips. Like ``model.tflite`` it checks
  nothing (TFLite has no assertion op). (PCEN's smoother once needed a strided slice with a
  new axis, which TFLite's builtin STRIDED_SLICE lacks for an unknown length:
  `leaf_keras.ops.linear_recurrence` uses ``expand_dims`` instead.)
- The band-limited engine has no builtin form (complex FFTs): a band-limited model's TFLite
  files hold its exact-engine twin (`experiments.exact_twin`: same weights,
  ``filterbank="fused"``), with a warning and ``exact_twin`` in ``export_info.json`` (the
  twin's max relative difference from the model on a 1-s probe: 2.5e-5 on the logits of a
  small classifier at initialization). ``tflite_op_sets="select_tf_ops"`` converts the model
  itself with Flex ops instead (the Flex delegate is not in the pip LiteRT).

``<workdir>/export/model.onnx`` (``export.onnx``) is the classifier for ONNX runtimes,
``waveform`` [batch, time] → ``logits`` with both axes dynamic, real-valued ops of opset 17
(`experiments.export_onnx`; a band-limited model as its exact twin, like TFLite). It takes
waveforms as ``model.keras`` does: no serving preprocessing, no softmax, no input checks.

The ``frontend`` signature is not in the TFLite files (`export_tflite` converts it when
asked with ``signature_keys``).

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
from experiments import exact_twin as exact_twin_lib
from experiments.data import preprocessing as preprocessing_lib

EXPORT_DIR = "export"
TFLITE_FILE = "model.tflite"
ONNX_FILE = "model.onnx"
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


PADDED_SIGNATURE = "serving_padded"


def _takes_lengths(model):
    """Whether the model computes each clip of a padded batch as alone (`lengths`): not
    with PANN, EfficientNet or the Transformer, which refuse."""
    num_samples = max(2 * _min_samples(model), 1600)
    try:
        model(keras.ops.zeros((1, num_samples)), lengths=[num_samples], training=False)
    except ValueError as error:
        logging.info("No %s signature: %s", PADDED_SIGNATURE, error)
        return False
    return True


def _checked_lengths(waveform, lengths, min_samples):
    """`(waveform, lengths)` after in-graph checks naming what is wrong with `lengths`."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    shape = tf.shape(waveform)
    checks = [
        tf.debugging.assert_equal(
            tf.shape(lengths)[0],
            shape[0],
            message="lengths must have one entry per clip of waveform ([batch])",
        ),
        tf.debugging.assert_less_equal(
            lengths,
            shape[1],
            message="lengths must be at most the padded batch's time axis",
        ),
        tf.debugging.assert_greater_equal(
            lengths,
            tf.cast(min_samples, tf.int32),
            message=f"lengths must be at least one frontend window ({min_samples} samples)",
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(waveform), tf.identity(lengths)


def export_saved_model(
    model, path, multi_label, num_samples=None, preprocessing=None, check_inputs=True, padded=None
):
    """Writes the SavedModel with ``serving_default`` and ``frontend`` signatures, and
    ``serving_padded`` when the model takes `lengths`.

    ``serving_padded(waveform, lengths)`` takes a batch of clips zero-padded at the end
    (``lengths``: int32 [batch], samples) and returns what ``serving_default`` returns for
    each clip alone: the preprocessing pads and normalizes each clip by its own samples
    (`preprocessing.padded_serving_preprocessing`) and the model masks the padding.

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
        padded: whether to write ``serving_padded`` (only with `check_inputs`); None:
            when the model takes `lengths` (`_takes_lengths` runs it once to see).

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
    if padded is None:
        padded = check_inputs and _takes_lengths(model)
    if check_inputs and padded:

        def serve_padded(waveform, lengths):
            waveform, lengths = _checked_lengths(checked(waveform), lengths, min_samples)
            if preprocessing:
                waveform, lengths = preprocessing_lib.padded_serving_preprocessing(
                    waveform, lengths, **preprocessing
                )
            logits = model(waveform, lengths=lengths, training=False)
            if isinstance(multi_label, dict):
                return {
                    name: _probabilities(logits[name], flag) for name, flag in multi_label.items()
                }
            return {"probabilities": _probabilities(logits, multi_label)}

        lengths_spec = tf.TensorSpec([None], tf.int32, name="lengths")
        archive.add_endpoint(PADDED_SIGNATURE, serve_padded, input_signature=[spec, lengths_spec])
    frontend = getattr(model, "frontend", None)
    if frontend is not None:

        def features(waveform):
            return {"features": frontend(checked(waveform), training=False)}

        archive.add_endpoint("frontend", features, input_signature=[spec])
    archive.write_out(path, verbose=False)
    return path


QUANTIZATIONS = (None, "float16", "dynamic_range")


def export_tflite(
    saved_model_path,
    tflite_path,
    op_sets="auto",
    quantization=None,
    signature_keys=("serving_default",),
):
    """Converts signatures of a SavedModel (``serving_default`` by default) to TFLite.

    Args:
        saved_model_path: the SavedModel directory.
        tflite_path: output file.
        op_sets: "builtins" (fail if an op is not a TFLite builtin), "select_tf_ops"
            (builtins + TensorFlow ops via the Flex delegate) or "auto" (builtins if
            possible, else select_tf_ops).
        quantization: None (float32), "float16" (weights stored as float16, dequantized
            to float32 when the model is loaded: about half the size, float32 compute) or
            "dynamic_range" (weights of the matmuls and convolutions with more than 1024
            elements stored as int8, activations quantized on the fly: about a quarter of
            those weights' size, int8 compute in those ops).
        signature_keys: the signatures of the SavedModel to convert (all in one file).

    Returns:
        The op set used: "builtins" or "select_tf_ops".

    Raises:
        ValueError: for an unknown `op_sets` or `quantization`.
        RuntimeError: if every op set fails to convert.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    if op_sets not in ("auto", "builtins", "select_tf_ops"):
        raise ValueError(f"op_sets must be 'auto', 'builtins' or 'select_tf_ops', got {op_sets!r}.")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}.")
    attempts = ["builtins", "select_tf_ops"] if op_sets == "auto" else [op_sets]
    last_error = None
    for attempt in attempts:
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_model_path, signature_keys=list(signature_keys)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if attempt == "select_tf_ops":
            converter.target_spec.supported_ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        if quantization is not None:
            # Optimize.DEFAULT without a representative dataset is post-training
            # quantization of the weights only; supported_types float16 makes it float16.
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if quantization == "float16":
                converter.target_spec.supported_types = [tf.float16]
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


def export_dynamic_length_saved_model(
    model, path, multi_label, preprocessing=None, probe_samples=16000
):
    """Writes a SavedModel whose ``serving_default`` takes [batch, time], both dynamic,
    and runs the model clip by clip, for a builtins-only TFLite conversion.

    The TFLite converter lowers a batched trace with two unknown dimensions wrongly: the
    einsum of LEAF's block pooling (``bfkc,kc->bfc``), with batch and frames unknown,
    becomes a batched matmul whose result is transposed to [batch * frames, 1, channels]
    without its reshape, and the model then returns [batch * frames, classes] (no error,
    a wrong answer). With a batch of 1 the same trace converts exactly. So the signature
    maps the model over the clips (`tf.map_fn`, a builtin WHILE loop; its tensor lists
    lower to builtins because each clip's output shape is static), each clip a batch of
    one with an unknown length. Call it under `_direct_convolutions`.

    Args:
        model: a built AudioClassifier.
        path: output directory.
        multi_label: as in `export_saved_model`.
        preprocessing: as in `export_saved_model`, applied to each clip.
        probe_samples: the length of the zero clip run once, eagerly, to read the shapes
            of the outputs (the loop needs them static); any length the model accepts.

    Returns:
        `path`.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    def probabilities_of_clips(waveform):
        if preprocessing:
            waveform = preprocessing_lib.serving_preprocessing(waveform, **preprocessing)
        logits = model(waveform, training=False)
        if isinstance(multi_label, dict):
            return {name: _probabilities(logits[name], flag) for name, flag in multi_label.items()}
        return {"probabilities": _probabilities(logits, multi_label)}

    # The loop's outputs need static shapes: one eager call on a zero clip.
    probe = probabilities_of_clips(tf.zeros([1, probe_samples], tf.float32))
    output_signature = {
        name: tf.TensorSpec(value.shape[1:], tf.float32) for name, value in probe.items()
    }

    def serve(waveform):
        def one_clip(clip):
            # A batch of one; expand_dims, since a `[None]` slice is not a TFLite builtin.
            outputs = probabilities_of_clips(tf.expand_dims(clip, 0))
            return {name: value[0] for name, value in outputs.items()}

        return tf.map_fn(one_clip, waveform, fn_output_signature=output_signature)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        serve,
        input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform")],
    )
    archive.write_out(path, verbose=False)
    return path


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


def _check_tflite_arguments(op_sets, num_samples, variants):
    if op_sets not in ("auto", "builtins", "select_tf_ops"):
        raise ValueError(
            f"tflite_op_sets must be 'auto', 'builtins' or 'select_tf_ops', got {op_sets!r}."
        )
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(
            "tflite_num_samples must be a positive int (the fixed clip length of model.tflite; "
            f"model_dynamic.tflite takes any length), got {num_samples!r}."
        )
    if isinstance(variants, str):
        raise ValueError(f"tflite_variants must be a list of names, got the string {variants!r}.")
    variants = tuple(variants or ())
    unknown = [v for v in variants if v not in QUANTIZATIONS[1:]]
    if unknown or len(set(variants)) != len(variants):
        raise ValueError(
            f"tflite_variants must be distinct names among {QUANTIZATIONS[1:]}, got {variants!r}."
        )
    return variants


def variant_file(variant):
    """The file name of a TFLite variant: ``model_float16.tflite``, ``model_dynamic.tflite``."""
    return TFLITE_FILE.replace(".tflite", f"_{variant}.tflite")


def _export_tflite_files(
    model, path, multi_label, op_sets, num_samples, dynamic_length, variants, preprocessing
):
    """Writes the TFLite files of `export` for `model` into `path`; returns their
    ``export_info`` entries."""
    info = {"tflite_input_shape": [None, num_samples], "tflite_variants": {}}

    def entry(file_path, op_sets_used):
        return {"path": file_path, "op_sets": op_sets_used, "bytes": os.path.getsize(file_path)}

    with tempfile.TemporaryDirectory() as temporary, _direct_convolutions(model):
        direct = export_saved_model(
            model,
            os.path.join(temporary, "direct"),
            multi_label,
            num_samples=num_samples,
            preprocessing=preprocessing,
            check_inputs=False,
        )
        tflite_path = os.path.join(path, TFLITE_FILE)
        used = export_tflite(direct, tflite_path, op_sets)
        info.update(
            tflite=tflite_path, tflite_op_sets=used, tflite_bytes=os.path.getsize(tflite_path)
        )
        for variant in variants:
            variant_path = os.path.join(path, variant_file(variant))
            used = export_tflite(direct, variant_path, op_sets, quantization=variant)
            info["tflite_variants"][variant] = entry(variant_path, used)
        if dynamic_length:
            dynamic = export_dynamic_length_saved_model(
                model,
                os.path.join(temporary, "dynamic"),
                multi_label,
                preprocessing=preprocessing,
                probe_samples=num_samples,
            )
            dynamic_path = os.path.join(path, variant_file("dynamic"))
            used = export_tflite(dynamic, dynamic_path, op_sets)
            info["tflite_dynamic"] = {"input_shape": [None, None], **entry(dynamic_path, used)}
    return info


def _export_onnx_file(model, path, required):
    """Writes ``model.onnx`` into `path`; returns its ``export_info`` entries. Unless
    `required`, a model that does not convert gets a warning and ``onnx_error``."""
    from experiments import export_onnx  # pylint: disable=import-outside-toplevel

    onnx_path = os.path.join(path, ONNX_FILE)
    try:
        onnx_info = export_onnx.export_onnx(model, onnx_path)
    except (ValueError, RuntimeError) as error:
        if required:
            raise
        logging.warning("No %s: %s", ONNX_FILE, error)
        return {"onnx_error": str(error)}
    onnx_info["bytes"] = os.path.getsize(onnx_path)
    return {"onnx": onnx_info}


@gin.configurable(denylist=["model", "workdir", "multi_label", "extra_info", "preprocessing"])
def export(
    model,
    workdir,
    multi_label,
    tflite=True,
    tflite_op_sets="auto",
    tflite_num_samples=16000,
    tflite_dynamic_length=True,
    tflite_variants=("float16", "dynamic_range"),
    onnx="auto",
    extra_info=None,
    preprocessing=None,
):
    """Exports the SavedModel (and TFLite and ONNX models) to ``<workdir>/export``.

    Args:
        model: the trained, built AudioClassifier.
        workdir: the experiment's workdir.
        multi_label: sigmoid outputs instead of softmax.
        tflite: also write ``model.tflite`` (and the files below).
        tflite_op_sets: see `export_tflite`.
        tflite_num_samples: clip length of ``model.tflite``'s input (the batch stays
            dynamic; the whole batch runs at once).
        tflite_dynamic_length: also write ``model_dynamic.tflite``, whose input is
            [batch, time] with both dynamic, builtin ops only; it runs the clips one after
            the other in a WHILE loop (see `export_dynamic_length_saved_model`).
        tflite_variants: quantized copies of ``model.tflite`` to write, among "float16"
            (``model_float16.tflite``) and "dynamic_range" (``model_dynamic_range.tflite``);
            see `export_tflite`.
        onnx: write ``model.onnx`` (`experiments.export_onnx`: waveform → logits, dynamic
            batch and time): True (a model that does not convert raises), "auto" (it logs a
            warning and records ``onnx_error`` in ``export_info.json``) or False.
        extra_info: more entries for ``export_info.json`` (e.g. class names).
        preprocessing: what the serving signatures do to a clip before the model, as
            keyword arguments of `preprocessing.serving_preprocessing` (the task's
            ``eval_preprocessing``); None: nothing.

    Returns:
        The export directory.

    Raises:
        ValueError: for a `tflite_num_samples` that is not a positive int, an unknown
            variant, or an ``onnx`` that is not True, False or "auto"; with ``onnx=True``,
            a model that does not convert to ONNX.
    """
    if onnx not in (True, False, "auto"):
        raise ValueError(f"onnx must be True, False or 'auto', got {onnx!r}.")
    if tflite:
        tflite_variants = _check_tflite_arguments(
            tflite_op_sets, tflite_num_samples, tflite_variants
        )
    path = os.path.join(workdir, EXPORT_DIR)
    padded = _takes_lengths(model)
    export_saved_model(model, path, multi_label, preprocessing=preprocessing, padded=padded)
    keras_path = os.path.join(path, KERAS_FILE)
    model.save(keras_path)
    info = {
        "saved_model": path,
        "signatures": ["serving_default", *_task_names(multi_label), "frontend"]
        + ([PADDED_SIGNATURE] if padded else []),
        "output": _output_kinds(multi_label),
        "preprocessing": dict(preprocessing or {}),
        "keras": keras_path,
    }
    # A band-limited model has no TFLite-builtin or ONNX form: those files hold its twin.
    deployed = model
    if tflite or onnx:
        deployed, twin_error = exact_twin_lib.deployable(model, "TFLite and ONNX export")
        if deployed is not model:
            info["exact_twin"] = exact_twin_lib.description(twin_error)
    if tflite:
        info.update(
            _export_tflite_files(
                model if tflite_op_sets == "select_tf_ops" else deployed,
                path,
                multi_label,
                tflite_op_sets,
                tflite_num_samples,
                tflite_dynamic_length,
                tflite_variants,
                preprocessing,
            )
        )
    if onnx:
        info.update(_export_onnx_file(deployed, path, required=onnx is True))
    info.update(extra_info or {})
    with open(os.path.join(path, INFO_FILE), "w") as f:
        json.dump(info, f, indent=2)
    logging.info("Exported to %s", path)
    return path

"""Exports a trained classifier, or its frontend, as an ONNX model.

`export_onnx` writes one ONNX file of a built `leaf_keras.AudioClassifier`:

- ``part="classifier"``: ``waveform`` float32 [batch, time] → ``logits``
  [batch, num_classes] (the model's raw outputs: no softmax, no serving preprocessing;
  a multi-task model has one output per task, ``logits_<task>``);
- ``part="frontend"``: ``waveform`` → ``features`` [batch, frames, n_filters], the
  output of ``model.frontend``.

The batch and time axes stay dynamic: the input's dims are named ``batch`` and ``time``.
Clips must still be at least one frontend window long (401 samples for LEAF at 16 kHz);
unlike the SavedModel of `experiments.export`, the ONNX graph does not check its input.

Opset: 17 by default (`DEFAULT_OPSET`); ``opset`` may pick any of 13 to 18. tf2onnx 1.17
converts up to opset 18, and below 12 it leaves the ``Einsum`` of LEAF's Gaussian pooling as a
TensorFlow op. 17 is the newest opset that onnxruntime has run since 1.12 (2022), so the file
loads in older runtimes too; the graph is the same at 13 to 18 but for the form of a few
reductions.

Conversion: Keras 3's ``model.export(path, format="onnx")`` (which on the TensorFlow
backend traces the model and converts it with tf2onnx), else
``tf2onnx.convert.from_function`` on a `tf.function` with a [None, None] float32 input
signature. Either way the model is traced inside `experiments.export._direct_convolutions`,
which makes LEAF's 401-tap convolutions direct instead of FFT-based (same weights, same
function): tf2onnx converts TensorFlow's FFTs only when a ComplexAbs follows them and has
no complex tensors, so LEAF's FFT correlation (complex products and ``Real``/``Imag``)
would be left as TensorFlow ops that no ONNX runtime loads. Direct convolutions become
plain ONNX ``Conv`` nodes. The written graph is checked to hold standard real-valued ONNX
ops only (no ``DFT``/``STFT``, no complex tensors); anything else raises ValueError.

The band-limited LEAF engine (``Leaf(filterbank="band_limited")``) has no ONNX form: it
computes block spectra with RFFT/FFT whose real and imaginary parts it reads, which tf2onnx
cannot convert, and it has no direct-convolution form. A band-limited model is exported as
its exact-engine twin (`experiments.exact_twin`: same weights, ``filterbank="fused"``), with
a warning; ``engine`` in the returned dict gives the twin's measured difference (max
relative, on a 1-s probe).

Needs ``KERAS_BACKEND=tensorflow`` and the ``onnx`` and ``tf2onnx`` packages; the result
runs with ``onnxruntime`` alone::

    import onnxruntime
    session = onnxruntime.InferenceSession("model.onnx")
    logits = session.run(["logits"], {"waveform": waveforms})[0]
"""

import os
import tempfile
import warnings

import keras
from absl import logging

from experiments import exact_twin
from experiments.export import _direct_convolutions

DEFAULT_OPSET = 17
# tf2onnx 1.17 supports opsets up to 18; below 12 it cannot convert Einsum.
OPSETS = range(13, 19)
PARTS = ("classifier", "frontend")
INPUT_NAME = "waveform"
# Ops that would mean a complex-valued or spectral graph.
FORBIDDEN_OPS = ("DFT", "STFT")
_COMPLEX_TYPES = ("COMPLEX64", "COMPLEX128")


def _exported_module(model, part):
    """The Keras layer that the ONNX file computes, after checking `model` and `part`."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}.")
    if not getattr(model, "built", False):
        raise ValueError("export_onnx needs a built model: call it on a batch of waveforms first.")
    frontend = getattr(model, "frontend", None)
    if frontend is None:
        raise ValueError(
            "export_onnx exports waveform models: the model has no frontend "
            "(`AudioClassifier(frontend=None)` takes features, not waveforms)."
        )
    module = model if part == "classifier" else frontend
    compute_dtype = getattr(getattr(module, "dtype_policy", None), "compute_dtype", "float32")
    if compute_dtype != "float32":
        raise ValueError(
            f"export_onnx needs a float32 model, got the dtype policy {compute_dtype!r}."
        )
    return module


def _convert(module, path, opset, spec):
    """Converts `module` to `path`; returns which converter did it."""
    try:
        with warnings.catch_warnings():
            # Keras's tf2onnx patch for numpy 2 probes `np.object`, which warns.
            warnings.filterwarnings("ignore", message=".*np.object", category=FutureWarning)
            module.export(
                path, format="onnx", input_signature=[spec], opset_version=opset, verbose=False
            )
        return "keras"
    except Exception as error:  # pylint: disable=broad-except
        # Older Keras releases lack format="onnx"; some models cannot be traced by its
        # ExportArchive. tf2onnx on a plain tf.function is what it does underneath.
        logging.info("keras ONNX export failed (%s); using tf2onnx.convert.from_function.", error)
        keras_error = error
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import tf2onnx  # pylint: disable=g-import-not-at-top

    @tf.function(input_signature=[spec])
    def forward(waveform):
        return module(waveform, training=False)

    try:
        tf2onnx.convert.from_function(
            forward, input_signature=[spec], opset=opset, output_path=path
        )
    except Exception as error:  # pylint: disable=broad-except
        raise RuntimeError(
            f"ONNX conversion failed: keras export: {keras_error}; tf2onnx: {error}"
        ) from error
    return "tf2onnx"


def _unsupported_ops(graph, opset):
    """Op types of `graph` that are not standard ONNX ops of `opset` (ops that tf2onnx left
    as TensorFlow ops, or ops of other domains)."""
    import onnx  # pylint: disable=g-import-not-at-top

    return sorted(
        {
            node.op_type
            for node in graph.node
            if (node.domain or "") not in ("", "ai.onnx")
            or not onnx.defs.has(node.op_type, opset, "")
        }
    )


def _complex_tensors(model):
    """Names of the tensors of `model` with a complex element type."""
    import onnx  # pylint: disable=g-import-not-at-top

    complex_types = {getattr(onnx.TensorProto, name) for name in _COMPLEX_TYPES}
    inferred = onnx.shape_inference.infer_shapes(model).graph
    values = list(inferred.input) + list(inferred.output) + list(inferred.value_info)
    names = [v.name for v in values if v.type.tensor_type.elem_type in complex_types]
    names += [t.name for t in inferred.initializer if t.data_type in complex_types]
    return sorted(names)


def _rename(model, part, output_names):
    """Names the input's dims ``batch``/``time`` and the outputs after `part`."""
    (waveform,) = model.graph.input
    for dim, name in zip(waveform.type.tensor_type.shape.dim, ("batch", "time")):
        dim.ClearField("dim_value")
        dim.dim_param = name
    renames = {}
    for output, name in zip(model.graph.output, output_names):
        renames[output.name] = name
        output.name = name
        dims = output.type.tensor_type.shape.dim
        for dim, dim_name in zip(dims, ("batch", "frames") if part == "frontend" else ("batch",)):
            if not dim.dim_value:
                dim.dim_param = dim_name
    for node in model.graph.node:
        for index, name in enumerate(node.output):
            if name in renames:
                node.output[index] = renames[name]
        for index, name in enumerate(node.input):
            if name in renames:
                node.input[index] = renames[name]


def _output_names(model, part):
    if part == "frontend":
        return ["features"]
    num_outputs = getattr(model, "num_outputs", None)
    if isinstance(num_outputs, dict):
        # tf.nest (and so the converted outputs) orders a dict by its sorted keys.
        return [f"logits_{task}" for task in sorted(num_outputs)]
    return ["logits"]


def export_onnx(model, path, part="classifier", opset=DEFAULT_OPSET):
    """Writes an ONNX model of `model` (or of its frontend) with dynamic batch and time.

    Args:
        model: a built `leaf_keras.AudioClassifier` with a waveform frontend.
        path: the output file (``.onnx``); its folder is created.
        part: "classifier" (waveform → logits) or "frontend" (waveform → features
            [batch, frames, n_filters]).
        opset: the ONNX opset of the file, 13 to 18 (`DEFAULT_OPSET`, 17).

    Returns:
        A dict: ``path``, ``part``, ``opset`` (read back from the file), ``op_types`` (the
        sorted op types of the graph), ``inputs`` and ``outputs`` ({name: dims}, a dim
        being an int or its symbolic name), ``exporter`` ("keras" or "tf2onnx"),
        ``direct_convolutions`` (how many layer settings were switched for the trace) and,
        for a band-limited model, ``engine`` (the exact twin's filterbank and its
        ``max_relative_difference`` from the model).

    Raises:
        ValueError: on a non-TensorFlow backend, an unknown `part`, an unbuilt model, a
            model without frontend, a non-float32 model, an opset
            outside 13-18, or a converted graph with non-standard, FFT or complex ops.
        RuntimeError: if both converters fail.
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "ONNX export traces the model with TensorFlow (tf2onnx): it needs "
            f"KERAS_BACKEND=tensorflow, got {keras.backend.backend()!r}."
        )
    import onnx  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    _exported_module(model, part)  # Checks `model` and `part` before anything is converted.
    original = model
    model, twin_error = exact_twin.deployable(model, "ONNX export")
    module = _exported_module(model, part)
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise ValueError(
            f"opset must be an int from {OPSETS.start} to {OPSETS.stop - 1} (what tf2onnx 1.17 "
            f"converts LEAF to), got {opset!r}."
        )
    path = os.fspath(path)
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    spec = tf.TensorSpec([None, None], tf.float32, name=INPUT_NAME)
    # Converted into a temporary folder: `path` is only written once the graph passed.
    with tempfile.TemporaryDirectory() as temporary:
        converted = os.path.join(temporary, "model.onnx")
        with _direct_convolutions(module) as switched:
            exporter = _convert(module, converted, opset, spec)
        onnx_model = onnx.load(converted)
    unsupported = _unsupported_ops(onnx_model.graph, opset)
    if unsupported:
        raise ValueError(
            f"The converted graph holds ops that are not standard ONNX ops of opset {opset}: "
            f"{unsupported} (TensorFlow ops that tf2onnx could not convert, e.g. complex FFT "
            "arithmetic)."
        )
    op_types = sorted({node.op_type for node in onnx_model.graph.node})
    forbidden = sorted(set(op_types) & set(FORBIDDEN_OPS))
    complex_names = _complex_tensors(onnx_model)
    if forbidden or complex_names:
        raise ValueError(
            f"The converted graph is not real-valued: ops {forbidden}, complex tensors "
            f"{complex_names[:5]}."
        )
    names = _output_names(model, part)
    if len(names) != len(onnx_model.graph.output):
        names = [output.name for output in onnx_model.graph.output]
    _rename(onnx_model, part, names)
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, path)

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    opsets = {entry.domain or "": entry.version for entry in onnx_model.opset_import}
    info = {
        "path": path,
        "part": part,
        "opset": opsets.get("", opsets.get("ai.onnx", opset)),
        "op_types": op_types,
        "inputs": {v.name: dims(v) for v in onnx_model.graph.input},
        "outputs": {v.name: dims(v) for v in onnx_model.graph.output},
        "exporter": exporter,
        "direct_convolutions": switched,
    }
    if model is not original:
        info["engine"] = exact_twin.description(twin_error)
    logging.info("Exported the %s to ONNX: %s", part, info)
    return info

"""The TFLite exports of `experiments.export`, run with LiteRT's interpreter (ai_edge_litert)
and compared with Keras: the float16 and dynamic-range variants (error and size), the
dynamic-length model, the streaming step; and the ``model.onnx`` it writes beside them.
Run with ``-s`` to see the measured figures."""

import json
import os

import numpy as np
import pytest

# Measured on this fixture (1 s clips, trained for a few steps; the printed figures):
# float16 9e-4 on the features, 4e-4 on the logits, 8e-5 on the probabilities; dynamic
# range 2.3e-3 on the logits, 4e-4 on the probabilities, the features unchanged (it leaves
# the frontend in float32). The bounds leave a margin of about 3x over those figures.
FLOAT32_TOLERANCE = 1e-4
TOLERANCES = {
    None: {"features": 1e-4, "logits": 1e-4, "probabilities": 1e-4},
    "float16": {"features": 3e-3, "logits": 1.5e-3, "probabilities": 3e-4},
    "dynamic_range": {"features": 1e-4, "logits": 1e-2, "probabilities": 1.5e-3},
}
PREPROCESSING = {"min_length": 16000, "loudness_normalize": True}
NUM_CLASSES = 5


def _relative_error(got, want):
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def _centered_log(probabilities):
    """The logits up to a constant per clip, from softmax probabilities."""
    log = np.log(np.asarray(probabilities, np.float64))
    return log - log.mean(axis=-1, keepdims=True)


def _runner(path, signature="serving_default"):
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel

    return Interpreter(model_path=path).get_signature_runner(signature)


@pytest.fixture(scope="module")
def trained():
    """A small LEAF classifier, trained for a few steps so that no weight is at its init.

    ConvNet([16, 32]): its second convolution (4608 weights) and the head are above the
    1024 elements below which dynamic-range quantization keeps float32 weights.
    """
    import keras  # pylint: disable=import-outside-toplevel

    import leaf_keras  # pylint: disable=import-outside-toplevel

    keras.utils.set_random_seed(0)
    model = leaf_keras.AudioClassifier(
        num_outputs=NUM_CLASSES,
        frontend=leaf_keras.Leaf(n_filters=8, filterbank="fused"),  # the exact engine
        encoder=leaf_keras.ConvNet([16, 32], dropout=0.0, use_batch_norm=False),
        use_batch_norm=False,
    )
    rng = np.random.default_rng(0)
    waveforms = rng.uniform(-0.5, 0.5, (8, 16000)).astype(np.float32)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(waveforms, rng.integers(0, NUM_CLASSES, 8), batch_size=4, epochs=1, verbose=0)
    return model


def _keras_outputs(model, waveforms):
    """Keras's logits, probabilities and features after the serving preprocessing."""
    import keras  # pylint: disable=import-outside-toplevel

    from experiments.data import preprocessing  # pylint: disable=import-outside-toplevel

    prepared = preprocessing.serving_preprocessing(waveforms, **PREPROCESSING).numpy()
    logits = keras.ops.convert_to_numpy(model(prepared, training=False))
    return {
        "logits": logits - logits.mean(axis=-1, keepdims=True),
        "probabilities": keras.ops.convert_to_numpy(keras.ops.softmax(logits)),
        "features": keras.ops.convert_to_numpy(model.frontend(prepared, training=False)),
        "prepared": prepared,
    }


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """(export_info, {quantization: frontend .tflite path}) of the trained classifier."""
    from experiments import export  # pylint: disable=import-outside-toplevel

    workdir = str(tmp_path_factory.mktemp("litert"))
    path = export.export(trained, workdir, multi_label=False, preprocessing=PREPROCESSING)
    with open(os.path.join(path, export.INFO_FILE)) as f:
        info = json.load(f)
    # The frontend signature of the same direct-convolution trace, in each variant, to
    # measure the variants on the features too.
    frontends = {}
    with export._direct_convolutions(trained):  # pylint: disable=protected-access
        direct = export.export_saved_model(
            trained,
            os.path.join(workdir, "direct"),
            False,
            num_samples=16000,
            preprocessing=PREPROCESSING,
            check_inputs=False,
        )
    for quantization in export.QUANTIZATIONS:
        frontends[quantization] = os.path.join(workdir, f"frontend_{quantization}.tflite")
        op_sets = export.export_tflite(
            direct, frontends[quantization], "builtins", quantization, signature_keys=["frontend"]
        )
        assert op_sets == "builtins"
    return info, frontends


def test_float16_and_dynamic_range_variants_errors_and_sizes(trained, exported):
    info, frontends = exported
    waveforms = np.random.default_rng(1).uniform(-0.5, 0.5, (2, 16000)).astype(np.float32)
    want = _keras_outputs(trained, waveforms)
    paths = {None: info["tflite"]}
    paths.update({name: variant["path"] for name, variant in info["tflite_variants"].items()})
    assert sorted(info["tflite_variants"]) == ["dynamic_range", "float16"]
    assert all(v["op_sets"] == "builtins" for v in info["tflite_variants"].values())
    sizes = {name: os.path.getsize(path) for name, path in paths.items()}
    assert sizes[None] == info["tflite_bytes"]
    measured = {}
    for quantization, path in paths.items():
        probabilities = _runner(path)(waveform=waveforms)["probabilities"]
        # The frontend signature has no preprocessing: it gets what the model gets.
        runner = _runner(frontends[quantization], "frontend")
        features = runner(waveform=want["prepared"])["features"]
        errors = {
            "probabilities": _relative_error(probabilities, want["probabilities"]),
            "logits": _relative_error(_centered_log(probabilities), want["logits"]),
            "features": _relative_error(features, want["features"]),
        }
        measured[str(quantization)] = errors
        print(
            f"\nTFLite {quantization or 'float32'}: {sizes[quantization] / 1e6:.3f} MB "
            f"({sizes[quantization] / sizes[None]:.2f} of float32), relative error vs Keras "
            + ", ".join(f"{k} {v:.2e}" for k, v in errors.items())
        )
        for name, error in errors.items():
            assert error <= TOLERANCES[quantization][name], (quantization, name, measured)
    # float16 stores every float constant in half precision (0.61 of the file here: the
    # int32 shapes and the graph stay; ~0.5 for a larger encoder); dynamic range only the
    # large matmul and convolution weights (the frontend's are computed at run time).
    assert sizes["float16"] <= 0.65 * sizes[None], sizes
    assert sizes["dynamic_range"] < sizes[None], sizes


def test_dynamic_length_model_matches_keras_for_any_batch_and_length(trained, exported):
    info, _ = exported
    dynamic = info["tflite_dynamic"]
    assert dynamic["op_sets"] == "builtins"
    assert dynamic["input_shape"] == [None, None]
    runner = _runner(dynamic["path"])
    rng = np.random.default_rng(2)
    errors = {}
    # 8000 is padded to the training length by the preprocessing, as the SavedModel does.
    for length in (8000, 16000, 20037):
        for batch in (1, 3):
            waveforms = rng.uniform(-0.5, 0.5, (batch, length)).astype(np.float32)
            want = _keras_outputs(trained, waveforms)
            got = runner(waveform=waveforms)["probabilities"]
            assert got.shape == (batch, NUM_CLASSES), (length, batch, got.shape)
            errors[f"{batch}x{length}"] = max(
                _relative_error(got, want["probabilities"]),
                _relative_error(_centered_log(got), want["logits"]),
            )
    print(f"\nTFLite dynamic length: relative error vs Keras {errors}")
    assert max(errors.values()) <= FLOAT32_TOLERANCE, errors


def test_export_writes_model_onnx_that_onnxruntime_runs(trained, exported):
    """``model.onnx`` next to the TFLite files: the raw model's logits, any length."""
    import keras  # pylint: disable=import-outside-toplevel
    import onnxruntime  # pylint: disable=import-outside-toplevel

    info, _ = exported
    onnx_info = info["onnx"]
    assert os.path.basename(onnx_info["path"]) == "model.onnx"
    assert onnx_info["inputs"] == {"waveform": ["batch", "time"]}
    assert onnx_info["bytes"] == os.path.getsize(onnx_info["path"])
    session = onnxruntime.InferenceSession(onnx_info["path"])
    rng = np.random.default_rng(5)
    for length in (8000, 16000, 20001):
        waveforms = rng.uniform(-0.5, 0.5, (2, length)).astype(np.float32)
        (got,) = session.run(["logits"], {"waveform": waveforms})
        want = keras.ops.convert_to_numpy(trained(waveforms, training=False))
        assert _relative_error(got, want) <= FLOAT32_TOLERANCE, length


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"tflite_op_sets": "flex"}, "tflite_op_sets must be 'auto', 'builtins' or 'select_tf"),
        ({"tflite_num_samples": "16000"}, "tflite_num_samples must be a positive int"),
        ({"tflite_num_samples": 0}, "tflite_num_samples must be a positive int"),
        ({"tflite_variants": "float16"}, "the string 'float16'"),
        ({"tflite_variants": ["int8"]}, r"among \('float16', 'dynamic_range'\), got \('int8',\)"),
        ({"onnx": "yes"}, "onnx must be True, False or 'auto', got 'yes'"),
    ],
)
def test_export_refuses_bad_arguments(trained, tmp_path, arguments, message):
    from experiments import export  # pylint: disable=import-outside-toplevel

    with pytest.raises(ValueError, match=message):
        export.export(trained, str(tmp_path), multi_label=False, **arguments)
    assert not os.listdir(tmp_path)  # refused before writing anything


def test_export_tflite_refuses_an_unknown_quantization(tmp_path):
    from experiments import export  # pylint: disable=import-outside-toplevel

    with pytest.raises(ValueError, match=r"quantization must be one of .*got 'int8'"):
        export.export_tflite(str(tmp_path), str(tmp_path / "m.tflite"), quantization="int8")


@pytest.mark.parametrize(
    "engine, bound",
    [({"filterbank": "band_limited"}, 1e-2), ({}, 1e-4)],
    ids=["fastest", "default_tolerance_1e-4"],
)
def test_band_limited_model_converts_as_its_exact_twin(tmp_path, engine, bound):
    """LiteRT runs the exact-engine twin of a band-limited classifier (builtin ops): its
    probabilities are the twin's in Keras, and within the engine's tolerance of the
    band-limited model's (`Leaf()`'s 1e-4, or ~1e-2 for the fastest setting)."""
    import keras  # pylint: disable=import-outside-toplevel

    import leaf_keras  # pylint: disable=import-outside-toplevel
    from experiments import exact_twin  # pylint: disable=import-outside-toplevel
    from experiments import export  # pylint: disable=import-outside-toplevel

    keras.utils.set_random_seed(1)
    model = leaf_keras.AudioClassifier(
        num_outputs=3,
        frontend=leaf_keras.Leaf(n_filters=8, **engine),
        encoder=leaf_keras.ConvNet([4], dropout=0.0),
    )
    assert model.frontend.band_limited
    model(keras.ops.zeros((1, 16000)))
    path = export.export(
        model,
        str(tmp_path),
        multi_label=False,
        tflite_op_sets="builtins",
        tflite_variants=(),
        tflite_dynamic_length=False,
        onnx=False,
    )
    with open(os.path.join(path, export.INFO_FILE)) as f:
        info = json.load(f)
    assert info["tflite_op_sets"] == "builtins"
    assert info["exact_twin"]["filterbank"] == "fused"
    assert 0.0 < info["exact_twin"]["max_relative_difference"] < bound
    waveforms = np.random.default_rng(2).uniform(-0.5, 0.5, (2, 16000)).astype(np.float32)
    got = _runner(info["tflite"])(waveform=waveforms)["probabilities"]
    twin = exact_twin.exact_twin(model)
    want = keras.ops.convert_to_numpy(keras.ops.softmax(twin(waveforms, training=False)))
    band_limited = keras.ops.convert_to_numpy(keras.ops.softmax(model(waveforms)))
    print(
        f"\nband-limited model as its twin in LiteRT: vs the twin {_relative_error(got, want):.2e}"
        f", vs the band-limited Keras model {_relative_error(got, band_limited):.2e}"
    )
    assert _relative_error(got, want) <= FLOAT32_TOLERANCE
    assert _relative_error(got, band_limited) <= bound
    # The SavedModel serves the band-limited model itself, padded batches included.
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    assert export.PADDED_SIGNATURE in info["signatures"]
    loaded = tf.saved_model.load(path)
    clips = [waveforms[0], waveforms[1, :9000]]
    batch = np.stack([waveforms[0], np.pad(clips[1], (0, 7000))])
    together = loaded.signatures[export.PADDED_SIGNATURE](
        waveform=tf.constant(batch), lengths=tf.constant([16000, 9000])
    )["probabilities"].numpy()
    alone = np.concatenate(
        [
            loaded.signatures["serving_default"](waveform=tf.constant(clip[None]))[
                "probabilities"
            ].numpy()
            for clip in clips
        ]
    )
    print(f"band-limited serving_padded vs each clip alone: {_relative_error(together, alone):.2e}")
    assert _relative_error(together, alone) <= 1e-5


def _run_stream(info, chunks):
    """Frames of each chunk through the LiteRT signatures (state carried), then the flush."""
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel

    interpreter = Interpreter(model_path=info["path"])
    state = {key: value for key, value in info["initial_state"].items() if value.size}
    empty = np.zeros((info["batch_size"], 0, info["n_filters"]), np.float32)
    outputs = []
    for index, chunk in enumerate(chunks):
        name = f"step_{index}" if index < info["warmup_steps"] else "step"
        result = interpreter.get_signature_runner(name)(chunk=chunk, **state)
        outputs.append(result.pop("frames", empty))
        following = f"step_{index + 1}" if index + 1 < info["warmup_steps"] else "step"
        assert sorted(result) == info["carried_keys"][following], (name, sorted(result))
        state = result
    outputs.append(interpreter.get_signature_runner("flush")(**state)["frames"])
    return outputs


@pytest.mark.parametrize(
    "frontend_name, chunk_samples, num_chunks",
    [("leaf", 160, 12), ("leaf", 1600, 5), ("mel_pcen", 160, 8), ("leaf_band_limited", 160, 12)],
)
def test_streaming_step_matches_keras_chunk_by_chunk(
    trained, tmp_path, frontend_name, chunk_samples, num_chunks
):
    import keras  # pylint: disable=import-outside-toplevel

    import leaf_keras  # pylint: disable=import-outside-toplevel
    from experiments import exact_twin  # pylint: disable=import-outside-toplevel
    from experiments import export_streaming  # pylint: disable=import-outside-toplevel
    from leaf_keras import streaming  # pylint: disable=import-outside-toplevel

    # The trained classifier's LEAF (no weight at its init), a MelPCEN, or a band-limited
    # LEAF, which streams as its exact twin.
    frontend = {
        "leaf": lambda: trained.frontend,
        "mel_pcen": leaf_keras.MelPCEN,
        "leaf_band_limited": lambda: leaf_keras.Leaf(n_filters=8, filterbank="band_limited"),
    }[frontend_name]()
    batch = 2
    info = export_streaming.export_streaming_tflite(
        frontend, str(tmp_path / "stream.tflite"), chunk_samples, batch_size=batch
    )
    if frontend_name == "leaf_band_limited":
        band_limited_latency = streaming.stream(frontend).latency
        frontend = exact_twin.exact_twin(frontend)
        assert info["engine"]["filterbank"] == "fused"
        assert info["latency"] == streaming.stream(frontend).latency < band_limited_latency
    assert info["signatures"][-2:] == ["step", "flush"]
    assert len(info["signatures"]) == info["warmup_steps"] + 2
    waveform = np.random.default_rng(3).uniform(-0.5, 0.5, (batch, chunk_samples * num_chunks))
    waveform = waveform.astype(np.float32)
    chunks = np.split(waveform, num_chunks, axis=1)
    got = _run_stream(info, chunks)
    keras_stream = streaming.stream(frontend)
    state = keras_stream.initial_state(batch)
    want = []
    for chunk in chunks:
        frames, state = keras_stream.step(chunk, state)
        want.append(keras.ops.convert_to_numpy(frames))
    want.append(keras.ops.convert_to_numpy(keras_stream.flush(state)[0]))
    scale = max(np.max(np.abs(w)) for w in want if w.size)
    errors = []
    for index, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, (index, g.shape, w.shape)
        errors.append(float(np.max(np.abs(g - w))) / scale if w.size else 0.0)
    offline = keras.ops.convert_to_numpy(frontend(waveform, training=False))
    offline_error = _relative_error(np.concatenate(got, axis=1), offline)
    print(
        f"\nLiteRT stream {frontend_name} {chunk_samples} samples x {num_chunks}: "
        f"{info['warmup_steps']} warm-up signatures, {info['bytes'] / 1e6:.3f} MB, max relative "
        f"error per chunk vs Keras {max(errors):.2e}, concatenated vs offline {offline_error:.2e}"
    )
    assert max(errors) <= FLOAT32_TOLERANCE, errors
    assert offline_error <= FLOAT32_TOLERANCE


def test_streaming_export_refuses_bad_arguments(tmp_path):
    import leaf_keras  # pylint: disable=import-outside-toplevel
    from experiments import export_streaming  # pylint: disable=import-outside-toplevel

    path = str(tmp_path / "stream.tflite")
    with pytest.raises(ValueError, match=r"multiple of the stride \(160 samples\), got 100"):
        export_streaming.export_streaming_tflite(leaf_keras.Leaf(n_filters=4), path, 100)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        export_streaming.export_streaming_tflite(leaf_keras.Leaf(n_filters=4), path, 160, 0)
    with pytest.raises(ValueError, match="InstanceNormalization"):
        export_streaming.export_streaming_tflite(
            leaf_keras.Leaf(n_filters=4, mean_var_norm=True), path, 160
        )
    assert not os.listdir(tmp_path)


def test_benchmark_exports_reports_every_size(load_benchmark, tmp_path):
    sizes = load_benchmark("benchmark_exports").export_sizes(str(tmp_path), (4,), onnx=False)
    assert len(sizes) == 7 and all(size > 0 for size in sizes.values()), sizes

"""The ONNX exports of a small LEAF classifier and of its frontend (`experiments.export_onnx`),
run with onnxruntime on several batch sizes and clip lengths, match Keras."""

import contextlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest

# Clip lengths (samples): short, the built length, and a long odd one.
LENGTHS = (4000, 8000, 12345)
BATCHES = (1, 3)
TOLERANCE = 1e-4


def _small_classifier(filterbank="auto", num_outputs=3):
    import keras  # pylint: disable=import-outside-toplevel

    import leaf_keras  # pylint: disable=import-outside-toplevel

    keras.utils.set_random_seed(0)
    return leaf_keras.AudioClassifier(
        num_outputs=num_outputs,
        frontend=leaf_keras.Leaf(n_filters=8, filterbank=filterbank),
        encoder=leaf_keras.ConvNet([4, 8], dropout=0.0),
    )


def _relative_error(got, want):
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


@pytest.fixture(scope="module")
def trained():
    """A small LEAF classifier, trained for a few steps so that no weight is at its init."""
    import keras  # pylint: disable=import-outside-toplevel

    model = _small_classifier()
    rng = np.random.default_rng(0)
    waveforms = rng.uniform(-0.5, 0.5, (8, 8000)).astype(np.float32)
    labels = rng.integers(0, 3, 8)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(waveforms, labels, batch_size=4, epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """{part: (info, InferenceSession)} of the classifier and the frontend."""
    from experiments import export_onnx  # pylint: disable=import-outside-toplevel

    folder = tmp_path_factory.mktemp("onnx")
    result = {}
    for part in ("classifier", "frontend"):
        info = export_onnx.export_onnx(trained, str(folder / f"{part}.onnx"), part=part)
        result[part] = (info, ort.InferenceSession(info["path"]))
    return result


@pytest.mark.parametrize("part", ["classifier", "frontend"])
def test_onnxruntime_matches_keras(trained, exported, part):
    import keras  # pylint: disable=import-outside-toplevel

    info, session = exported[part]
    module = trained if part == "classifier" else trained.frontend
    (output,) = info["outputs"]
    rng = np.random.default_rng(1)
    worst = {}
    for length in LENGTHS:
        for batch in BATCHES:
            waveforms = rng.uniform(-0.5, 0.5, (batch, length)).astype(np.float32)
            want = keras.ops.convert_to_numpy(module(waveforms, training=False))
            (got,) = session.run([output], {"waveform": waveforms})
            assert got.shape == want.shape, (length, batch, got.shape, want.shape)
            error = _relative_error(got, want)
            worst[length] = max(worst.get(length, 0.0), error)
    print(f"\nONNX {part} worst relative error per length: {worst}")
    for length, error in worst.items():
        assert error <= TOLERANCE, (part, length, error)


def test_graphs_have_dynamic_axes_and_real_valued_ops(exported):
    from experiments import export_onnx  # pylint: disable=import-outside-toplevel

    for part, output in (("classifier", "logits"), ("frontend", "features")):
        info, session = exported[part]
        model = onnx.load(info["path"])
        (waveform,) = model.graph.input
        assert waveform.name == "waveform"
        assert waveform.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        dims = waveform.type.tensor_type.shape.dim
        assert [d.dim_param for d in dims] == ["batch", "time"]
        assert not any(d.HasField("dim_value") for d in dims)
        assert [i.shape for i in session.get_inputs()] == [["batch", "time"]]
        assert [o.name for o in model.graph.output] == [output]
        op_types = {node.op_type for node in model.graph.node}
        assert sorted(op_types) == info["op_types"]
        assert not op_types & {"DFT", "STFT"}, op_types
        # The direct convolutions (Gabor filters, pooling, encoder) are ONNX Conv nodes.
        assert "Conv" in op_types
        assert {o.domain or "": o.version for o in model.opset_import}[""] == 17
        assert info["opset"] == export_onnx.DEFAULT_OPSET == 17
        assert info["direct_convolutions"] > 0
        for tensor in model.graph.initializer:
            assert tensor.data_type not in (onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128)
        print(f"\nONNX {part}: opset {info['opset']}, {info['exporter']}, ops {info['op_types']}")
    assert exported["frontend"][0]["outputs"] == {"features": ["batch", "frames", 8]}
    assert exported["classifier"][0]["outputs"] == {"logits": ["batch", 3]}


def test_band_limited_model_exports_as_its_exact_twin(tmp_path):
    import keras  # pylint: disable=import-outside-toplevel

    from experiments import exact_twin  # pylint: disable=import-outside-toplevel
    from experiments import export_onnx  # pylint: disable=import-outside-toplevel

    model = _small_classifier(filterbank="band_limited")
    model(np.zeros((1, 8000), np.float32))
    twin = exact_twin.exact_twin(model)
    waveforms = np.random.default_rng(4).uniform(-0.5, 0.5, (2, 12345)).astype(np.float32)
    # The classifier: the frontend's twin is the same conversion (measured: 2e-7 from the
    # twin's features, 1.3e-4 from the band-limited ones).
    info = export_onnx.export_onnx(model, str(tmp_path / "classifier.onnx"))
    assert info["engine"]["filterbank"] == "fused"
    assert 0.0 < info["engine"]["max_relative_difference"] < 1e-2
    (got,) = ort.InferenceSession(info["path"]).run(["logits"], {"waveform": waveforms})
    want = keras.ops.convert_to_numpy(twin(waveforms, training=False))
    band_limited = keras.ops.convert_to_numpy(model(waveforms, training=False))
    print(
        f"\nONNX classifier of a band-limited model: vs its twin {_relative_error(got, want):.2e},"
        f" vs the band-limited Keras model {_relative_error(got, band_limited):.2e}"
    )
    assert _relative_error(got, want) <= TOLERANCE
    assert _relative_error(got, band_limited) <= 1e-2


def test_ops_left_unconverted_are_refused(trained, tmp_path, monkeypatch):
    """Traced with FFT convolutions, the graph keeps TF's complex ops: export refuses it."""
    from experiments import export_onnx  # pylint: disable=import-outside-toplevel

    monkeypatch.setattr(export_onnx, "_direct_convolutions", lambda _: contextlib.nullcontext(0))
    with pytest.raises(ValueError, match=r"not standard ONNX ops of opset 17: .*'Complex'"):
        export_onnx.export_onnx(trained, str(tmp_path / "fft.onnx"), part="frontend")


def test_falls_back_to_tf2onnx_from_function(trained, tmp_path, monkeypatch):
    import keras  # pylint: disable=import-outside-toplevel

    from experiments import export_onnx  # pylint: disable=import-outside-toplevel

    def no_export(*args, **kwargs):
        raise NotImplementedError("no ONNX export here")

    monkeypatch.setattr(type(trained.frontend), "export", no_export)
    info = export_onnx.export_onnx(trained, str(tmp_path / "frontend.onnx"), "frontend", opset=15)
    assert info["exporter"] == "tf2onnx"
    assert info["opset"] == 15
    assert info["inputs"] == {"waveform": ["batch", "time"]}
    session = ort.InferenceSession(info["path"])
    waveforms = np.random.default_rng(2).uniform(-0.5, 0.5, (2, 5001)).astype(np.float32)
    (got,) = session.run(["features"], {"waveform": waveforms})
    want = keras.ops.convert_to_numpy(trained.frontend(waveforms, training=False))
    assert _relative_error(got, want) <= TOLERANCE


def test_bad_arguments_are_refused(trained, tmp_path, monkeypatch):
    import keras  # pylint: disable=import-outside-toplevel

    import leaf_keras  # pylint: disable=import-outside-toplevel
    from experiments import export_onnx  # pylint: disable=import-outside-toplevel

    path = str(tmp_path / "model.onnx")
    with pytest.raises(ValueError, match="part must be one of"):
        export_onnx.export_onnx(trained, path, part="encoder")
    for opset in (11, 19, 17.0):
        with pytest.raises(ValueError, match="opset must be an int from 13 to 18"):
            export_onnx.export_onnx(trained, path, opset=opset)
    with pytest.raises(ValueError, match="needs a built model"):
        export_onnx.export_onnx(_small_classifier(), path)
    features_model = leaf_keras.AudioClassifier(3)
    features_model(np.zeros((1, 20, 8), np.float32))
    with pytest.raises(ValueError, match="has no frontend"):
        export_onnx.export_onnx(features_model, path)
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match="needs KERAS_BACKEND=tensorflow, got 'jax'"):
        export_onnx.export_onnx(trained, path)
    assert not list(tmp_path.iterdir())

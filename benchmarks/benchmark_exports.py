"""File sizes of every export of a quickstart-sized LEAF classifier.

Builds the model of ``gin/quickstart.gin`` directly (default `leaf_keras.Leaf`, 40 filters,
+ ``ConvNet([32, 64, 64, 128])`` without batch normalization, 10 classes; untrained: the
sizes do not depend on the weights' values), exports it with `experiments.export.export`
(``model.keras``, the SavedModel, ``model.tflite`` and its float16 / dynamic-range variants,
``model_dynamic.tflite``, ``model.onnx``: the classifier) and with
`experiments.export_streaming.export_streaming_tflite` (the frontend's streaming step),
and prints a markdown table of the sizes in MB.

Usage:
    KERAS_BACKEND=tensorflow python benchmarks/benchmark_exports.py [--json sizes.json]
"""

import argparse
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_classifier(filters=(32, 64, 64, 128), num_classes=10, n_filters=40):
    """The quickstart classifier (gin/quickstart.gin), built on one 1 s clip."""
    import keras  # pylint: disable=import-outside-toplevel

    import leaf_keras  # pylint: disable=import-outside-toplevel

    keras.utils.set_random_seed(0)
    model = leaf_keras.AudioClassifier(
        num_outputs=num_classes,
        frontend=leaf_keras.Leaf(n_filters=n_filters),
        encoder=leaf_keras.ConvNet(list(filters), use_batch_norm=False),
        use_batch_norm=False,
    )
    model(keras.ops.zeros((1, 16000)))
    return model


def _size(path):
    if os.path.isdir(path):
        return sum(
            os.path.getsize(os.path.join(folder, name))
            for folder, _, names in os.walk(path)
            for name in names
        )
    return os.path.getsize(path)


def export_sizes(workdir, filters=(32, 64, 64, 128), chunk_samples=160, onnx=True):
    """{export name: bytes} of every export of the quickstart classifier, written under
    `workdir`."""
    from experiments import export  # pylint: disable=import-outside-toplevel
    from experiments import export_streaming  # pylint: disable=import-outside-toplevel

    model = build_classifier(filters)
    path = export.export(model, workdir, multi_label=False, onnx=onnx)
    with open(os.path.join(path, export.INFO_FILE)) as f:
        info = json.load(f)
    saved_model = [
        os.path.join(path, name)
        for name in ("saved_model.pb", "variables", "assets", "fingerprint.pb")
        if os.path.exists(os.path.join(path, name))
    ]
    sizes = {
        "model.keras": _size(info["keras"]),
        "SavedModel": sum(_size(p) for p in saved_model),
        "model.tflite (float32, 1 s)": _size(info["tflite"]),
    }
    for variant, entry in info["tflite_variants"].items():
        sizes[f"{os.path.basename(entry['path'])} ({variant})"] = entry["bytes"]
    if "tflite_dynamic" in info:
        sizes["model_dynamic.tflite (any length)"] = info["tflite_dynamic"]["bytes"]
    if onnx:
        sizes["model.onnx (classifier)"] = info["onnx"]["bytes"]
    stream = export_streaming.export_streaming_tflite(
        model.frontend, os.path.join(workdir, "stream.tflite"), chunk_samples
    )
    sizes[f"stream.tflite (frontend step, {chunk_samples} samples)"] = stream["bytes"]
    return sizes


def markdown(sizes):
    float32 = sizes.get("model.tflite (float32, 1 s)")
    lines = ["| export | MB | vs model.tflite |", "|---|---:|---:|"]
    for name, size in sizes.items():
        ratio = f"{size / float32:.2f}" if float32 else ""
        lines.append(f"| {name} | {size / 1e6:.3f} | {ratio} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--filters", type=int, nargs="+", default=[32, 64, 64, 128], help="ConvNet filters"
    )
    parser.add_argument("--chunk-samples", type=int, default=160, help="streaming chunk")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX export")
    parser.add_argument("--workdir", help="keep the exports here (default: a temporary folder)")
    parser.add_argument("--json", help="also write {export: bytes} to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        sizes = export_sizes(
            args.workdir or temporary, args.filters, args.chunk_samples, onnx=not args.no_onnx
        )
    print(markdown(sizes))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(sizes, f, indent=2)


if __name__ == "__main__":
    main()

"""experiments.cli.summary: the lines a finished run prints."""

from experiments import cli


def test_summary_of_a_single_task_run_lists_what_exists(tmp_path):
    (tmp_path / "report").mkdir()
    (tmp_path / "metrics.json").write_text("{}")
    metrics = {"split": "test", "num_examples": 100, "accuracy": 0.97}
    text = cli.summary(str(tmp_path), metrics, 61.0, None)
    assert "Finished in 1 min 01 s" in text
    assert "Test (test split, 100 clips): accuracy 0.9700" in text
    assert f"report        {tmp_path / 'report'}" in text
    assert "checkpoints" not in text  # not written: not listed


def test_summary_of_a_multitask_run_has_one_line_per_task(tmp_path):
    metrics = {
        "split": "test",
        "tasks": {
            "events": {"num_examples": 100, "accuracy": 0.97},
            "tags": {"num_examples": 50, "mAP": 0.5, "AUC": 0.75},
        },
    }
    lines = cli.summary(str(tmp_path), metrics, 5.0, None).splitlines()
    assert "Test (task events, test split, 100 clips): accuracy 0.9700" in lines
    assert "Test (task tags, test split, 50 clips): mAP 0.5000, AUC 0.7500" in lines


def test_summary_lists_the_exports_written(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    for name in ("model.tflite", "model.keras", "model.onnx"):
        (export / name).write_text("")
    info = {
        "saved_model": str(export),
        "tflite": str(export / "model.tflite"),
        "keras": str(export / "model.keras"),
        "onnx": {"path": str(export / "model.onnx")},
    }
    text = cli.summary(str(tmp_path), {}, 5.0, info)
    for name, file in (("LiteRT model", "model.tflite"), ("ONNX model", "model.onnx")):
        assert f"{name:<13} {export / file}" in text
    assert "ONNX model" not in cli.summary(str(tmp_path), {}, 5.0, dict(info, onnx=None))

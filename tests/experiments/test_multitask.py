"""Multi-task training: data.multitask.combine and the whole experiment on two tasks."""

import json
import os

import fixtures_train
import numpy as np
import pytest
import tensorflow as tf

from experiments import data
from experiments import train
from experiments.data import multitask


def _task(name, clips, labels, num_classes, multi_label=False, batch=2):
    dataset = tf.data.Dataset.from_tensor_slices((clips, labels)).batch(batch)
    return data.AudioTask(
        name=name,
        train=dataset,
        validation=dataset,
        test=dataset,
        num_classes=num_classes,
        multi_label=multi_label,
        sample_rate=16000,
        class_names=tuple(str(c) for c in range(num_classes)),
        stats={"skipped": 1},
    )


def test_every_training_batch_holds_every_task_with_masked_labels():
    events = _task("e", np.full((4, 8), 1.0, np.float32), np.array([2, 1, 0, 2], np.int32), 3)
    tags = _task(  # multi-label, 2 training batches of 1 clip: repeated to fill the epoch
        "t",
        np.full((2, 8), -1.0, np.float32),
        np.array([[1, 0], [1, 1]], np.float32),
        2,
        multi_label=True,
        batch=1,
    )
    combined = multitask.combine({"events": events, "tags": tags})
    assert combined.steps_per_epoch == 2
    assert combined.num_classes == {"events": 3, "tags": 2}
    assert combined.stats == {"events/skipped": 1, "tags/skipped": 1}
    waveforms, labels, weights = next(iter(combined.train))
    np.testing.assert_array_equal(waveforms[:, 0], [1.0, 1.0, -1.0])
    np.testing.assert_array_equal(labels["events"], [2, 1, 0])
    np.testing.assert_array_equal(weights["events"], [1, 1, 0])
    np.testing.assert_array_equal(labels["tags"], [[0, 0], [0, 0], [1, 0]])
    np.testing.assert_array_equal(weights["tags"], [0, 0, 1])
    # Validation: each batch one task's clips, weighted for that task only.
    batches = list(combined.validation)
    assert len(batches) == 2 + 2
    assert [float(np.sum(b[2]["events"])) for b in batches] == [2, 2, 0, 0]
    assert [float(np.sum(b[2]["tags"])) for b in batches] == [0, 0, 1, 1]


def test_tasks_with_different_clip_lengths_are_refused():
    a = _task("a", np.zeros((2, 8), np.float32), np.array([0, 1], np.int32), 2)
    b = _task("b", np.zeros((2, 8), np.float32), np.array([0, 1], np.int32), 2)
    a.eval_preprocessing = {"min_length": 16000, "loudness_normalize": True}
    b.eval_preprocessing = {"min_length": 32000, "loudness_normalize": True}
    with pytest.raises(ValueError, match="clip_seconds"):
        multitask.combine({"a": a, "b": b})


@pytest.mark.parametrize(
    "tasks, message",
    [
        ({}, "dict"),
        ({"two words": None}, "identifier"),
    ],
)
def test_bad_task_dicts(tasks, message):
    with pytest.raises(ValueError, match=message):
        multitask.combine(tasks)


def test_compile_arguments_of_a_multitask_model():
    arguments, monitor, mode = train.compile_arguments({"a": False, "b": True})
    assert set(arguments["loss"]) == set(arguments["weighted_metrics"]) == {"a", "b"}
    assert (monitor, mode) == ("val_loss", "min")


def test_multitask_quickstart_trains_evaluates_and_exports_per_task(
    synthetic_commands_data_dir, tmp_path
):
    workdir = tmp_path / "run"
    bindings = fixtures_train.tiny_bindings(synthetic_commands_data_dir, epochs=1) + [
        "events/load_task.dataset = 'synthetic_commands/tiny'",
        "family/load_task.dataset = 'synthetic_commands/family_tiny'",
    ]
    process = fixtures_train.run_main(
        fixtures_train.gin_args(["multitask_quickstart"], bindings) + [f"--workdir={workdir}"],
        timeout=600,
    )
    assert process.returncode == 0, fixtures_train.describe(process)
    with open(workdir / "metrics.json") as f:
        metrics = json.load(f)
    assert set(metrics["tasks"]) == {"events", "family"}
    assert metrics["tasks"]["events"]["num_classes"] == 10
    assert metrics["tasks"]["family"]["num_classes"] == 4
    for scores in metrics["tasks"].values():
        assert scores["num_examples"] == 20 and 0.0 <= scores["accuracy"] <= 1.0
    assert metrics["class_names"]["family"] == ["tone", "noise", "harmonic", "clicks"]
    report = os.listdir(workdir / "report")
    assert {"confusion_matrix_events.png", "confusion_matrix_family.png"} <= set(report)
    # A fresh process calls every task's signature from the SavedModel alone.
    code = f"""
import json
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load({str(workdir / "export")!r})
waveform = tf.constant(np.random.default_rng(0).normal(0, 0.1, (3, 16000)).astype("float32"))
every = loaded.signatures["serving_default"](waveform=waveform)
print("RESULT " + json.dumps({{
    "signatures": sorted(loaded.signatures),
    **{{name: loaded.signatures[name](waveform=waveform)["probabilities"].numpy().tolist()
        for name in ("events", "family")}},
    "every_events": every["events"].numpy().tolist(),
}}))
"""
    process = fixtures_train.run_script(code)
    assert process.returncode == 0, fixtures_train.describe(process)
    line = [l for l in process.stdout.splitlines() if l.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT ") :])
    assert result["signatures"] == [
        "events",
        "family",
        "frontend",
        "serving_default",
        "serving_padded",
    ]
    events, family = np.array(result["events"]), np.array(result["family"])
    assert events.shape == (3, 10) and family.shape == (3, 4)
    np.testing.assert_allclose(events.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(family.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(result["every_events"], events, rtol=1e-5, atol=1e-7)

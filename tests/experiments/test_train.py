"""Training-loop tests: resume after a kill, NaN stop, mirrored == single-device."""

import csv
import json
import os
import textwrap

import fixtures_train
import numpy as np
import pytest

# LEAF: its learned frontend weights are compared too.
MIRRORED_FRONTEND = "leaf"


def _epochs_logged(workdir):
    with open(os.path.join(workdir, "training_log.csv")) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def _all_finite_h5(path):
    arrays = list(fixtures_train.h5_arrays(path).values())
    assert arrays
    return all(np.all(np.isfinite(a)) for a in arrays if a.dtype.kind == "f")


def test_killed_run_resumes_from_backup(synthetic_commands_data_dir, tmp_path):
    workdir = tmp_path / "resume"
    args = [f"--workdir={workdir}"] + fixtures_train.gin_args(
        ["mel", "datasets/synthetic_commands"],
        fixtures_train.tiny_bindings(synthetic_commands_data_dir, epochs=3)
        + ["run_experiment.export = False"],
    )
    # Two batches per epoch: the process dies after the first batch of the second epoch,
    # like a pre-empted job (os._exit, no cleanup).
    crashing = fixtures_train.run_main(
        args
        + [
            "--gin_bindings=train.extra_callbacks = [@CrashAfterBatches()]",
            "--gin_bindings=CrashAfterBatches.num_batches = 3",
        ],
        fault_injection=True,
    )
    assert crashing.returncode == 17, fixtures_train.describe(crashing)
    assert _epochs_logged(workdir) == [0]
    with open(workdir / "backup" / "training_metadata.json") as f:
        assert json.load(f)["epoch"] == 1
    assert not (workdir / "metrics.json").exists()

    resumed = fixtures_train.run_main(args)
    assert resumed.returncode == 0, fixtures_train.describe(resumed)
    # Epoch 0 is not trained again: the restart continued with epochs 1 and 2.
    assert _epochs_logged(workdir) == [0, 1, 2]
    assert "Epoch 2/3" in resumed.stdout and "Epoch 1/3" not in resumed.stdout
    with open(workdir / "checkpoints" / "last.json") as f:
        assert json.load(f)["epoch"] == 3
    # A finished run keeps its backup, so running the command again trains nothing: it
    # only evaluates (and would export) the best checkpoint again.
    assert (workdir / "metrics.json").exists()
    os.remove(workdir / "metrics.json")
    again = fixtures_train.run_main(args)
    assert again.returncode == 0, fixtures_train.describe(again)
    assert "Epoch " not in again.stdout, again.stdout
    assert _epochs_logged(workdir) == [0, 1, 2]
    with open(workdir / "checkpoints" / "last.json") as f:
        assert json.load(f)["epoch"] == 3
    assert (workdir / "metrics.json").exists()


# LEAF also logs its Gabor filters every epoch: NaN weights must not make that logging fail
# before the NaN guard reports the divergence.
@pytest.mark.parametrize("frontend", ["mel", "leaf"])
def test_nan_loss_stops_and_keeps_last_good_checkpoint(
    frontend, synthetic_commands_data_dir, tmp_path
):
    workdir = tmp_path / "nan"
    process = fixtures_train.run_main(
        [f"--workdir={workdir}"]
        + fixtures_train.gin_args(
            [frontend, "datasets/synthetic_commands"],
            fixtures_train.tiny_bindings(synthetic_commands_data_dir, epochs=3)
            + [
                # After the first batch of epoch 2 every weight becomes NaN, so the loss of
                # its second batch is NaN (after that batch's update, as in real divergence).
                "train.extra_callbacks = [@InjectNaNAfterBatches()]",
                "InjectNaNAfterBatches.num_batches = 3",
            ],
        ),
        fault_injection=True,
    )
    assert process.returncode != 0
    assert "NaN or infinite at epoch 2, batch 2" in process.stderr, fixtures_train.describe(process)
    checkpoints = workdir / "checkpoints"
    with open(checkpoints / "last.json") as f:
        assert json.load(f)["epoch"] == 1
    assert _all_finite_h5(checkpoints / "last.weights.h5")
    assert _all_finite_h5(checkpoints / "best.weights.h5")
    # The backup keeps the last good state too, and nothing was evaluated or exported.
    assert _all_finite_h5(workdir / "backup" / "latest.weights.h5")
    assert not (workdir / "metrics.json").exists()
    assert not (workdir / "export").exists()
    # The CSV log records the diverged epoch honestly.
    with open(workdir / "training_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert np.isfinite(float(rows[0]["loss"])) and not np.isfinite(float(rows[1]["loss"]))


def test_mirrored_on_two_cpus_matches_single_device(synthetic_commands_data_dir, tmp_path):
    bindings = fixtures_train.deterministic_bindings(synthetic_commands_data_dir)
    code = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from experiments import data, experiment, train
        experiment.parse_gin(["gin/{MIRRORED_FRONTEND}.gin", "gin/datasets/synthetic_commands.gin"],
                             {bindings!r})
        task = data.load_task()
        weights, replicas = {{}}, {{}}
        for strategy in ("default", "mirrored"):
            result = train.train(task, {str(tmp_path)!r} + "/" + strategy, strategy=strategy)
            weights[strategy] = [np.asarray(w) for w in result.model.get_weights()]
            replicas[strategy] = result.distribution.num_replicas
        worst = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-12))
                    for a, b in zip(weights["mirrored"], weights["default"]))
        print("RESULT " + json.dumps({{"worst": worst, "replicas": replicas}}))
    """)
    process = fixtures_train.run_script(code)
    assert process.returncode == 0, fixtures_train.describe(process)
    line = [l for l in process.stdout.splitlines() if l.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT ") :])
    assert result["replicas"] == {"default": 1, "mirrored": 2}
    assert result["worst"] < 1e-4, result


def test_another_config_in_a_used_workdir_gets_a_clear_error(synthetic_commands_data_dir, tmp_path):
    bindings = fixtures_train.tiny_bindings(synthetic_commands_data_dir) + [
        "run_experiment.export = False",
        "run_experiment.report = False",
    ]
    fixtures_train.run_in_process(["mel", "datasets/synthetic_commands"], bindings, tmp_path)
    with pytest.raises(ValueError, match="holds the training state of another model"):
        fixtures_train.run_in_process(["leaf", "datasets/synthetic_commands"], bindings, tmp_path)


def test_mirrored_on_two_cpus_runs_the_whole_experiment(synthetic_commands_data_dir, tmp_path):
    # Train, evaluate, report and export under MirroredStrategy, compared with one device:
    # evaluation used to crash with twice the rows (every replica's predict_on_batch).
    bindings = fixtures_train.deterministic_bindings(synthetic_commands_data_dir)
    code = textwrap.dedent(f"""
        import json
        import numpy as np
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import gin
        from experiments import experiment
        results = {{}}
        for strategy in ("default", "mirrored"):
            gin.clear_config()
            experiment.parse_gin(["gin/{MIRRORED_FRONTEND}.gin",
                                  "gin/datasets/synthetic_commands.gin"], {bindings!r})
            workdir = {str(tmp_path)!r} + "/" + strategy
            metrics = experiment.run_experiment(workdir=workdir, strategy=strategy)
            loaded = tf.saved_model.load(workdir + "/export")
            probabilities = loaded.signatures["serving_default"](
                waveform=tf.zeros([3, 16000]) + 0.01)["probabilities"]
            results[strategy] = {{"accuracy": metrics["accuracy"],
                                  "examples": metrics["num_examples"],
                                  "rows": int(probabilities.shape[0])}}
        print("RESULT " + json.dumps(results))
    """)
    process = fixtures_train.run_script(code, timeout=600)
    assert process.returncode == 0, fixtures_train.describe(process)
    line = [l for l in process.stdout.splitlines() if l.startswith("RESULT ")][-1]
    results = json.loads(line[len("RESULT ") :])
    assert results["mirrored"]["examples"] == results["default"]["examples"] == 20
    assert results["mirrored"]["rows"] == 3
    assert abs(results["mirrored"]["accuracy"] - results["default"]["accuracy"]) <= 0.05


def test_jax_data_parallel_on_two_host_devices_matches_one_device(
    synthetic_commands_data_dir, tmp_path
):
    bindings = fixtures_train.deterministic_bindings(synthetic_commands_data_dir)
    code = textwrap.dedent(f"""
        import json
        import jax
        import numpy as np
        from experiments import data, experiment, train
        assert len(jax.devices()) == 2, jax.devices()
        experiment.parse_gin(["gin/mel.gin", "gin/datasets/synthetic_commands.gin"],
                             {bindings!r})
        task = data.load_task()
        weights, replicas = {{}}, {{}}
        for strategy in ("default", "data_parallel"):
            result = train.train(task, {str(tmp_path)!r} + "/" + strategy, strategy=strategy)
            weights[strategy] = [np.asarray(w) for w in result.model.get_weights()]
            replicas[strategy] = result.distribution.num_replicas
        worst = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-12))
                    for a, b in zip(weights["data_parallel"], weights["default"]))
        print("RESULT " + json.dumps({{"worst": worst, "replicas": replicas}}))
    """)
    process = fixtures_train.run_script(
        code, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2"
    )
    assert process.returncode == 0, fixtures_train.describe(process)
    line = [l for l in process.stdout.splitlines() if l.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT ") :])
    assert result["replicas"] == {"default": 1, "data_parallel": 2}
    assert result["worst"] < 1e-5, result


def test_a_run_killed_mid_epoch_ends_like_an_uninterrupted_one(
    synthetic_commands_data_dir, tmp_path
):
    # Deterministic data order and model: the resumed run must end where an uninterrupted
    # run with the same seed ends, not merely finish.
    bindings = fixtures_train.deterministic_bindings(synthetic_commands_data_dir, epochs=3) + [
        "run_experiment.export = False",
        "run_experiment.report = False",
    ]
    args = fixtures_train.gin_args(["mel", "datasets/synthetic_commands"], bindings)
    killed = tmp_path / "killed"
    # 5 batches per epoch: os._exit (no cleanup, like kill -9) in the middle of epoch 2.
    crashing = fixtures_train.run_main(
        args
        + [
            f"--workdir={killed}",
            "--gin_bindings=train.extra_callbacks = [@CrashAfterBatches()]",
            "--gin_bindings=CrashAfterBatches.num_batches = 7",
        ],
        fault_injection=True,
    )
    assert crashing.returncode == 17, fixtures_train.describe(crashing)
    resumed = fixtures_train.run_main(args + [f"--workdir={killed}"])
    assert resumed.returncode == 0, fixtures_train.describe(resumed)
    whole = tmp_path / "whole"
    uninterrupted = fixtures_train.run_main(args + [f"--workdir={whole}"])
    assert uninterrupted.returncode == 0, fixtures_train.describe(uninterrupted)

    def weights(workdir):
        return fixtures_train.h5_arrays(workdir / "checkpoints" / "last.weights.h5")

    after_kill, reference = weights(killed), weights(whole)
    assert after_kill.keys() == reference.keys() and reference
    for name, value in reference.items():
        np.testing.assert_allclose(after_kill[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    with open(killed / "metrics.json") as f, open(whole / "metrics.json") as g:
        assert json.load(f)["accuracy"] == json.load(g)["accuracy"]

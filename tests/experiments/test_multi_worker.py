"""A real 2-worker MultiWorkerMirroredStrategy cluster on 127.0.0.1 (two processes):
killed mid-epoch, restarted, and ending like one uninterrupted worker."""

import csv
import json
import os
import socket
import subprocess
import sys

import fixtures_train
import numpy as np


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _bindings(data_dir):
    return fixtures_train.deterministic_bindings(data_dir) + ["run_experiment.report = False"]


def _start_cluster(args, workdir, faults=None):
    """Starts 2 workers of `python -m experiments.main` (`faults`: {worker index: extra
    gin bindings}, run through main_with_fault_injection.py)."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(2):
        env = fixtures_train.subprocess_env(
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        )
        extra = [f"--gin_bindings={b}" for b in (faults or {}).get(index, [])]
        program = [fixtures_train.FAULT_INJECTION_MAIN] if extra else ["-m", "experiments.main"]
        workers.append(
            subprocess.Popen(  # pylint: disable=consider-using-with
                [
                    sys.executable,
                    *program,
                    *args,
                    *extra,
                    "--strategy=multi_worker",
                    f"--workdir={workdir}",
                ],
                cwd=fixtures_train.REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return workers


def _finish(workers, timeout=600):
    """Waits for every worker; returns [(returncode, stdout, stderr)]."""
    outputs = []
    for worker in workers:
        try:
            out, err = worker.communicate(timeout=timeout)
        finally:
            if worker.poll() is None:
                worker.kill()
        outputs.append((worker.returncode, out, err))
    return outputs


def _epochs_logged(workdir):
    with open(workdir / "training_log.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_two_workers_train_like_one_and_only_the_chief_writes(
    synthetic_commands_data_dir, tmp_path
):
    args = fixtures_train.gin_args(
        ["mel", "datasets/synthetic_commands"], _bindings(synthetic_commands_data_dir)
    )
    workdir = tmp_path / "cluster"
    # Worker 1 dies (os._exit, like kill -9) in the middle of epoch 2 (5 batches an epoch);
    # worker 0 then waits on a collective that never completes, and is killed too.
    crashing = _start_cluster(
        args,
        workdir,
        faults={
            1: [
                "train.extra_callbacks = [@CrashAfterBatches()]",
                "CrashAfterBatches.num_batches = 7",
            ]
        },
    )
    code, out, err = _finish(crashing[1:])[0]
    assert code == 17, "worker 1:\n" + "\n".join((out + err).splitlines()[-60:])
    try:
        crashing[0].wait(timeout=5)
    except subprocess.TimeoutExpired:
        crashing[0].kill()
    _finish(crashing[:1])
    with open(workdir / "backup" / "training_metadata.json") as f:
        assert json.load(f)["epoch"] == 1  # the last completed epoch
    assert not (workdir / "metrics.json").exists()

    # The same command on a restarted cluster resumes from there and finishes.
    outputs = _finish(_start_cluster(args, workdir))
    for index, (code, out, err) in enumerate(outputs):
        assert code == 0, f"worker {index}:\n" + "\n".join((out + err).splitlines()[-60:])
    assert _epochs_logged(workdir) == [0, 1]  # epoch 0 was not trained again
    # Only the chief (worker 0) wrote metrics and the export into the workdir.
    assert (workdir / "metrics.json").exists() and (workdir / "export").exists()
    non_chief = workdir / "non_chief_tmp"
    assert not (non_chief / "metrics.json").exists() and not (non_chief / "export").exists()
    chief = fixtures_train.h5_arrays(workdir / "checkpoints" / "last.weights.h5")
    other = fixtures_train.h5_arrays(non_chief / "checkpoints" / "last.weights.h5")
    assert chief.keys() == other.keys() and chief
    for name in chief:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
    # The same global batch on one uninterrupted worker gives the same weights.
    single = fixtures_train.run_main(args + [f"--workdir={tmp_path / 'single'}"])
    assert single.returncode == 0, fixtures_train.describe(single)
    alone = fixtures_train.h5_arrays(tmp_path / "single" / "checkpoints" / "last.weights.h5")
    for name in chief:
        scale = np.max(np.abs(alone[name])) + 1e-12
        assert np.max(np.abs(chief[name] - alone[name])) / scale < 1e-4, name
    assert os.path.exists(workdir / "checkpoints" / "best.weights.h5")

"""A real 2-worker MultiWorkerMirroredStrategy cluster on 127.0.0.1 (two processes)."""

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


def test_two_workers_train_like_one_and_only_the_chief_writes(
    synthetic_commands_data_dir, tmp_path
):
    args = fixtures_train.gin_args(
        ["mel", "datasets/synthetic_commands"], _bindings(synthetic_commands_data_dir)
    )
    workdir = tmp_path / "cluster"
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(2):
        env = fixtures_train.subprocess_env(
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        )
        workers.append(
            subprocess.Popen(  # pylint: disable=consider-using-with
                [
                    sys.executable,
                    "-m",
                    "experiments.main",
                    *args,
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
    outputs = []
    for worker in workers:
        try:
            out, err = worker.communicate(timeout=600)
        finally:
            if worker.poll() is None:
                worker.kill()
        outputs.append((worker.returncode, out, err))
    for index, (code, out, err) in enumerate(outputs):
        assert code == 0, f"worker {index}:\n" + "\n".join((out + err).splitlines()[-60:])
    # Only the chief (worker 0) wrote metrics and the export into the workdir.
    assert (workdir / "metrics.json").exists() and (workdir / "export").exists()
    non_chief = workdir / "non_chief_tmp"
    assert not (non_chief / "metrics.json").exists() and not (non_chief / "export").exists()
    chief = fixtures_train.h5_arrays(workdir / "checkpoints" / "last.weights.h5")
    other = fixtures_train.h5_arrays(non_chief / "checkpoints" / "last.weights.h5")
    assert chief.keys() == other.keys() and chief
    for name in chief:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
    # The same global batch on one worker gives the same weights.
    single = fixtures_train.run_main(args + [f"--workdir={tmp_path / 'single'}"])
    assert single.returncode == 0, fixtures_train.describe(single)
    alone = fixtures_train.h5_arrays(tmp_path / "single" / "checkpoints" / "last.weights.h5")
    for name in chief:
        scale = np.max(np.abs(alone[name])) + 1e-12
        assert np.max(np.abs(chief[name] - alone[name])) / scale < 1e-4, name
    assert os.path.exists(workdir / "checkpoints" / "best.weights.h5")

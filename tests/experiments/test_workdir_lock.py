"""One run per workdir: a second run is refused, naming the first; a killed run's lock goes."""

import os
import signal
import subprocess
import sys

import fixtures_train
import pytest

from experiments import workdir_lock


def test_a_second_lock_on_a_workdir_is_refused_and_released_after(tmp_path):
    with workdir_lock.WorkdirLock(str(tmp_path)):
        with pytest.raises(workdir_lock.WorkdirInUseError, match=f"process {os.getpid()} on"):
            with workdir_lock.WorkdirLock(str(tmp_path)):
                pass
    with workdir_lock.WorkdirLock(str(tmp_path)):  # released on exit
        pass


def test_a_run_on_a_busy_workdir_is_refused_before_training(synthetic_commands_data_dir, tmp_path):
    workdir = tmp_path / "busy"
    holder = subprocess.Popen(  # pylint: disable=consider-using-with
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from experiments import workdir_lock\n"
            f"with workdir_lock.WorkdirLock({str(workdir)!r}):\n"
            "    print('locked', flush=True)\n"
            "    time.sleep(600)\n",
        ],
        cwd=fixtures_train.REPO_ROOT,
        env=fixtures_train.subprocess_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = [f"--workdir={workdir}"] + fixtures_train.gin_args(
            ["mel", "datasets/synthetic_commands"],
            fixtures_train.tiny_bindings(synthetic_commands_data_dir),
        )
        refused = fixtures_train.run_main(args)
        assert refused.returncode != 0
        assert f"in use by process {holder.pid}" in refused.stderr, fixtures_train.describe(refused)
        assert "Traceback" not in refused.stderr
        assert not (workdir / "checkpoints").exists()
        # kill -9 leaves no stale lock: the OS drops it with the process.
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        finished = fixtures_train.run_main(args + ["--gin_bindings=run_experiment.export = False"])
        assert finished.returncode == 0, fixtures_train.describe(finished)
        assert (workdir / "metrics.json").exists()
    finally:
        if holder.poll() is None:
            holder.kill()


def test_an_unwritable_workdir_fails_before_any_data_is_read(tmp_path):
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        if os.access(readonly, os.W_OK):  # root ignores permissions
            pytest.skip("this user can write to read-only folders")
        with pytest.raises(workdir_lock.WorkdirNotWritableError, match="Cannot write to the"):
            with workdir_lock.WorkdirLock(str(readonly / "run")):
                pass
    finally:
        readonly.chmod(0o755)


def test_a_workdir_under_a_file_fails_with_a_clear_error(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(workdir_lock.WorkdirNotWritableError, match="a_file/run"):
        with workdir_lock.WorkdirLock(str(tmp_path / "a_file" / "run")):
            pass

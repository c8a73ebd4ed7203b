"""Every snippet of README.md runs as written, so the README cannot drift from the code.

The Python snippets run in fresh processes, in a scratch directory, against the workdir of
README command 1 (the quickstart) made tiny with `fixtures_train.tiny_bindings`: the
snippets' ``/tmp/leaf_quickstart`` is replaced by that workdir. Shell lines:

- ``pip install ...`` is not run here; `.ci/run` runs README command 2 verbatim
  (`test_ci_runs_the_readme_test_command`), which installs the package.
- ``python -m experiments.main ...`` runs with the tiny bindings appended; a command with a
  ``/path/to/`` placeholder must instead stop before training with an error naming it.
- ``tensorboard --logdir DIR`` runs as ``tensorboard --inspect --logdir DIR`` (the server
  itself never exits) and must find the quickstart's event files.
- ``python benchmarks/benchmark_frontends.py ...`` runs with one small configuration
  appended (argparse keeps the last value of a repeated option).
"""

import os
import re
import shlex
import subprocess
import sys

import fixtures_train
import pytest

README = os.path.join(fixtures_train.REPO_ROOT, "README.md")
QUICKSTART_WORKDIR = "/tmp/leaf_quickstart"
MAX_WORDS = 2000


def _read_readme():
    with open(README) as f:
        return f.read()


def fenced_blocks(text, language):
    """The code of every ```<language> fenced block of a Markdown text, in order."""
    pattern = re.compile(r"^```" + re.escape(language) + r"\n(.*?)^```", re.MULTILINE | re.DOTALL)
    return pattern.findall(text)


def shell_commands(text):
    """Every command line of the README's bash blocks (comments dropped, `\\` joined)."""
    commands = []
    for block in fenced_blocks(text, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


PYTHON_SNIPPETS = fenced_blocks(_read_readme(), "python")
COMMANDS = shell_commands(_read_readme())


def _split_and(command):
    return [part.strip() for part in command.split("&&")]


def _run(arguments, cwd, timeout=600):
    return subprocess.run(
        arguments,
        cwd=cwd,
        env=fixtures_train.subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _main_arguments(command):
    """The arguments of a ``python -m experiments.main`` command, shell-quoted as written."""
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "experiments.main"], command
    return words[3:]


@pytest.fixture(scope="module")
def quickstart_workdir(synthetic_commands_data_dir, tmp_path_factory):
    """README command 1's training and export, tiny, in a scratch workdir."""
    setup = [c for c in COMMANDS if "gin/quickstart.gin" in c and c.startswith("pip install")]
    assert len(setup) == 1, COMMANDS
    train_command = _split_and(setup[0])[1]
    workdir = str(tmp_path_factory.mktemp("readme") / "leaf_quickstart")
    arguments = [a.replace(QUICKSTART_WORKDIR, workdir) for a in _main_arguments(train_command)]
    bindings = fixtures_train.tiny_bindings(synthetic_commands_data_dir) + ["export.tflite = True"]
    process = _run(
        [sys.executable, "-m", "experiments.main", *arguments]
        + [f"--gin_bindings={b}" for b in bindings],
        cwd=fixtures_train.REPO_ROOT,
    )
    assert process.returncode == 0, fixtures_train.describe(process)
    return workdir, process


def test_readme_is_short_and_speaks_to_users():
    text = _read_readme()
    assert len(text.split()) <= MAX_WORDS
    for phrase in ("../shared", "the issue", "target"):
        assert phrase not in text, phrase
    assert PYTHON_SNIPPETS and COMMANDS


def test_ci_runs_the_readme_test_command():
    with open(os.path.join(fixtures_train.REPO_ROOT, ".ci", "run")) as f:
        ci_lines = f.read().splitlines()
    test_commands = [c for c in COMMANDS if "tests/run_all_backends.py" in c]
    assert test_commands and test_commands[0] in ci_lines


def test_quickstart_ends_with_a_summary_and_no_error_lines(quickstart_workdir):
    workdir, process = quickstart_workdir
    output = process.stdout + process.stderr
    for alarming in ("cuInit", "CUDA error", "Traceback", "ran out of data", "deprecated"):
        assert alarming not in output, (alarming, fixtures_train.describe(process))
    summary = process.stdout[process.stdout.index("Finished in") :]
    assert "Test (test split" in summary and "accuracy" in summary
    assert "Best epoch: 1" in summary
    assert os.path.join(workdir, "export") in summary
    assert f"tensorboard --logdir {os.path.join(workdir, 'tensorboard')}" in summary


@pytest.mark.parametrize("index", range(len(PYTHON_SNIPPETS)))
def test_python_snippet_runs(index, quickstart_workdir, tmp_path):
    workdir, _ = quickstart_workdir
    code = PYTHON_SNIPPETS[index].replace(QUICKSTART_WORKDIR, workdir)
    process = _run([sys.executable, "-c", code], cwd=tmp_path)
    assert process.returncode == 0, f"README snippet {index}:\n{code}\n" + fixtures_train.describe(
        process
    )


def _commands(prefix):
    return [c for c in COMMANDS if c.startswith(prefix)]


def test_training_commands_run(quickstart_workdir, synthetic_commands_data_dir, tmp_path):
    commands = [c for c in _commands("python -m experiments.main") if "--help" not in c]
    assert commands
    for index, command in enumerate(commands):
        arguments = _main_arguments(command)
        workdir = tmp_path / f"work{index}"  # a fresh workdir per command, as users would
        placeholder = re.search(r"/path/to/[\w./-]*", command)
        if placeholder:
            # A folder users replace with theirs: it must fail at once, naming it.
            bindings = ["train.num_epochs = 1", "export.tflite = False"]
        else:
            bindings = fixtures_train.tiny_bindings(synthetic_commands_data_dir)
            if "multitask_quickstart" in command:  # its tasks bind their datasets by scope
                bindings += [
                    "events/load_task.dataset = 'synthetic_commands/tiny'",
                    "family/load_task.dataset = 'synthetic_commands/family_tiny'",
                ]
        arguments = [re.sub(r"^--workdir=.*", f"--workdir={workdir}", a) for a in arguments]
        process = _run(
            [sys.executable, "-m", "experiments.main", *arguments]
            + [f"--gin_bindings={b}" for b in bindings],
            cwd=fixtures_train.REPO_ROOT,
        )
        if placeholder:
            assert process.returncode != 0, command
            assert placeholder.group(0) in process.stderr, fixtures_train.describe(process)
            assert "Traceback" not in process.stderr, fixtures_train.describe(process)
            continue
        assert process.returncode == 0, command + "\n" + fixtures_train.describe(process)
        with open(workdir / "operative_config.gin") as f:
            operative = f.read()
        for config in re.findall(r"--gin_config=gin/(\w+)\.gin", command)[1:]:
            # A frontend file given last swaps the frontend only.
            frontend = {"mel": "MelFilterbanks"}.get(config)
            if frontend:
                assert f"AudioClassifier.frontend = @{frontend}()" in operative
                assert "AudioClassifier.use_batch_norm = False" in operative  # quickstart's


def test_help_command_lists_datasets_gin_files_and_strategies():
    (command,) = [c for c in COMMANDS if c.endswith("--help")]
    process = _run([sys.executable, *shlex.split(command)[1:]], cwd=fixtures_train.REPO_ROOT)
    assert process.returncode == 0, fixtures_train.describe(process)
    for expected in ("--gin_config", "gin/quickstart.gin", "gin/datasets/speech_commands.gin"):
        assert expected in process.stdout
    for expected in ("synthetic_commands", "speech_commands_folder", "mirrored", "multi_worker"):
        assert expected in process.stdout
    assert "cuInit" not in process.stdout + process.stderr


def test_tensorboard_command_reads_the_quickstart_logs(quickstart_workdir):
    workdir, _ = quickstart_workdir
    (command,) = _commands("tensorboard")
    words = [w.replace(QUICKSTART_WORKDIR, workdir) for w in shlex.split(command)]
    tensorboard = os.path.join(os.path.dirname(sys.executable), words[0])
    process = _run([tensorboard, "--inspect", *words[1:]], cwd=fixtures_train.REPO_ROOT)
    assert process.returncode == 0, fixtures_train.describe(process)
    assert "gabor_center_hz" in process.stdout, process.stdout[-2000:]


def test_benchmark_command_runs(tmp_path):
    (command,) = _commands("python benchmarks/benchmark_frontends.py")
    small = ["--frontends", "mel", "--backends", "tensorflow", "--batch-configs", "2x1"]
    small += ["--repeats", "1", "--warmup", "1"]
    process = _run(
        [sys.executable, *shlex.split(command)[1:], *small], cwd=fixtures_train.REPO_ROOT
    )
    assert process.returncode == 0, fixtures_train.describe(process)
    assert "| tensorflow | mel |" in process.stdout

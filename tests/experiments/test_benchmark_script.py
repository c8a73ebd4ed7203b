"""benchmarks/benchmark_frontends.py: one real (tiny) run and its memory figures.

The benchmark is run by hand for the README; this only checks that it
runs and that its "step buffers" figure is XLA's buffer assignment (parsed
from the dump the worker asks for), never timings.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "benchmark_frontends.py")


def _run_benchmark(tmp_path, *arguments, env=None):
    """One tiny run (2 clips of 0.5 s, one warm-up, one timed step) of the script with
    `arguments`: its JSON rows and the finished process."""
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, SCRIPT, *arguments, "--batch-configs", "2x0.5", "--repeats", "1"]
        + ["--warmup", "1", "--json", str(out), "--markdown"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text()), proc


def test_temp_bytes_are_read_from_the_step_buffer_assignment(tmp_path, load_benchmark):
    benchmark = load_benchmark("benchmark_frontends")
    suffix = "__XlaMustCompile.cpu_after_optimizations-buffer-assignment.txt"
    step = tmp_path / f"module_0001.a_inference_step_12{suffix}"
    step.write_text(
        "BufferAssignment:\n"
        "allocation 0: size 4000, parameter 0, shape |f32[1000]|:\n"
        "allocation 7: size 139300348, preallocated-temp:\n"
        " value: <1 fusion @0> (size=64,offset=0): f32[16]{0}\n"
    )
    other = tmp_path / f"module_0002.a_inference_other_3{suffix}"
    other.write_text("allocation 3: size 999999999, preallocated-temp:\n")
    assert benchmark._xla_dump_temp_bytes(str(tmp_path)) == 139300348  # pylint: disable=protected-access
    empty = tmp_path / "empty"
    empty.mkdir()
    assert benchmark._xla_dump_temp_bytes(str(empty)) is None  # pylint: disable=protected-access


def test_a_tiny_tensorflow_run_reports_xla_buffers(tmp_path):
    pytest.importorskip("tensorflow")
    results, proc = _run_benchmark(
        tmp_path,
        "--backends",
        "tensorflow",
        "--frontends",
        "mel",
        "leaf_band_limited",
        env={"TMPDIR": str(tmp_path)},
    )
    assert [r["frontend"] for r in results] == ["mel", "leaf_band_limited"]
    for result in results:
        assert "error" not in result, result
        # XLA's temp buffers: positive, and within TF's allocator peak (which counts
        # whole pool chunks). Without oneDNN (TensorFlow's default on CPUs without
        # AVX-512) the CPU allocator keeps no statistics: the peak is None.
        assert result["xla_temp_mb"] > 0
        if result["tf_allocator_peak_mb"] is not None:
            assert result["xla_temp_mb"] <= result["tf_allocator_peak_mb"]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| tensorflow")]
    assert len(rows) == 2
    # Each row once: stderr reports progress, not rows that 2>&1 would show twice.
    assert not [line for line in proc.stderr.splitlines() if line.startswith("|")]
    assert proc.stderr.count("done: tensorflow") == 2
    header = proc.stdout.splitlines()[0]
    assert all(row.count("|") == header.count("|") for row in rows)
    # The dump folders (TMPDIR of the run) are deleted.
    assert not [name for name in os.listdir(tmp_path) if name.startswith("xla_dump_")]


def _stand_in_checkout(checkout, module_path, source):
    """A checkout folder holding one package module (`package/module.py`)."""
    package = checkout / os.path.dirname(module_path)
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (checkout / module_path).write_text(source)
    return checkout


_FAKE_PORT = '''
import torch


class Leaf(torch.nn.Module):
    """Stands in for the EfficientLEAF repo's model.leaf.Leaf: one weight."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        frames = x.reshape(x.shape[0], -1, 160)
        return self.scale * torch.mean(frames ** 2, dim=-1)[:, None]
'''


def test_the_pytorch_port_runs_from_its_checkout_in_eager_torch(tmp_path):
    pytest.importorskip("torch")
    checkout = _stand_in_checkout(tmp_path / "EfficientLEAF", "model/leaf.py", _FAKE_PORT)
    results, _ = _run_benchmark(
        tmp_path,
        "--backends",
        "tensorflow",
        "jax",
        "--frontends",
        "port_leaf",
        "--port-path",
        str(checkout),
    )
    # PyTorch code: one row per configuration, whatever --backends says.
    assert len(results) == 1, results
    (result,) = results
    assert "error" not in result, result
    assert (result["backend"], result["compile"]) == ("torch", "eager")
    assert result["time_s"] > 0 and result["audio_s_per_s"] > 0


_FAKE_LEAF_AUDIO = '''
import tensorflow as tf


class _Frontend(tf.Module):
    """Stands in for an original frontend: one weight, 160-sample frames.

    (A tf.Module: the worker runs the original with tf_keras, which the
    test environment need not have.)
    """

    def __init__(self):
        super().__init__()
        self.scale = tf.Variable(1.0)

    def __call__(self, x):
        frames = tf.reshape(x, (tf.shape(x)[0], -1, 160))
        return self.scale * tf.reduce_mean(frames ** 2, axis=-1)[:, :, None]


# The class names of google-research/leaf-audio's leaf_audio/frontend.py.
class Leaf(_Frontend): pass
class MelFilterbanks(_Frontend): pass
class TimeDomainFilterbanks(_Frontend): pass
class SincNet(_Frontend): pass
class SincNetPlus(_Frontend): pass
'''


def test_every_original_frontend_runs_from_its_checkout(tmp_path, load_benchmark):
    pytest.importorskip("tensorflow")
    checkout = _stand_in_checkout(
        tmp_path / "leaf-audio", "leaf_audio/frontend.py", _FAKE_LEAF_AUDIO
    )
    benchmark = load_benchmark("benchmark_frontends")
    results, _ = _run_benchmark(
        tmp_path,
        "--backends",
        "tensorflow",
        "--frontends",
        *benchmark.LEAF_AUDIO_FRONTENDS,
        "--leaf-audio-compile",
        "graph",
        "--leaf-audio-path",
        str(checkout),
    )
    assert [r["frontend"] for r in results] == list(benchmark.LEAF_AUDIO_FRONTENDS)
    for result in results:
        assert "error" not in result, result
        assert result["time_s"] > 0


_FAKE_EFFICIENTLEAF = '''
import json
import os

import torch


class EfficientLeaf(torch.nn.Module):
    """Stands in for model.efficientleaf.EfficientLeaf; records its kwargs."""

    def __init__(self, **kwargs):
        super().__init__()
        with open(os.path.join(os.path.dirname(__file__), "kwargs.json"),
                  "w") as f:
            json.dump(kwargs, f)
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        frames = x.reshape(x.shape[0], -1, 160)
        return self.scale * torch.mean(frames ** 2, dim=-1)[:, None]
'''


def test_efficientleaf_runs_in_its_papers_final_configuration(tmp_path):
    """8 groups, window factor 6, stride factor 16: the configuration of the
    EfficientLEAF paper's final runs (its experiments.sh), not the class
    defaults, whose stride-1 high groups are ~15x slower."""
    pytest.importorskip("torch")
    checkout = _stand_in_checkout(
        tmp_path / "EfficientLEAF", "model/efficientleaf.py", _FAKE_EFFICIENTLEAF
    )
    (result,), _ = _run_benchmark(
        tmp_path,
        "--backends",
        "tensorflow",
        "--frontends",
        "port_efficientleaf_8g",
        "--port-path",
        str(checkout),
    )
    paper = {"num_groups": 8, "conv_win_factor": 6, "stride_factor": 16}
    received = json.loads((checkout / "model" / "kwargs.json").read_text())
    assert received == paper
    assert "error" not in result, result
    assert result["frontend_kwargs"] == paper
    assert result["time_s"] > 0


def test_the_pytorch_port_is_skipped_with_a_reason_without_its_checkout(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            SCRIPT,
            "--backends",
            "tensorflow",
            "--frontends",
            "port_leaf",
            "port_efficientleaf_8g",
            "--batch-configs",
            "2x0.5",
            "--port-path",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"no model/leaf.py under {str(tmp_path)!r}" in proc.stderr
    assert "| torch |" not in proc.stdout


def test_a_tiny_keras_torch_run_times_its_step(tmp_path):
    pytest.importorskip("torch")
    results, _ = _run_benchmark(
        tmp_path, "--backends", "torch", "--frontends", "mel", "leaf_band_limited"
    )
    assert [r["frontend"] for r in results] == ["mel", "leaf_band_limited"]
    for result in results:
        assert "error" not in result, result
        assert (result["backend"], result["compile"]) == ("torch", "eager")
        assert result["time_s"] > 0 and result["cuda_peak_mb"] is None


def test_gpu_rows_without_a_gpu_fail_and_say_why(tmp_path):
    jax = pytest.importorskip("jax")
    torch = pytest.importorskip("torch")
    if jax.devices()[0].platform == "gpu" or torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    checkout = _stand_in_checkout(tmp_path / "EfficientLEAF", "model/leaf.py", _FAKE_PORT)
    results, proc = _run_benchmark(
        tmp_path,
        "--device",
        "gpu",
        "--backends",
        "jax",
        "torch",
        "--frontends",
        "mel",
        "port_leaf",
        "--port-path",
        str(checkout),
    )
    errors = {(r["backend"], r["frontend"]): r.get("error", "") for r in results}
    assert set(errors) == {("torch", "port_leaf"), ("jax", "mel"), ("torch", "mel")}
    # A row that would have timed the CPU fails instead, naming what the framework saw.
    assert "JAX computes on cpu" in errors["jax", "mel"]
    assert "sees no CUDA device" in errors["torch", "mel"]
    assert "sees no CUDA device" in errors["torch", "port_leaf"]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[2] for row in rows] == ["jax.jit", "eager", "eager"]

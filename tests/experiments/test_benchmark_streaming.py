"""benchmarks/benchmark_streaming.py runs end to end (its timings are for the README, never
checked here)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "benchmark_streaming.py")


def test_a_tiny_streaming_benchmark_reports_one_frame_per_10_ms_step(tmp_path):
    out = tmp_path / "results.json"
    process = subprocess.run(
        [
            sys.executable,
            SCRIPT,
            "--backends=tensorflow",
            "--frontends=mel_pcen",
            "--chunk-ms=10",
            "--steps=3",
            "--warmup=1",
            f"--json={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-2000:]
    (result,) = json.loads(out.read_text())
    assert result["frontend"] == "mel_pcen" and result["chunk_ms"] == 10.0
    assert result["frames_per_step"] == 1  # a warm stream emits one frame per 10 ms hop
    assert result["latency_samples"] == 241
    assert result["step_ms"] > 0 and result["real_time_factor"] > 0

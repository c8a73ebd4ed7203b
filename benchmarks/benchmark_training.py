"""End-to-end training throughput of the quickstart model: step, input pipeline, both.

What an epoch costs, per frontend (`mel`: gin/mel.gin; `leaf`: gin/leaf.gin, `Leaf()`, the
band-limited engine at tolerance 1e-4; `exact`: gin/leaf_exact.gin, the fused exact engine;
`fast`: gin/leaf_band_limited.gin, the band-limited engine at its fastest setting),
and whether the input pipeline or the training step limits it.

The model, optimizer and data are built through the trainer's own code path, not
re-implemented: for each frontend the script parses gin/quickstart.gin (+ the frontend's
file) with `experiments.experiment.parse_gin` (so gin/common.gin comes first, as in
`experiments.main`), binds the data to a folder of WAV files (``load_task.dataset =
'audio_folder'``), loads it with `experiments.data.load_task` and builds, compiles and warms
up the model with `experiments.train.train` (its `AudioClassifier`, Adam recipe, loss,
metrics and ``train.jit_compile``, "auto" unless `--jit-compile` binds it: Keras's "auto" is
`jax.jit` on JAX, and on TensorFlow XLA with a GPU but a plain `tf.function` graph on a
CPU-only machine; the table's "compile" column says which ran). The timed steps
then run Keras `model.fit` on that model, so its compiled train function, as `train` calls
it, with the trainer's only per-step callback (`NaNGuard`). Figures:

1. **pipeline**: iterating the training input pipeline alone (`task.train`, repeated as
   the trainer repeats it: TFRecord read → parse → shuffle → random crop → loudness
   normalization → batch, with its parallel maps and prefetch), examples/s over
   `--pipeline-batches` batches; also with every tf.data stage on one thread, to show
   what its parallelism buys.
2. **end to end**: `fit` over that pipeline (``task.train.repeat()``, what the trainer fits
   when ``train.steps_per_epoch`` is set); in each repeat the first `warmup` steps are left
   out and the next `steps` timed by a callback, from the end of one step to the end of
   another, so `fit`'s set-up and epoch end are excluded.
3. **step**: the same, on one batch of the pipeline held in memory
   (``take(1).cache().repeat()``: same shapes and dtypes, so no retrace): the step alone.
   End-to-end and step repeats alternate, so a load change on the machine hits both alike;
   each figure is the median of `--repeats`.
4. **first load**: the one-off decode + resample of every WAV file into the TFRecord cache
   that every later epoch reads (`experiments.data.local_audio.decode_to_cache`), files/s.

The bottleneck column compares 1 and 3; "end-to-end / step" near 1 says the pipeline is
hidden behind the step (prefetch overlaps them). Validation is left out
(``task.validation = None``): it is not part of an epoch's training throughput.

The data: `--files-per-class` 1 s clips of each of the ten `synthetic_commands` classes
(its generator), written as 16-bit WAV at `--wav-rate` (44.1 kHz by default, so the cache
resamples them to 16 kHz), split 80/10/10 by `audio_folder` (20 per class: 160 training
clips, 10 full batches of 16). So small a split restarts the pipeline (shuffle buffer
refill, prefetch ramp-up) every 10 batches, where Speech Commands' does every 5,300: the
pipeline figure is a lower bound.

Usage (from the repository root):
    python benchmarks/benchmark_training.py --frontends mel leaf exact fast --steps 20 \
        --warmup 3 --repeats 3 --batch-size 16 --backend tensorflow --markdown

`--malloc` (default ``reuse``, as `experiments.main` sets it on TensorFlow; ``system``:
glibc's defaults) chooses the allocator settings of `experiments.allocator`. `--backend jax`
runs the same trainer on JAX (the trainer supports it; tf.data still feeds it);
`--jit-compile true|false` binds ``train.jit_compile``. Progress goes to stderr, the
tables to stdout.
"""

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmark_frontends import _fmt  # noqa: E402  pylint: disable=wrong-import-position

# Frontend name → the gin files read after gin/quickstart.gin (which includes gin/leaf.gin).
FRONTEND_GIN = {
    "mel": ["gin/mel.gin"],
    "leaf": [],
    "exact": ["gin/leaf_exact.gin"],
    "fast": ["gin/leaf_band_limited.gin"],
}
FRONTENDS = tuple(FRONTEND_GIN)
DISPLAY_NAMES = {
    "mel": "mel (gin/mel.gin)",
    "leaf": "LEAF (default, tolerance 1e-4)",
    "exact": "LEAF exact (fused)",
    "fast": "LEAF fast (band_limited)",
}
QUICKSTART_GIN = "gin/quickstart.gin"
# Speech Commands v0.02's training split.
SPEECH_COMMANDS_TRAIN = 84843


def log(message):
    print(message, file=sys.stderr, flush=True)


def write_wav_dataset(root, files_per_class, wav_rate, seed=0):
    """Writes `files_per_class` synthetic_commands clips per class as WAVs at `wav_rate`.

    Returns:
        The number of files written.
    """
    import numpy as np  # pylint: disable=import-outside-toplevel
    from scipy import signal  # pylint: disable=import-outside-toplevel

    from experiments.data import synthetic_commands  # pylint: disable=import-outside-toplevel

    count = 0
    for label, name in enumerate(synthetic_commands.CLASS_NAMES):
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        for index in range(files_per_class):
            clip = synthetic_commands.synthesize_clip(
                label, np.random.default_rng([seed, label, index])
            )
            if wav_rate != synthetic_commands.SAMPLE_RATE:
                clip = signal.resample_poly(
                    clip.astype(np.float64), wav_rate, synthetic_commands.SAMPLE_RATE
                )
                clip = np.clip(np.round(clip), -32768, 32767).astype("<i2")
            with wave.open(os.path.join(folder, f"{index:04d}.wav"), "wb") as writer:
                writer.setnchannels(1)
                writer.setsampwidth(2)
                writer.setframerate(wav_rate)
                writer.writeframes(clip.astype("<i2").tobytes())
            count += 1
    return count


def parse_frontend_gin(frontend, bindings):
    """Parses the quickstart config with `frontend`'s file, as `experiments.main` would."""
    import gin  # pylint: disable=import-outside-toplevel
    from experiments import experiment  # pylint: disable=import-outside-toplevel

    gin.clear_config()
    experiment.parse_gin([QUICKSTART_GIN] + FRONTEND_GIN[frontend], bindings)


def make_step_timer(warmup, steps):
    """A Keras callback that times `steps` steps after `warmup` in every epoch.

    Its ``windows`` list gets, per epoch, the seconds from the end of step `warmup` to the
    end of step `warmup + steps`: the steps alone, without `fit`'s set-up and epoch end.
    """
    import keras  # pylint: disable=import-outside-toplevel

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.windows = []
            self._stamps = {}

        def on_epoch_begin(self, epoch, logs=None):
            self._stamps = {}

        def on_train_batch_end(self, batch, logs=None):
            # Reading the loss waits for the step: JAX dispatches asynchronously.
            if logs and "loss" in logs:
                float(logs["loss"])
            if batch in (warmup - 1, warmup + steps - 1):
                self._stamps[batch] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if len(self._stamps) == 2:
                self.windows.append(self._stamps[warmup + steps - 1] - self._stamps[warmup - 1])

    return StepTimer()


def time_pipelines(datasets, batch_size, warmup, batches, repeats):
    """Seconds of `batches` batches of each of `datasets` (repeated), after `warmup`.

    The datasets take turns, `repeats` times, so that a load change on the machine hits
    them alike.

    Returns:
        {name: [seconds of each repeat]}.
    """
    iterators = {name: iter(dataset.repeat()) for name, dataset in datasets.items()}
    for iterator in iterators.values():
        for _ in range(warmup):
            next(iterator)
    windows = {name: [] for name in datasets}
    for _ in range(repeats):
        for name, iterator in iterators.items():
            start = time.perf_counter()
            for _ in range(batches):
                waveforms, _ = next(iterator)
            windows[name].append(time.perf_counter() - start)
            if int(waveforms.shape[0]) != batch_size:
                log(f"warning: a partial batch of {waveforms.shape[0]} in the pipeline")
    return windows


def rate(windows, examples):
    """(median seconds of the windows, examples per second at that median)."""
    median = statistics.median(windows)
    return median, examples / median


def run_frontend(frontend, args, bindings, workdir):
    """Times `frontend`'s quickstart model: over the pipeline and on an in-memory batch.

    `experiments.train.train` builds, compiles and warms up the model (`warmup` steps over
    the pipeline, the compilation among them); then `repeats` times, alternately so that a
    load change on the machine hits both alike, one `fit` over the pipeline (end to end)
    and one on the in-memory batch (the step), each of `warmup` + `steps` steps.
    """
    import keras  # pylint: disable=import-outside-toplevel

    from experiments import data  # pylint: disable=import-outside-toplevel
    from experiments import nan_guard  # pylint: disable=import-outside-toplevel
    from experiments import train as train_lib  # pylint: disable=import-outside-toplevel

    parse_frontend_gin(frontend, bindings)
    task = dataclasses.replace(data.load_task(), validation=None)
    # The backend Keras runs on, not the flag: KERAS_BACKEND must be read before its import.
    result = {"frontend": frontend, "backend": keras.backend.backend(), "batch": args.batch_size}
    log(f"{frontend}: building, compiling and warming up through experiments.train.train")
    started = time.perf_counter()
    model = train_lib.train(
        task, workdir, num_epochs=1, steps_per_epoch=args.warmup, verbose=0
    ).model
    result["train_setup_s"] = time.perf_counter() - started
    result["params"] = int(model.count_params())
    result["compile"] = compile_label(result["backend"], model.jit_compile)
    # What the trainer fits with `steps_per_epoch` set, and one of its batches held in memory
    # (same shapes and dtypes: the compiled train function is reused, not retraced).
    inputs = {"e2e": task.train.repeat(), "step": task.train.take(1).cache().repeat()}
    timers = {key: make_step_timer(args.warmup, args.steps) for key in inputs}
    for repeat in range(args.repeats):
        log(f"{frontend}: repeat {repeat + 1}/{args.repeats}")
        # The order alternates too, so that neither always follows the other.
        for key in list(inputs)[:: 1 if repeat % 2 == 0 else -1]:
            model.fit(
                inputs[key],
                epochs=1,
                steps_per_epoch=args.warmup + args.steps,
                # The trainer's only per-step callback; the others act at epoch ends.
                callbacks=[nan_guard.NaNGuard(), timers[key]],
                verbose=0,
                shuffle=False,  # As the trainer: Keras cannot shuffle a tf.data input.
            )
    examples = args.steps * args.batch_size
    for key, timer in timers.items():
        result[f"{key}_windows_s"] = timer.windows
        median, result[f"{key}_examples_per_s"] = rate(timer.windows, examples)
        result[f"{key}_ms"] = 1000.0 * median / args.steps
    return result


def compile_label(backend, jit_compile):
    """How Keras compiled the train function: "XLA" / "graph" (TF), "jax.jit" / "eager"."""
    if backend == "jax":
        return "jax.jit" if jit_compile else "eager"
    return "XLA" if jit_compile else "graph"


def single_threaded(dataset):
    """`dataset` with every tf.data stage on one thread: what its parallelism buys.

    The parallel maps then run one element at a time; prefetch still overlaps the consumer.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)


def run_all(args):
    """Every measurement of `args`; returns (pipeline result, frontend results)."""
    # Before Keras and TensorFlow are imported (synthetic_commands imports both).
    os.environ["KERAS_BACKEND"] = args.backend
    from experiments import allocator  # pylint: disable=import-outside-toplevel
    from experiments import cli  # pylint: disable=import-outside-toplevel

    # As experiments.main does on TensorFlow, unless --malloc system.
    os.environ[allocator.ENVIRONMENT_VARIABLE] = args.malloc
    applied = allocator.reuse_freed_memory()
    log(f"malloc: {'keeps freed memory' if applied else 'glibc defaults'}")

    cli.quiet_tensorflow()
    cli.quiet_libraries()
    from experiments import data  # pylint: disable=import-outside-toplevel

    with contextlib.ExitStack() as stack:
        tmp = args.work_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="leaf_bt_"))
        wav_dir = os.path.join(tmp, "wavs")
        log(f"writing {args.files_per_class} WAV files per class at {args.wav_rate} Hz")
        num_files = write_wav_dataset(wav_dir, args.files_per_class, args.wav_rate)
        # The bindings a user would pass to experiments.main for a folder of WAV files.
        bindings = [
            "load_task.dataset = 'audio_folder'",
            f"load_task.data_dir = {wav_dir!r}",
            f"load_task.cache_dir = {os.path.join(tmp, 'cache')!r}",
            f"load_task.batch_size = {args.batch_size}",
        ]
        if args.jit_compile != "auto":
            bindings.append(f"train.jit_compile = {args.jit_compile == 'true'}")
        # What load_task does first for an audio folder, timed alone (then it finds the cache).
        cache_dir = os.path.join(tmp, "cache")
        started = time.perf_counter()
        files, _ = data.audio_folder.list_files(wav_dir)
        data.local_audio.decode_to_cache(
            files, data.SAMPLE_RATE, cache_dir, f"audio_folder {wav_dir}"
        )
        first_load_s = time.perf_counter() - started
        cached = set(os.listdir(cache_dir))
        parse_frontend_gin(args.frontends[0], bindings)
        task = data.load_task()
        if set(os.listdir(cache_dir)) != cached:  # A new cache key: it decoded again.
            log("warning: load_task did not reuse the cache timed as the first load")
        if task.stats["train/examples"] % args.batch_size:
            log(
                f"warning: {task.stats['train/examples']} training clips are not whole batches "
                f"of {args.batch_size}: the partial batches count as full ones"
            )
        pipeline = {
            "files": num_files,
            "wav_rate": args.wav_rate,
            "train_examples": task.stats.get("train/examples"),
            "first_load_s": first_load_s,
            "first_load_files_per_s": num_files / first_load_s,
        }
        log(f"decoded {num_files} files into the cache in {first_load_s:.1f} s; timing pipeline")
        windows = time_pipelines(
            {"": task.train, "single_thread_": single_threaded(task.train)},
            args.batch_size,
            args.warmup,
            args.pipeline_batches,
            args.repeats,
        )
        for key, values in windows.items():
            pipeline[key + "windows_s"] = values
            _, pipeline[key + "examples_per_s"] = rate(
                values, args.pipeline_batches * args.batch_size
            )
        log(
            f"pipeline: {pipeline['examples_per_s']:.0f} examples/s "
            f"({pipeline['single_thread_examples_per_s']:.0f} on one tf.data thread)"
        )
        results = []
        for frontend in args.frontends:
            workdir = os.path.join(tmp, f"workdir_{frontend}")
            result = run_frontend(frontend, args, bindings, workdir)
            result["pipeline_examples_per_s"] = pipeline["examples_per_s"]
            slower = pipeline["examples_per_s"] < result["step_examples_per_s"]
            result["bottleneck"] = "input pipeline" if slower else "training step"
            results.append(result)
            log(
                f"done: {frontend}: step {result['step_ms']:.1f} ms, "
                f"end to end {result['e2e_examples_per_s']:.0f} examples/s"
            )
    return pipeline, results


def print_tables(pipeline, results, args):
    """The frontend table, then the pipeline's table and its one-off decode."""
    header = (
        f"| backend | compile | frontend | step ms (batch {args.batch_size}) | step examples/s | "
        "pipeline examples/s | end-to-end examples/s | end-to-end / step | "
        f"epoch of {args.epoch_examples} examples (s) | bottleneck |"
    )
    lines = [header, "|" + "---|" * 10] if args.markdown else [header]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['compile']} | {DISPLAY_NAMES[r['frontend']]} | "
            f"{r['step_ms']:.1f} | "
            f"{r['step_examples_per_s']:.0f} | {r['pipeline_examples_per_s']:.0f} | "
            f"{r['e2e_examples_per_s']:.0f} | "
            f"{r['e2e_examples_per_s'] / r['step_examples_per_s']:.2f} | "
            f"{args.epoch_examples / r['e2e_examples_per_s']:.0f} | {r['bottleneck']} |"
        )
    fastest = max((r["step_examples_per_s"] for r in results), default=None)
    lines += ["", "| input pipeline | examples/s | × fastest step |"]
    if args.markdown:
        lines.append("|---|---|---|")
    for label, key in (
        ("as configured (parallel maps, prefetch: AUTOTUNE)", "examples_per_s"),
        ("one tf.data thread (private_threadpool_size=1)", "single_thread_examples_per_s"),
    ):
        value = pipeline[key]
        lines.append(f"| {label} | {value:.0f} | {_fmt(fastest and value / fastest, '.0f')} |")
    if not args.markdown:
        lines = [line.strip("|").replace(" | ", "\t") for line in lines]
    print("\n".join(lines))
    print()
    print(
        f"First load (decode {pipeline['wav_rate']} Hz WAV, resample to 16 kHz, write the "
        f"cache; once per dataset): {pipeline['files']} files in "
        f"{pipeline['first_load_s']:.1f} s = {pipeline['first_load_files_per_s']:.0f} files/s "
        f"(~{args.epoch_examples / pipeline['first_load_files_per_s']:.0f} s for "
        f"{args.epoch_examples} files)."
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frontends", nargs="+", default=list(FRONTENDS), choices=FRONTENDS)
    parser.add_argument("--backend", default="tensorflow", choices=["tensorflow", "jax"])
    parser.add_argument(
        "--jit-compile",
        choices=["auto", "true", "false"],
        default="auto",
        help="train.jit_compile (the trainer's default: auto). With true, TensorFlow "
        "recompiles `fast` at every step (see benchmarks/README.md)",
    )
    parser.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="repeats; reports the median")
    parser.add_argument("--batch-size", type=int, default=16, help="quickstart's: 16")
    parser.add_argument(
        "--pipeline-batches", type=int, default=100, help="batches per timed pipeline repeat"
    )
    parser.add_argument("--files-per-class", type=int, default=20)
    parser.add_argument("--wav-rate", type=int, default=44100, help="WAV sample rate (Hz)")
    parser.add_argument(
        "--epoch-examples",
        type=int,
        default=SPEECH_COMMANDS_TRAIN,
        help="examples per epoch for the epoch-time column (Speech Commands v0.02 train)",
    )
    parser.add_argument(
        "--malloc",
        choices=["system", "reuse"],
        default="reuse",
        help="glibc's malloc settings: experiments.main's (reuse: "
        "experiments.allocator.reuse_freed_memory) or its defaults",
    )
    parser.add_argument("--work-dir", help="keep the WAVs, cache and workdirs here")
    parser.add_argument(
        "--markdown", action="store_true", help="print a README-ready markdown table"
    )
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()
    if min(args.warmup, args.steps, args.repeats, args.pipeline_batches) < 1:
        parser.error("--warmup, --steps, --repeats and --pipeline-batches must be at least 1")
    pipeline, results = run_all(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"pipeline": pipeline, "results": results}, f, indent=1)
    print_tables(pipeline, results, args)


if __name__ == "__main__":
    main()

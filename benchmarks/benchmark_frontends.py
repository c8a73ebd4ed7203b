"""Forward+backward speed and peak memory of the leaf_keras frontends.

Every (backend, frontend, batch configuration) runs in a fresh subprocess with
KERAS_BACKEND set, so that the backend is chosen before Keras is imported and
the memory figures belong to that configuration alone. In each subprocess one
training-like step is compiled:

- tensorflow: `tf.function(jit_compile=True)` (XLA) around a GradientTape
  (`--tf-compile graph` for a plain tf.function graph);
- jax: `jax.jit(jax.value_and_grad(...))` over `stateless_call`;
- torch: eager autograd (no torch.compile).

The step computes `loss = sum(frontend(x) * c)` for a fixed random c and its
gradient with respect to the frontend's trainable weights (and to the input x
for frontends without weights, e.g. MelFilterbanks). Warm-up runs (including
compilation) are excluded; the reported time is the median of `--repeats`
runs of the step, with the result fetched to the host.

Memory: after the warm-up, freed heap is returned to the OS and the kernel's
peak-RSS counter is reset (`5` written to /proc/self/clear_refs), so "step
peak" is the high-water mark of the timed steps minus the resident memory
before the first step: the step's buffers (also those a caching allocator
keeps between steps), without the XLA compiler's memory. "step buffers" is
XLA's own exact figure, the temporary buffers of the compiled step: on JAX
`memory_analysis().temp_size_in_bytes`, on TensorFlow the same allocation
read from XLA's buffer assignment (dumped through `--xla_dump_to`); for a
plain TF graph it is the CPU allocator's peak during the timed steps, which
is also printed for every TF row ("TF allocator peak").

The original google-research/leaf-audio frontends (TensorFlow 2 + tf_keras)
are measured the same way by `--frontends leaf_audio_leaf leaf_audio_mel
leaf_audio_tfbanks leaf_audio_sincnet leaf_audio_sincnet_plus
--leaf-audio-path DIR`, DIR being the folder that contains `leaf_audio/`
(`--leaf-audio-compile graph xla eager`). The PyTorch LEAF port of the
EfficientLEAF repository (CPJKU/EfficientLEAF: its exact `model.leaf.Leaf()`
and its approximate `model.efficientleaf.EfficientLeaf` in the configuration
of the EfficientLEAF paper's final experiments, `EFFICIENTLEAF_KWARGS`) is
measured by `--frontends port_leaf port_efficientleaf_8g --port-path DIR`,
DIR being the folder that contains `model/`, in PyTorch eager autograd
whatever `--backends` says.

`--device gpu` runs every step on the GPU instead (JAX and PyTorch, for the rows of
`benchmarks/gpu_rows.sh`): the inputs live on the GPU, a step ends when the GPU has
finished it, "step buffers" is XLA's temp buffers on JAX and PyTorch's peak CUDA
allocation over the timed steps on torch; a worker that finds no GPU fails its row
instead of timing the CPU.

Usage:
    python benchmarks/benchmark_frontends.py --backends tensorflow jax \
        --repeats 5 --batch-configs 64x1 8x10 --markdown
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_RATE = 16000
# `experiments.allocator.ENVIRONMENT_VARIABLE`: "system" or "reuse", set for every worker.
MALLOC_ENV = "LEAF_KERAS_MALLOC"
# The original's frontends, by benchmark name: leaf-audio's frontend.<class>.
LEAF_AUDIO_CLASSES = {
    "leaf_audio_leaf": "Leaf",
    "leaf_audio_mel": "MelFilterbanks",
    "leaf_audio_tfbanks": "TimeDomainFilterbanks",
    "leaf_audio_sincnet": "SincNet",
    "leaf_audio_sincnet_plus": "SincNetPlus",
}
LEAF_AUDIO_FRONTENDS = tuple(LEAF_AUDIO_CLASSES)
# The PyTorch frontends and the module of the checkout each one imports.
PORT_MODULES = {"port_leaf": "model/leaf.py", "port_efficientleaf_8g": "model/efficientleaf.py"}
PORT_FRONTENDS = tuple(PORT_MODULES)
# The EfficientLEAF configuration its authors settled on (their
# experiments.sh, "eleaf8-wf6-sf16-tbn-a5perband-medfiltapp"): 8 filter
# groups, convolution windows of 6 standard deviations, strides 16x the
# Nyquist-safe minimum; the class's default compression is that run's
# log1p + temporal batch norm with the appended median filter. With the
# class defaults instead (window factor 4.77, stride factor 1) the high
# groups run at stride 1, 9-12x slower on 2 CPU cores.
EFFICIENTLEAF_KWARGS = {"num_groups": 8, "conv_win_factor": 6, "stride_factor": 16}
FRONTENDS = (
    (
        "leaf",
        "leaf_exact",
        "leaf_layers",
        "leaf_band_limited",
        "mel",
        "mel_pcen",
        "tfbanks",
        "sincnet",
        "sincnet_plus",
    )
    + LEAF_AUDIO_FRONTENDS
    + PORT_FRONTENDS
)
DISPLAY_NAMES = {
    "leaf_audio_leaf": "leaf-audio LEAF (original)",
    "leaf_audio_mel": "leaf-audio mel (original)",
    "leaf_audio_tfbanks": "leaf-audio tfbanks (original)",
    "leaf_audio_sincnet": "leaf-audio sincnet (original)",
    "leaf_audio_sincnet_plus": "leaf-audio sincnet_plus (original)",
    "port_leaf": "PyTorch LEAF port (EfficientLEAF repo)",
    "port_efficientleaf_8g": "EfficientLEAF 8 groups (approx.)",
}


def _leaf_keras_frontends():
    """The leaf_keras frontends by benchmark name, with their default (paper) arguments.

    `leaf` is `Leaf()` (the band-limited engine at tolerance 1e-4), `leaf_exact` the
    exact fused engine, `leaf_layers` the exact layer-by-layer engine and
    `leaf_band_limited` the band-limited engine at its fastest setting (~1e-2).
    """
    from leaf_keras import frontend  # pylint: disable=g-import-not-at-top

    return {
        "leaf": frontend.Leaf,
        "leaf_exact": lambda: frontend.Leaf(filterbank="fused"),
        "leaf_layers": lambda: frontend.Leaf(filterbank="layers"),
        "leaf_band_limited": lambda: frontend.Leaf(filterbank="band_limited"),
        "mel": frontend.MelFilterbanks,
        "mel_pcen": frontend.MelPCEN,
        "tfbanks": frontend.TimeDomainFilterbanks,
        "sincnet": frontend.SincNet,
        "sincnet_plus": frontend.SincNetPlus,
    }


def build_frontend(name):
    """Builds the leaf_keras frontend `name` (see `_leaf_keras_frontends`)."""
    return _leaf_keras_frontends()[name]()


def _stub_missing_leaf_audio_imports():
    """Puts empty modules for leaf-audio's dead optional imports in sys.modules.

    leaf_audio imports tensorflow_addons (only for `mean_var_norm=True`) and
    lingvo (only for `spec_augment=True`) at module level; neither installs
    on current TensorFlow. The default frontends use neither, so an empty
    module is enough. A real installed module is always preferred.
    """
    import importlib.util  # pylint: disable=g-import-not-at-top
    import types  # pylint: disable=g-import-not-at-top

    stubbed = []
    if importlib.util.find_spec("tensorflow_addons") is None:
        tfa = types.ModuleType("tensorflow_addons")
        tfa.layers = types.ModuleType("tensorflow_addons.layers")
        sys.modules["tensorflow_addons"] = tfa
        sys.modules["tensorflow_addons.layers"] = tfa.layers
        stubbed.append("tensorflow_addons")
    if importlib.util.find_spec("lingvo") is None:
        lingvo = types.ModuleType("lingvo")
        lingvo.core = types.ModuleType("lingvo.core")
        lingvo.core.spectrum_augmenter = types.ModuleType("lingvo.core.spectrum_augmenter")
        sys.modules["lingvo"] = lingvo
        sys.modules["lingvo.core"] = lingvo.core
        sys.modules["lingvo.core.spectrum_augmenter"] = lingvo.core.spectrum_augmenter
        stubbed.append("lingvo")
    return stubbed


def build_leaf_audio_frontend(name, leaf_audio_path):
    """Builds an original leaf-audio frontend (defaults); returns it + stubs."""
    sys.path.insert(0, os.path.abspath(leaf_audio_path))
    stubbed = _stub_missing_leaf_audio_imports()
    from leaf_audio import frontend  # pylint: disable=g-import-not-at-top

    model = getattr(frontend, LEAF_AUDIO_CLASSES[name])()
    return model, stubbed


def build_port_frontend(name, port_path):
    """Builds the EfficientLEAF repository's PyTorch LEAF or EfficientLEAF.

    `port_leaf` is its exact LEAF port (`model.leaf.Leaf()`: 401-tap conv1d,
    Gaussian pooling conv1d, PCEN with a Python loop over frames);
    `port_efficientleaf_8g` its approximate EfficientLEAF with 8 filter
    groups (strided convolutions, log + temporal batch norm instead of PCEN)
    in the configuration of the paper's final experiments
    (`EFFICIENTLEAF_KWARGS`).
    """
    sys.path.insert(0, os.path.abspath(port_path))
    if name == "port_leaf":
        from model import leaf  # pylint: disable=g-import-not-at-top

        return leaf.Leaf()
    from model import efficientleaf  # pylint: disable=g-import-not-at-top

    return efficientleaf.EfficientLeaf(**EFFICIENTLEAF_KWARGS)


def _proc_status_mb():
    """VmRSS and VmHWM of this process in MB, or None without /proc."""
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return {key: int(fields[key].split()[0]) / 1024.0 for key in ("VmRSS", "VmHWM")}
    except (OSError, KeyError, ValueError):
        return None


def _ru_maxrss_mb():
    import resource  # pylint: disable=g-import-not-at-top

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak_rss():
    """Resets VmHWM (Linux >= 4.0); returns whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    status = _proc_status_mb()
    # The reset sets VmHWM to the current VmRSS; check that it happened.
    return status is not None and status["VmHWM"] <= status["VmRSS"] + 1.0


def _release_free_heap():
    """Returns freed malloc memory to the OS (glibc), so VmRSS before the
    timed steps does not contain warm-up buffers the allocator kept."""
    try:
        import ctypes  # pylint: disable=g-import-not-at-top

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _accelerator(backend, device):
    """The name of the GPU a worker of `backend` computes on (`--device gpu`), or None
    on the CPU; raises RuntimeError, naming what the framework sees, when a GPU is
    asked for and the framework has none."""
    if device == "cpu":
        return None
    if backend == "jax":
        import jax  # pylint: disable=g-import-not-at-top

        first = jax.devices()[0]
        if first.platform != "gpu":
            raise RuntimeError(
                f"--device gpu: JAX computes on {first.platform} (devices {jax.devices()}), "
                "no GPU; install a CUDA build of jax or pass --device cpu"
            )
        return first.device_kind
    if backend == "torch":
        import torch  # pylint: disable=g-import-not-at-top

        if not torch.cuda.is_available():
            raise RuntimeError(
                f"--device gpu: torch {torch.__version__} sees no CUDA device; install a CUDA "
                "build of torch or pass --device cpu"
            )
        return torch.cuda.get_device_name(0)
    raise RuntimeError(f"--device gpu: the GPU rows run on JAX and PyTorch, not {backend}")


def _torch_synchronizer():
    """What a PyTorch step calls last so that its time is the whole step's: waiting
    for the GPU's queued work, or nothing without CUDA (chosen once, not per step)."""
    import torch  # pylint: disable=g-import-not-at-top

    return torch.cuda.synchronize if torch.cuda.is_available() else lambda: None


def _make_tf_step(model, x, cotangent, tf_compile):
    """TensorFlow step (keras 3 or tf_keras model alike)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    wrt_input = not model.trainable_variables
    x_t, c_t = tf.constant(x), tf.constant(cotangent)

    def step(inputs, cot):
        with tf.GradientTape() as tape:
            if wrt_input:
                tape.watch(inputs)
            loss = tf.reduce_sum(model(inputs) * cot)
        sources = [inputs] if wrt_input else model.trainable_variables
        return loss, tape.gradient(loss, sources)

    fn = step if tf_compile == "eager" else tf.function(step, jit_compile=(tf_compile == "xla"))
    dump_dir = os.environ.get(XLA_DUMP_ENV)
    temp_bytes = None
    if tf_compile == "xla" and dump_dir:

        def temp_bytes():
            return _xla_dump_temp_bytes(dump_dir)

    return (lambda: [t.numpy() for t in tf.nest.flatten(fn(x_t, c_t))], temp_bytes)


# The TF worker asks XLA for its buffer assignment through a dump folder set
# in XLA_FLAGS before TensorFlow starts (the parent sets both variables).
XLA_DUMP_ENV = "LEAF_BENCHMARK_XLA_DUMP"
_TEMP_ALLOCATION = re.compile(r"^allocation \d+: size (\d+), preallocated-temp")


def _xla_dump_temp_bytes(dump_dir):
    """XLA's temporary buffers of the compiled step, from its dump.

    The `preallocated-temp` allocation of the step module's buffer
    assignment: the same quantity as JAX's `temp_size_in_bytes`. (TF's
    allocator peak is larger: its BFC pool does not split a free chunk for a
    request of more than half its size, so a 140 MB temp buffer can occupy a
    256 MB chunk, of which only the used pages become resident.)
    """
    sizes = []
    for name in os.listdir(dump_dir):
        if "step" not in name or not name.endswith("buffer-assignment.txt"):
            continue
        with open(os.path.join(dump_dir, name)) as f:
            sizes.append(sum(int(m.group(1)) for m in map(_TEMP_ALLOCATION.match, f) if m))
    return max(sizes) if sizes else None


def _make_step(model, backend, x, cotangent, tf_compile):
    """Returns (a zero-argument function running forward+backward once,
    a function returning the compiled step's XLA temp bytes or None)."""
    wrt_input = not model.trainable_variables
    if backend == "tensorflow":
        return _make_tf_step(model, x, cotangent, tf_compile)
    if backend == "jax":
        import jax  # pylint: disable=g-import-not-at-top

        trainable = [v.value for v in model.trainable_variables]
        fixed = [v.value for v in model.non_trainable_variables]
        x_j, c_j = jax.numpy.asarray(x), jax.numpy.asarray(cotangent)

        def loss_fn(values, inputs):
            out = model.stateless_call(values, fixed, inputs)[0]
            return jax.numpy.sum(out * c_j)

        grad_fn = jax.jit(jax.value_and_grad(loss_fn, argnums=1 if wrt_input else 0))

        def temp_bytes():
            try:
                stats = grad_fn.lower(trainable, x_j).compile().memory_analysis()
                return int(stats.temp_size_in_bytes)
            except Exception:  # pylint: disable=broad-except
                return None

        return (lambda: jax.block_until_ready(grad_fn(trainable, x_j)), temp_bytes)
    if backend == "torch":
        import keras  # pylint: disable=g-import-not-at-top
        import torch  # pylint: disable=g-import-not-at-top

        # On the device Keras computes on (the GPU where there is one), copied once.
        c_t = keras.ops.convert_to_tensor(cotangent)
        x_t = keras.ops.convert_to_tensor(x)
        synchronize = _torch_synchronizer()

        def run():
            inputs = x_t.detach().requires_grad_(wrt_input)
            for variable in model.trainable_variables:
                variable.value.grad = None
            loss = torch.sum(model(inputs) * c_t)
            loss.backward()
            synchronize()
            return float(loss)

        return run, None
    raise ValueError(f"unknown backend {backend!r}")


def _tf_allocator_stats(reset):
    """Resets, or reads the peak (MB) of, TensorFlow's CPU allocator."""
    if "tensorflow" not in sys.modules:
        return None
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    try:
        if reset:
            tf.config.experimental.reset_memory_stats("CPU:0")
            return None
        return tf.config.experimental.get_memory_info("CPU:0")["peak"] / 2**20
    except (ValueError, RuntimeError, KeyError):
        return None


def _measure(step, temp_bytes, args, backend):
    """Warm-up, timed repeats and memory figures of one compiled step."""
    baseline_maxrss = _ru_maxrss_mb()
    status = _proc_status_mb()
    rss_before_first_step = status["VmRSS"] if status else baseline_maxrss
    for _ in range(args.warmup):
        step()
    # Old figure: ru_maxrss growth across the first (compiling) steps, which
    # includes the XLA compiler's own memory.
    compile_growth_mb = _ru_maxrss_mb() - baseline_maxrss
    status = _proc_status_mb()
    process_peak_mb = status["VmHWM"] if status else _ru_maxrss_mb()
    _release_free_heap()
    reset = _reset_peak_rss()
    rss_before_timed = _proc_status_mb()["VmRSS"] if reset else None
    if backend == "tensorflow":
        _tf_allocator_stats(reset=True)
    cuda = backend == "torch" and args.device == "gpu"
    if cuda:
        import torch  # pylint: disable=g-import-not-at-top

        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    if reset:
        peak = _proc_status_mb()["VmHWM"]
        process_peak_mb = max(process_peak_mb, peak)
        memory_method = "VmHWM of the timed steps (reset after warm-up)"
    else:
        # Without /proc the compile peak cannot be separated from the steps.
        peak = process_peak_mb = _ru_maxrss_mb()
        memory_method = "ru_maxrss (no /proc/self/clear_refs: with compile)"
    median = statistics.median(times)
    tf_peak = _tf_allocator_stats(reset=False) if backend == "tensorflow" else None
    temp = temp_bytes() if temp_bytes else None
    cuda_peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return {
        "time_s": median,
        "times": times,
        # Peak of the timed steps over the resident memory before the first
        # step: the step's buffers, also those a caching allocator (TF's
        # oneDNN/BFC CPU allocator) keeps resident between steps.
        "step_peak_mb": peak - rss_before_first_step,
        # The peak over the memory just before the timed steps: only what the
        # allocator had not kept from the warm-up.
        "timed_steps_growth_mb": (None if rss_before_timed is None else peak - rss_before_timed),
        "rss_before_first_step_mb": rss_before_first_step,
        "process_peak_mb": process_peak_mb,
        "compile_growth_mb": compile_growth_mb,
        "tf_allocator_peak_mb": tf_peak,
        "xla_temp_mb": None if temp is None else temp / 2**20,
        # PyTorch's peak CUDA allocation during the timed steps (--device gpu).
        "cuda_peak_mb": cuda_peak,
        "memory_method": memory_method,
    }


def _inputs(config, rng):
    batch, seconds = config
    return (0.1 * rng.standard_normal((batch, int(seconds * SAMPLE_RATE)))).astype("float32")


def run_worker(args):
    """Measures one leaf_keras configuration here; prints one JSON line."""
    import keras  # pylint: disable=g-import-not-at-top
    import numpy as np  # pylint: disable=g-import-not-at-top

    backend = keras.backend.backend()
    accelerator = _accelerator(backend, args.device)
    rng = np.random.default_rng(0)
    x = _inputs(args.config, rng)
    model = build_frontend(args.frontend)
    out_shape = model.compute_output_shape(x.shape)
    model.build(x.shape)
    cotangent = rng.standard_normal((x.shape[0],) + tuple(out_shape[1:])).astype("float32")
    step, temp_bytes = _make_step(model, backend, x, cotangent, args.tf_compile)
    result = _measure(step, temp_bytes, args, backend)
    _print_result(args, backend, _on(_compile_label(backend, args.tf_compile), accelerator), result)


def run_leaf_audio_worker(args):
    """Measures one original leaf-audio configuration (TF, tf_keras)."""
    import numpy as np  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    _accelerator("tensorflow", args.device)
    rng = np.random.default_rng(0)
    x = _inputs(args.config, rng)
    model, stubbed = build_leaf_audio_frontend(args.frontend, args.leaf_audio_path)
    # Builds the weights eagerly (on one example) and gives the output shape.
    out_shape = model(tf.constant(x[:1])).shape
    cotangent = rng.standard_normal((x.shape[0],) + tuple(out_shape[1:])).astype("float32")
    step, temp_bytes = _make_tf_step(model, x, cotangent, args.tf_compile)
    result = _measure(step, temp_bytes, args, "tensorflow")
    result["stubbed_modules"] = stubbed
    result["versions"] = {"tensorflow": tf.__version__, "tf.keras": _package_version("tf_keras")}
    _print_result(args, "tensorflow", _tf_compile_label(args.tf_compile), result)


def run_port_worker(args):
    """Measures the EfficientLEAF repo's PyTorch frontends (eager autograd)."""
    import numpy as np  # pylint: disable=g-import-not-at-top
    import torch  # pylint: disable=g-import-not-at-top

    accelerator = _accelerator("torch", args.device)
    device = torch.device("cuda" if accelerator else "cpu")
    rng = np.random.default_rng(0)
    x = torch.as_tensor(_inputs(args.config, rng), device=device)
    model = build_port_frontend(args.frontend, args.port_path).to(device)
    with torch.no_grad():
        out_shape = model(x[:1]).shape
    cotangent = torch.as_tensor(
        rng.standard_normal((x.shape[0],) + tuple(out_shape[1:])).astype("float32"),
        device=device,
    )
    synchronize = _torch_synchronizer()

    def step():
        model.zero_grad(set_to_none=True)
        loss = torch.sum(model(x) * cotangent)
        loss.backward()
        synchronize()
        return float(loss)

    result = _measure(step, None, args, "torch")
    result["versions"] = {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    if args.frontend == "port_efficientleaf_8g":
        result["frontend_kwargs"] = EFFICIENTLEAF_KWARGS
    _print_result(args, "torch", _on("eager", accelerator), result)


def _on(compile_mode, accelerator):
    """The compile column: the mode, and the GPU where the step ran on one."""
    return compile_mode if accelerator is None else f"{compile_mode} on {accelerator}"


def _compile_label(backend, tf_compile):
    """How a step of `backend` is compiled: the TF mode, `jax.jit`, or PyTorch's eager."""
    if backend == "tensorflow":
        return _tf_compile_label(tf_compile)
    return "jax.jit" if backend == "jax" else "eager"


def _tf_compile_label(mode):
    return "eager" if mode == "eager" else f"tf.function({mode})"


def _package_version(name):
    from importlib import metadata  # pylint: disable=g-import-not-at-top

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _print_result(args, backend, compile_mode, result):
    batch, seconds = args.config
    result.update(
        {
            "backend": backend,
            "frontend": args.frontend,
            "batch": batch,
            "seconds": seconds,
            "audio_s_per_s": batch * seconds / result["time_s"],
            "compile": compile_mode,
        }
    )
    print("RESULT " + json.dumps(result))


def _parse_config(text):
    batch, seconds = text.lower().split("x")
    return int(batch), float(seconds)


def _leaf_audio_skip_reason(args, backend):
    if backend != "tensorflow":
        return f"the original leaf-audio runs on TensorFlow only, not {backend}"
    if not args.leaf_audio_path:
        return (
            "pass --leaf-audio-path DIR (a google-research/leaf-audio "
            "checkout, the folder containing leaf_audio/) to measure it"
        )
    if not os.path.isfile(os.path.join(args.leaf_audio_path, "leaf_audio", "frontend.py")):
        return f"no leaf_audio/frontend.py under {args.leaf_audio_path!r}"
    return None


def _port_skip_reason(args, name):
    if not args.port_path:
        return (
            "pass --port-path DIR (a CPJKU/EfficientLEAF checkout, the "
            "folder containing model/) to measure it"
        )
    if not os.path.isfile(os.path.join(args.port_path, PORT_MODULES[name])):
        return f"no {PORT_MODULES[name]} under {args.port_path!r}"
    return None


def _jobs(args):
    """(backend, config, frontend, tf_compile) for every subprocess to run."""
    skipped = set()
    for backend in args.backends:
        for config in args.batch_configs:
            for name in args.frontends:
                port = name in PORT_FRONTENDS
                # PyTorch code: measured once per configuration.
                if port and backend != args.backends[0]:
                    continue
                reason = (
                    _port_skip_reason(args, name)
                    if port
                    else _leaf_audio_skip_reason(args, backend)
                    if name in LEAF_AUDIO_FRONTENDS
                    else None
                )
                if reason:
                    if (name, reason) not in skipped:
                        skipped.add((name, reason))
                        print(f"skipping {name}: {reason}", file=sys.stderr, flush=True)
                elif port:
                    yield "torch", config, name, "eager"
                elif name in LEAF_AUDIO_FRONTENDS:
                    for mode in args.leaf_audio_compile:
                        yield backend, config, name, mode
                else:
                    yield backend, config, name, args.tf_compile


def run_all(args):
    results = []
    for backend, config, name, tf_compile in _jobs(args):
        leaf_audio = name in LEAF_AUDIO_FRONTENDS
        python = sys.executable
        if leaf_audio and args.leaf_audio_python:
            python = args.leaf_audio_python
        command = [
            python,
            os.path.abspath(__file__),
            "--worker",
            "--frontend",
            name,
            "--config",
            f"{config[0]}x{config[1]:g}",
            "--repeats",
            str(args.repeats),
            "--warmup",
            str(args.warmup),
            "--device",
            args.device,
        ]
        if name not in PORT_FRONTENDS:
            command += ["--tf-compile", tf_compile]
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        env[MALLOC_ENV] = args.malloc
        dump_dir = None
        if backend == "tensorflow" and tf_compile == "xla":
            dump_dir = tempfile.mkdtemp(prefix="xla_dump_")
            env[XLA_DUMP_ENV] = dump_dir
            env["XLA_FLAGS"] = (
                os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={dump_dir}"
            ).strip()
        if name in PORT_FRONTENDS:
            command += ["--port-path", os.path.abspath(args.port_path)]
        elif leaf_audio:
            command += ["--leaf-audio-path", os.path.abspath(args.leaf_audio_path)]
            # tf.keras must be Keras 2 (tf_keras) for the original code.
            env["TF_USE_LEGACY_KERAS"] = "1"
        else:
            env["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
        try:
            proc = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=args.timeout, check=False
            )
            lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            error = (
                None
                if not proc.returncode and lines
                else (proc.stderr.strip().splitlines() or ["?"])[-1]
            )
        except subprocess.TimeoutExpired:
            lines, error = [], f"timeout after {args.timeout:g} s"
        finally:
            if dump_dir:
                shutil.rmtree(dump_dir, ignore_errors=True)
        if error:
            result = {
                "backend": backend,
                "frontend": name,
                "batch": config[0],
                "seconds": config[1],
                "compile": _compile_label(backend, tf_compile),
                "error": error[:200],
            }
        else:
            result = json.loads(lines[-1][len("RESULT ") :])
        result["malloc"] = args.malloc
        if args.malloc != "system":
            result["compile"] = f"{result.get('compile', '')}, malloc {args.malloc}"
        results.append(result)
        if args.json:
            # After every row: a run cut short (a device's time limit) keeps its rows.
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        # Progress only, not a table row: with stderr and stdout in one terminal, rows here
        # read as duplicates of the table's.
        outcome = result.get("error") or f"{result['time_s']:.3f} s / batch"
        print(
            f"done: {backend} {name} {config[0]} x {config[1]:g} s: {outcome}",
            file=sys.stderr,
            flush=True,
        )
    return results


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def _step_buffers_mb(result):
    """XLA's temp buffers of the step (TF with XLA, JAX); PyTorch's peak CUDA
    allocation (torch on a GPU); else TF's allocator peak (plain TF graph)."""
    for key in ("xla_temp_mb", "cuda_peak_mb"):
        if result.get(key) is not None:
            return result[key]
    return result.get("tf_allocator_peak_mb")


def _row(result, mel_time, original_time):
    config = f"{result['batch']} x {result['seconds']:g} s"
    name = DISPLAY_NAMES.get(result["frontend"], result["frontend"])
    head = f"| {result['backend']} | {name} | {result.get('compile', '')} | {config} | "
    if "error" in result:
        return head + f"failed: {result['error']} | | | | | | | |"
    time_s = result["time_s"]
    return head + (
        f"{time_s:.3f} | {result['audio_s_per_s']:.0f} | "
        f"{result['step_peak_mb']:.0f} | {result['process_peak_mb']:.0f} | "
        f"{_fmt(_step_buffers_mb(result), '.0f')} | "
        f"{_fmt(result.get('tf_allocator_peak_mb'), '.0f')} | "
        f"{_fmt(mel_time and time_s / mel_time, '.1f')} | "
        f"{_fmt(original_time and original_time / time_s, '.1f')} |"
    )


def print_table(results, markdown):
    ok = [r for r in results if "error" not in r]
    mel = {
        (r["backend"], r["batch"], r["seconds"]): r["time_s"] for r in ok if r["frontend"] == "mel"
    }
    # The original LEAF at its fastest compile mode (graph, XLA or eager).
    original = {}
    for r in ok:
        if r["frontend"] == "leaf_audio_leaf":
            key = (r["batch"], r["seconds"])
            original[key] = min(original.get(key, r["time_s"]), r["time_s"])
    header = (
        "| backend | frontend | compile | batch | s / batch (fwd+bwd) | "
        "audio s / s | step peak MB | process peak MB | "
        "step buffers MB | TF allocator peak MB | × mel time | "
        "× original LEAF |"
    )
    lines = [header, "|" + "---|" * 12] if markdown else [header]
    for r in results:
        lines.append(
            _row(
                r,
                mel.get((r["backend"], r["batch"], r["seconds"])),
                original.get((r["batch"], r["seconds"])),
            )
        )
    if not markdown:
        lines = [l.strip("|").replace(" | ", "\t") for l in lines]
    print("\n".join(lines))


def _set_malloc():
    """In a worker, before any framework starts its threads: the malloc settings that
    `MALLOC_ENV` names (`experiments.allocator`, which needs only the standard library, so
    the original's venv imports it too)."""
    if os.environ.get(MALLOC_ENV, "system") == "system":
        return
    sys.path.insert(0, ROOT)
    from experiments import allocator  # pylint: disable=import-outside-toplevel

    if not allocator.reuse_freed_memory():
        print("warning: the malloc settings were not applied (not glibc?)", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["tensorflow", "jax"],
        choices=["tensorflow", "jax", "torch"],
    )
    parser.add_argument("--frontends", nargs="+", default=list(FRONTENDS), choices=FRONTENDS)
    parser.add_argument(
        "--batch-configs",
        nargs="+",
        type=_parse_config,
        default=[(64, 1.0), (8, 10.0)],
        help="BATCHxSECONDS, e.g. 64x1 8x10",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tf-compile", choices=["xla", "graph", "eager"], default="xla")
    parser.add_argument(
        "--leaf-audio-path",
        help="folder containing the original leaf_audio/ "
        "package (google-research/leaf-audio checkout); "
        "enables the leaf_audio_* frontends",
    )
    parser.add_argument(
        "--leaf-audio-python",
        help="Python of a venv with tensorflow, tf_keras and "
        "gin-config for the original (default: this one)",
    )
    parser.add_argument(
        "--leaf-audio-compile",
        nargs="+",
        choices=["xla", "graph", "eager"],
        default=["graph", "xla"],
        help="modes to time the original in (tf.function "
        "with or without XLA, or eager); '× original LEAF' "
        "uses the fastest",
    )
    parser.add_argument(
        "--port-path",
        help="folder containing model/ of a CPJKU/"
        "EfficientLEAF checkout (PyTorch); enables port_leaf "
        "and port_efficientleaf_8g",
    )
    parser.add_argument(
        "--malloc",
        choices=["system", "reuse"],
        default="system",
        help="glibc's malloc settings in every worker: its defaults, or "
        "experiments.allocator.reuse_freed_memory (what experiments.main sets)",
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "gpu"],
        default="cpu",
        help="where the steps run: the CPU, or the GPU (JAX and PyTorch; a worker "
        "that finds none fails its row)",
    )
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--markdown", action="store_true", help="print a README-ready markdown table"
    )
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--frontend", help=argparse.SUPPRESS)
    parser.add_argument("--config", type=_parse_config, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _set_malloc()
        if args.frontend in LEAF_AUDIO_FRONTENDS:
            run_leaf_audio_worker(args)
        elif args.frontend in PORT_FRONTENDS:
            run_port_worker(args)
        else:
            run_worker(args)
        return
    results = run_all(args)
    print_table(results, args.markdown)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The GPU rows of benchmarks/README.md: leaf_keras on JAX and PyTorch beside the PyTorch
# LEAF port and EfficientLEAF 8G, forward + backward at 64 x 1 s and 8 x 10 s, on one GPU,
# in one run of benchmark_frontends.py --device gpu.
#
# The GPU machine has CUDA builds of JAX and PyTorch but no Keras and no network, so the
# run is prepared on a machine with pip and carried there:
#
#   bash benchmarks/gpu_rows.sh prepare PORT_CHECKOUT
#       Keras's wheels (for the GPU machine's Python, 3.12 by default: GPU_ROWS_PYTHON_VERSION)
#       and the model/ folder of a CPJKU/EfficientLEAF checkout, into .gpu_carry/ (ignored).
#   bash benchmarks/gpu_rows.sh run OUT_DIR
#       On the GPU machine, from the repository root with .gpu_carry/ beside it: installs the
#       wheels where Keras is missing, then writes OUT_DIR/gpu_rows.json (after every row, so
#       a run cut short keeps its rows) and OUT_DIR/gpu_rows.md (the table).
#
# Settings (environment): GPU_ROWS_DEVICE (gpu; cpu for a dry run on a machine without one),
# GPU_ROWS_CONFIGS ("64x1 8x10"), GPU_ROWS_REPEATS (10), GPU_ROWS_TIMEOUT (240 s a row),
# PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu_carry
PYTHON=${PYTHON:-python3}

prepare() {
    local port=${1:?usage: gpu_rows.sh prepare PORT_CHECKOUT (the folder holding model/)}
    if [[ ! -f $port/model/leaf.py || ! -f $port/model/efficientleaf.py ]]; then
        echo "gpu_rows.sh: no model/leaf.py and model/efficientleaf.py under $port" >&2
        exit 2
    fi
    rm -rf "$CARRY" && mkdir -p "$CARRY/wheels" "$CARRY/EfficientLEAF"
    cp -r "$port/model" "$CARRY/EfficientLEAF/"
    [[ -f $port/LICENSE ]] && cp "$port/LICENSE" "$CARRY/EfficientLEAF/"
    # Keras and the two of its needs that the GPU machine's image lacks, as this checkout
    # installs them (`pip show` gives the versions).
    local wheels=()
    for name in keras namex optree; do
        wheels+=("$name==$("$PYTHON" -m pip show "$name" | sed -n 's/^Version: //p')")
    done
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
        --python-version "${GPU_ROWS_PYTHON_VERSION:-3.12}" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$CARRY/wheels" "${wheels[@]}"
    du -sh "$CARRY"
}

run() {
    local out=${1:?usage: gpu_rows.sh run OUT_DIR}
    mkdir -p "$out"
    # Keras on JAX: its default backend, TensorFlow, is not on the GPU machine.
    export KERAS_BACKEND=jax
    if ! "$PYTHON" -c "import keras" 2>/dev/null; then
        "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
            --target /tmp/gpu_rows_site "$CARRY"/wheels/*.whl
        export PYTHONPATH=/tmp/gpu_rows_site${PYTHONPATH:+:$PYTHONPATH}
    fi
    { date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
      "$PYTHON" -c "import jax, keras, torch; print('jax', jax.__version__, jax.devices());
print('torch', torch.__version__, torch.cuda.is_available()); print('keras', keras.__version__)"
    } 2>&1 | tee "$out/gpu_rows_machine.txt"
    # shellcheck disable=SC2086  # the configurations are words
    PYTHONUNBUFFERED=1 "$PYTHON" benchmarks/benchmark_frontends.py --device "${GPU_ROWS_DEVICE:-gpu}" \
        --backends jax torch \
        --frontends port_efficientleaf_8g port_leaf leaf_band_limited leaf mel leaf_exact \
        --batch-configs ${GPU_ROWS_CONFIGS:-64x1 8x10} --repeats "${GPU_ROWS_REPEATS:-10}" \
        --warmup 3 --timeout "${GPU_ROWS_TIMEOUT:-240}" --port-path "$CARRY/EfficientLEAF" \
        --json "$out/gpu_rows.json" --markdown | tee "$out/gpu_rows.md"
}

case ${1:-} in
    prepare) prepare "${@:2}" ;;
    run) run "${@:2}" ;;
    *) echo "usage: gpu_rows.sh prepare PORT_CHECKOUT | run OUT_DIR" >&2; exit 2 ;;
esac

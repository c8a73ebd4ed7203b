"""The precision the layers compute in: float32, or float64 under a float64 policy.

FFTs, long filters and recurrences lose too much in float16 / bfloat16, so
under a half-precision or mixed dtype policy the layers keep their weights
and compute these steps in float32, and cast the result back to their
compute dtype. Under a float64 policy (`keras.config.set_floatx("float64")`,
or `dtype="float64"`) they compute and store everything in float64.

Keras's type promotion maps float64 results to float32 on the JAX and
PyTorch backends (`keras.ops.matmul`, `maximum`, `where`, ... of two float64
tensors return float32; keras-team/keras#23223, #23704), which would round a
float64 computation to float32 halfway. `keeps_float64` lifts that rule
while a float64 layer computes.
"""

import contextlib
import functools
import threading

import keras
from keras import ops
from keras.src.backend.common import dtypes as keras_dtypes

HALF_DTYPES = ("float16", "bfloat16")
_KEPT = {"float64": "float64", "complex128": "complex128"}
_lock = threading.Lock()
_depth = 0
_demotions = {}


def is_float64(policy):
    """Whether the dtype policy `policy` computes or stores its variables in float64."""
    return "float64" in (policy.variable_dtype, policy.compute_dtype)


def working_dtype(layer):
    """`"float64"` when `layer`'s dtype policy is float64, else `"float32"`.

    Raises:
        ValueError: for a float64 policy on JAX without 64-bit mode.
    """
    if not is_float64(layer.dtype_policy):
        return "float32"
    if keras.backend.backend() == "jax":
        import jax  # pylint: disable=g-import-not-at-top

        if not jax.config.jax_enable_x64:
            raise ValueError(
                f"{layer.name} has a float64 dtype policy, but JAX computes in float32 "
                "unless 64-bit mode is on: set JAX_ENABLE_X64=1 or call "
                "jax.config.update('jax_enable_x64', True) before building the layer."
            )
    return "float64"


@contextlib.contextmanager
def float64_promotion():
    """While active, Keras ops of float64 tensors return float64 on every backend."""
    global _depth  # pylint: disable=global-statement
    table = keras_dtypes.BIT64_TO_BIT32_DTYPE
    with _lock:
        if _depth == 0:
            _demotions.update({key: table[key] for key in _KEPT})
            table.update(_KEPT)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                table.update(_demotions)


def keeps_float64(call):
    """Decorates a layer's `call`: a float64 layer computes under `float64_promotion`."""

    @functools.wraps(call)
    def wrapper(self, *args, **kwargs):
        if working_dtype(self) != "float64":
            return call(self, *args, **kwargs)
        with float64_promotion():
            return call(self, *args, **kwargs)

    return wrapper


def keeps_float64_gradient(grad, *tensors):
    """`grad` (a custom gradient's closure) run under `float64_promotion`
    when any of `tensors` is float64: the backward pass runs outside the
    layer's `call`."""
    if not any(keras.backend.standardize_dtype(t.dtype) == "float64" for t in tensors):
        return grad

    @functools.wraps(grad)
    def wrapper(*args, **kwargs):
        with float64_promotion():
            return grad(*args, **kwargs)

    return wrapper


def share_dtype_policy(layer):
    """Gives every sub-layer of `layer` (a frontend) `layer`'s dtype policy.

    A frontend built with an explicit `dtype` (e.g. `Leaf(dtype="float64")`)
    then computes all its stages in it, as under the same global policy.
    Call it before the sub-layers are built (their weights take its dtype).
    """
    for sublayer in layer._flatten_layers(include_self=False):  # pylint: disable=protected-access
        sublayer.dtype_policy = layer.dtype_policy


def upcast_half(x):
    """`x` as a tensor, cast to float32 if it is float16 or bfloat16."""
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) in HALF_DTYPES:
        return ops.cast(x, "float32")
    return x

"""Backend-agnostic helpers for the layer tests (gradients, reference data).

`value_and_gradients` differentiates a scalar function of keras variables
with the active backend's own autodiff: tf.GradientTape, jax.grad (through a
`keras.StatelessScope`) or torch.autograd.
"""

import os

import keras
import numpy as np

import leaf_keras

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
REFERENCE_PATH = os.path.join(DATA_DIR, "leaf_audio_reference.npz")

# The frontend of each case of the leaf-audio reference files, built with its defaults.
REFERENCE_CASES = {
    "leaf": leaf_keras.Leaf,
    "leaf_perturbed": leaf_keras.Leaf,
    "mel": leaf_keras.MelFilterbanks,
    "tfbanks": leaf_keras.TimeDomainFilterbanks,
    "tfbanks_perturbed": leaf_keras.TimeDomainFilterbanks,
    "sincnet": leaf_keras.SincNet,
    "sincnet_perturbed": leaf_keras.SincNet,
    "sincnet_plus": leaf_keras.SincNetPlus,
    "sincnet_plus_perturbed": leaf_keras.SincNetPlus,
}

# Every frontend and filterbank engine, with default arguments.
EVERY_FRONTEND = {
    "leaf_fused": lambda: leaf_keras.Leaf(filterbank="fused"),
    "leaf_layers": lambda: leaf_keras.Leaf(filterbank="layers"),
    "leaf_band_limited": lambda: leaf_keras.Leaf(filterbank="band_limited"),
    "tfbanks": leaf_keras.TimeDomainFilterbanks,
    "sincnet": leaf_keras.SincNet,
    "sincnet_plus": leaf_keras.SincNetPlus,
    "mel": leaf_keras.MelFilterbanks,
    "mel_pcen": leaf_keras.MelPCEN,
}


def load_reference():
    """The leaf-audio reference outputs, weights and gradients (dict)."""
    with np.load(REFERENCE_PATH) as data:
        return {key: data[key] for key in data.files}


def case_entries(reference, case, kind):
    """`{name: array}` of `<case>/<kind>/<name>` entries (kind: weight, grad)."""
    prefix = f"{case}/{kind}/"
    return {key[len(prefix) :]: value for key, value in reference.items() if key.startswith(prefix)}


def value_and_gradients(loss_fn, variables, jit=True):
    """Evaluates `loss_fn()` and its gradients w.r.t. keras `variables`.

    Args:
        loss_fn: callable without arguments returning a scalar tensor; it
            must read the variables (e.g. by calling a layer).
        variables: list of keras variables.
        jit: on JAX, compile the whole computation at once (several times
            faster than JAX's op-by-op compilation of a graph run once; False
            when `loss_fn` needs concrete values, e.g. Python branches).

    Returns:
        `(loss, [gradient, ...])` as numpy values.
    """
    backend = keras.backend.backend()
    to_numpy = keras.ops.convert_to_numpy
    if not variables:
        return np.asarray(to_numpy(loss_fn())), []
    if backend == "tensorflow":
        import tensorflow as tf  # pylint: disable=g-import-not-at-top

        with tf.GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, [v.value for v in variables])
    elif backend == "jax":
        import jax  # pylint: disable=g-import-not-at-top

        def loss_of(values):
            mapping = list(zip(variables, values))
            with keras.StatelessScope(state_mapping=mapping):
                return loss_fn()

        value_and_grad = jax.value_and_grad(loss_of)
        if jit:
            value_and_grad = jax.jit(value_and_grad)
        loss, grads = value_and_grad([v.value for v in variables])
    elif backend == "torch":
        import torch  # pylint: disable=g-import-not-at-top

        values = [v.value for v in variables]
        loss = loss_fn()
        grads = torch.autograd.grad(loss, values, allow_unused=True)
    else:
        raise ValueError(f"Unsupported backend {backend}.")
    return (
        np.asarray(to_numpy(loss)),
        [None if g is None else np.asarray(to_numpy(g)) for g in grads],
    )


def gradients_of_input(fn, inputs):
    """Gradient of the scalar `fn(x)` w.r.t. the numpy input `x`."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # pylint: disable=g-import-not-at-top

        x = tf.convert_to_tensor(inputs)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = fn(x)
        grad = tape.gradient(loss, x)
    elif backend == "jax":
        import jax  # pylint: disable=g-import-not-at-top

        grad = jax.jit(jax.grad(fn))(jax.numpy.asarray(inputs))
    else:
        import torch  # pylint: disable=g-import-not-at-top

        x = torch.tensor(inputs, requires_grad=True)
        grad = torch.autograd.grad(fn(x), x)[0]
    return np.asarray(keras.ops.convert_to_numpy(grad))


def relative_error(actual, expected):
    """max |actual - expected| / max |expected|."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    scale = np.abs(expected).max()
    return float(np.abs(actual - expected).max() / (scale if scale else 1.0))

"""`clip`, `minimum` and `maximum` with TensorFlow's gradients at ties.

The original computes these with `tf.clip_by_value`, `tf.minimum` and
`tf.maximum`, which give the whole gradient to `x` when it sits exactly on a
bound; `keras.ops` on JAX splits it (e.g. halves the gradient of the
highest SincNet band ending exactly at Nyquist). These helpers reproduce
TensorFlow's rule on every backend, so gradients match the original.

Each one compares so that a NaN fails the test that would replace it: NaN in `x` comes
out NaN, as from `tf.minimum` / `tf.maximum`, instead of being turned into the bound
(a floor that hid NaN input made a frontend answer plausible frames for a broken clip).
"""

from keras import ops


def _bound_like(bound, x):
    """`bound` in `x`'s dtype. A Python number is converted straight to that dtype:
    `ops.cast` of a Python float goes through float32 on TensorFlow, which moves a
    float64 bound such as 1e-5 by 2.5e-13."""
    if isinstance(bound, (int, float)):
        return ops.convert_to_tensor(bound, dtype=x.dtype)
    return ops.cast(bound, x.dtype)


def clip(x, lower, upper):
    """`clip(x, lower, upper)`, gradient 1 on the closed interval."""
    x = ops.convert_to_tensor(x)
    lower = _bound_like(lower, x)
    upper = _bound_like(upper, x)
    return ops.where(x < lower, lower, ops.where(x > upper, upper, x))


def minimum(x, bound):
    """`min(x, bound)` with the whole gradient on `x` at ties."""
    x = ops.convert_to_tensor(x)
    bound = _bound_like(bound, x)
    return ops.where(x > bound, bound, x)


def maximum(x, bound):
    """`max(x, bound)` with the whole gradient on `x` at ties."""
    x = ops.convert_to_tensor(x)
    bound = _bound_like(bound, x)
    return ops.where(x < bound, bound, x)

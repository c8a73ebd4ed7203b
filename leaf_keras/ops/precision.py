"""Float32 upcast of half-precision tensors.

FFTs, long filters and recurrences lose too much in float16 / bfloat16, so
the layers compute them in float32 under a mixed dtype policy and cast the
result back to their compute dtype.
"""

import keras
from keras import ops

HALF_DTYPES = ("float16", "bfloat16")


def upcast_half(x):
    """`x` as a tensor, cast to float32 if it is float16 or bfloat16."""
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) in HALF_DTYPES:
        return ops.cast(x, "float32")
    return x

"""Numerical kernels of the layers, written with `keras.ops` only.

The layers call these; none of them holds weights:

- `padding`: TensorFlow's SAME padding and output-length rules.
- `precision`: the float32 upcast of half-precision tensors.
- `tie_gradients`: `clip` / `minimum` / `maximum` with TF's gradients at ties.
- `fft_correlation`: FFT correlation with long filters (one FFT or
  overlap-save blocks), with written-out gradients.
- `block_pooling`: strided poolings as block products and block maxima.
- `linear_recurrence`: PCEN's moving average as chunked matrix products.
"""

from leaf_keras.ops import block_pooling
from leaf_keras.ops import fft_correlation
from leaf_keras.ops import linear_recurrence
from leaf_keras.ops import padding
from leaf_keras.ops import precision
from leaf_keras.ops import tie_gradients

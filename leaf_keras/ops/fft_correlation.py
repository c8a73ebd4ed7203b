"""FFT cross-correlation of signals with long filters, values and gradients.

LEAF's filters are long (401 taps for 25 ms at 16 kHz) and applied at
stride 1, where an FFT correlation is several times faster than a direct
one. Two families live here:

- `fft_conv1d` / `overlap_add_conv1d`: the SAME, stride-1 correlation of
  `tf.nn.conv1d` in the `[batch, time, channels]` layout of the layers.
- `correlation_energies` / `correlation_outputs`: the correlation with
  complex filters (pairs of real filters `h_2k + i h_2k+1`), laid out
  channels major `[channels, batch, L]` and already padded for the pooling
  that reads it, with written-out gradients. They are what the fused
  filterbank engine runs.

All of them follow TensorFlow's SAME rule (`padding.same_padding`), and the
time axis may be known only at run time.
"""

import keras
from keras import ops

from leaf_keras.ops import block_pooling
from leaf_keras.ops import padding
from leaf_keras.ops import precision


def _next_fast_length(n, even=False):
    """Smallest 2^a 3^b 5^c >= n: FFT sizes that every backend handles fast.

    With `even=True` the size has a factor 2 (a >= 1): XLA's CPU complex
    FFT is about twice slower on odd sizes such as 16875 = 3^3 5^4.
    """
    n = int(n)
    best = 1 << max(n - 1, 0).bit_length()
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            value = 2 * power35 if even else power35
            while value < n:
                value *= 2
            best = min(best, value)
            power35 *= 3
        power5 *= 5
    return best


def _check_conv_operands(inputs, filters, name):
    if len(inputs.shape) != 3:
        raise ValueError(
            f"{name} expects inputs [batch, time, 1], got shape {tuple(inputs.shape)}."
        )
    if len(filters.shape) != 3:
        raise ValueError(
            f"{name} expects filters [kernel_size, 1, channels], got shape {tuple(filters.shape)}."
        )
    if inputs.shape[-1] is not None and inputs.shape[-1] != 1:
        raise ValueError(
            f"{name} supports one input channel; got inputs of shape {tuple(inputs.shape)}."
        )
    if filters.shape[1] != 1:
        raise ValueError(
            f"{name} supports one input channel; got filters of shape {tuple(filters.shape)}."
        )


def _complex_correlate(x_real, x_imag, h_real, h_imag):
    """Spectrum of a correlation: X * conj(H), broadcast over channels."""
    x_real = ops.expand_dims(x_real, 1)
    x_imag = ops.expand_dims(x_imag, 1)
    return (x_real * h_real + x_imag * h_imag, x_imag * h_real - x_real * h_imag)


def fft_conv1d(inputs, filters, fft_length=None):
    """SAME-padded, stride-1 cross-correlation computed with one large FFT.

    Equivalent to `tf.nn.conv1d(inputs, filters, 1, "SAME")` (TF's padding
    rule: `(K - 1) // 2` zeros on the left), up to float32 round-off.
    Unlike the original leaf-audio function of the same name, it returns the
    output only and needs no power-of-two length.

    Args:
        inputs: float tensor `[batch, time, 1]`.
        filters: float tensor `[kernel_size, 1, channels]`.
        fft_length: optional FFT size `>= time + kernel_size - 1`; by default
            the next 2^a 3^b 5^c size (or exactly that length when `time` is
            only known at run time).

    Returns:
        A float tensor `[batch, time, channels]`.
    """
    inputs = ops.convert_to_tensor(inputs)
    filters = ops.convert_to_tensor(filters)
    _check_conv_operands(inputs, filters, "fft_conv1d")
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    inputs = precision.upcast_half(inputs)
    filters = ops.cast(filters, inputs.dtype)
    kernel_size = filters.shape[0]
    time = ops.shape(inputs)[1]
    left, right = padding.same_padding(time, kernel_size)
    signal = ops.pad(inputs[:, :, 0], [[0, 0], [left, right]])
    if fft_length is None:
        if isinstance(time, int):
            fft_length = _next_fast_length(time + kernel_size - 1)
        else:
            fft_length = time + kernel_size - 1
    x_real, x_imag = ops.rfft(signal, fft_length=fft_length)
    h_real, h_imag = ops.rfft(ops.transpose(filters[:, 0, :]), fft_length=fft_length)
    spectrum = _complex_correlate(x_real, x_imag, h_real, h_imag)
    outputs = ops.irfft(spectrum, fft_length=fft_length)[:, :, :time]
    outputs = ops.transpose(outputs, (0, 2, 1))
    # Restate the static channel count, which dynamic FFT lengths hide.
    outputs = ops.reshape(outputs, (ops.shape(inputs)[0], time, filters.shape[2]))
    return ops.cast(outputs, dtype)


def overlap_add_conv1d(inputs, filters, fft_length=4096):
    """SAME-padded, stride-1 cross-correlation by FFT overlap-add.

    The signal is cut into blocks of `fft_length - kernel_size + 1` samples,
    each block is convolved with one FFT of size `fft_length`, and the block
    outputs are added with their overlaps. Same result as `fft_conv1d`, with
    memory linear in the signal length.

    Args:
        inputs: float tensor `[batch, time, 1]`.
        filters: float tensor `[kernel_size, 1, channels]`.
        fft_length: FFT size, at least `2 * kernel_size - 1`.

    Returns:
        A float tensor `[batch, time, channels]`.
    """
    inputs = ops.convert_to_tensor(inputs)
    filters = ops.convert_to_tensor(filters)
    _check_conv_operands(inputs, filters, "overlap_add_conv1d")
    kernel_size = filters.shape[0]
    if fft_length < 2 * kernel_size - 1:
        raise ValueError(
            f"fft_length={fft_length} must be >= 2 * kernel_size - 1 = {2 * kernel_size - 1}."
        )
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    inputs = precision.upcast_half(inputs)
    filters = ops.cast(filters, inputs.dtype)
    block = fft_length - kernel_size + 1
    batch = ops.shape(inputs)[0]
    time = ops.shape(inputs)[1]
    channels = filters.shape[2]
    num_blocks = (time + block - 1) // block
    signal = ops.pad(inputs[:, :, 0], [[0, 0], [0, num_blocks * block - time]])
    blocks = ops.reshape(signal, (batch, num_blocks, block))
    # A correlation is a convolution with the time-reversed filters.
    reversed_filters = ops.flip(ops.transpose(filters[:, 0, :]), axis=1)
    x_real, x_imag = ops.rfft(blocks, fft_length=fft_length)
    h_real, h_imag = ops.rfft(reversed_filters, fft_length=fft_length)
    # [batch, blocks, F] x [channels, F] -> [batch, channels, blocks, F].
    x_real = ops.expand_dims(x_real, 1)
    x_imag = ops.expand_dims(x_imag, 1)
    h_real = h_real[:, None, :]
    h_imag = h_imag[:, None, :]
    full = ops.irfft(
        (x_real * h_real - x_imag * h_imag, x_real * h_imag + x_imag * h_real),
        fft_length=fft_length,
    )
    # Each block's full convolution has block + K - 1 <= 2 * block samples:
    # its head stays in place and its tail spills into the next block.
    head = full[..., :block]
    tail = ops.pad(
        full[..., block : block + kernel_size - 1],
        [[0, 0], [0, 0], [0, 0], [0, block - kernel_size + 1]],
    )
    zeros = ops.zeros_like(head[:, :, :1, :])
    summed = ops.concatenate([head, zeros], axis=2) + ops.concatenate([zeros, tail], axis=2)
    full_signal = ops.reshape(summed, (batch, channels, -1))
    left, _ = padding.same_padding(time, kernel_size)
    start = kernel_size - 1 - left
    outputs = full_signal[:, :, start : start + time]
    outputs = ops.reshape(ops.transpose(outputs, (0, 2, 1)), (batch, time, channels))
    return ops.cast(outputs, dtype)


# Overlap-save blocks: a CPU FFT is several times faster per point while its
# block stays in the L1 data cache. 3200 complex64 samples are 25 KB, which
# leaves room in a 32 KB L1d for the twiddles and the next block (4096, 32 KB,
# does not fit). 3200 = 2^7 5^2, and with a 401-tap kernel its hop, 2720, is a
# multiple of the 160-sample pooling stride, so a 1 s clip is exactly 6 blocks.
# benchmarks/benchmark_frontends.py measures the effect.
BLOCK_FFT_LENGTH = 3200


# Static lengths that fit in one block use one FFT (no overlap to waste);
# longer ones use blocks, which beat one whole-clip FFT from 0.5 s on.
MAX_SINGLE_FFT_LENGTH = BLOCK_FFT_LENGTH


def _conj_filter_spectra(filters_real, filters_imag, fft_length):
    """`fft(conj(h_c)) / N` of the zero-padded filters, `(real, imag)`.

    Folding 1 / N into the small filter spectra keeps the large inverse
    transform free of a scaling pass.
    """
    kernel_size = filters_real.shape[1]
    pad = [[0, 0], [0, fft_length - kernel_size]]
    h_real, h_imag = ops.fft((ops.pad(filters_real, pad), -ops.pad(filters_imag, pad)))
    scale = 1.0 / ops.cast(fft_length, filters_real.dtype)
    return h_real * scale, h_imag * scale


def _block_fft_length(kernel_size):
    """Block FFT size: `BLOCK_FFT_LENGTH`, or more for long kernels (the
    hop N - K + 1 must cover the K - 1 samples each block borrows)."""
    return max(BLOCK_FFT_LENGTH, _next_fast_length(4 * (kernel_size - 1), even=True))


def _correlation_plan(time, kernel_size, length, implementation, fft_length, hop_multiple=1):
    """`(fft_length, hop, num_blocks)` for `length` outputs per signal.

    One FFT (`num_blocks = 1`, `hop` = `length` rounded up to
    `hop_multiple`) or overlap-save blocks of `fft_length` samples whose
    `hop` (a multiple of `hop_multiple`) leaves room for the K - 1 samples
    each block needs from the next one.
    """
    if implementation not in ("auto", "single", "blocks"):
        raise ValueError(
            f"implementation must be 'auto', 'single' or 'blocks', got {implementation!r}."
        )
    static = isinstance(length, int) and isinstance(time, int)
    if implementation == "auto":
        single = static and length + kernel_size - 1 <= MAX_SINGLE_FFT_LENGTH
        implementation = "single" if single else "blocks"
    if implementation == "single":
        hop = (length + hop_multiple - 1) // hop_multiple * hop_multiple
        if fft_length is None:
            fft_length = (
                _next_fast_length(hop + kernel_size - 1, even=True)
                if static
                else hop + kernel_size - 1
            )
        return fft_length, hop, 1
    if fft_length is None:
        fft_length = _block_fft_length(kernel_size)
    fft_length = int(fft_length)
    hop = (fft_length - kernel_size + 1) // hop_multiple * hop_multiple
    if hop < max(kernel_size - 1, 1):
        raise ValueError(
            f"A block fft_length of {fft_length} leaves a hop of {hop} "
            f"samples (a multiple of {hop_multiple}); it must be >= "
            f"kernel_size - 1 = {kernel_size - 1}: use a larger fft_length."
        )
    return fft_length, hop, (length + hop - 1) // hop


def _signal_blocks(inputs, lead, fft_length, hop, num_blocks):
    """`[batch * blocks, N]`: block j is `xp[j hop : j hop + N]`, `xp` the
    signal after `lead` zeros, followed by zeros."""
    time = ops.shape(inputs)[1]
    if isinstance(num_blocks, int) and num_blocks == 1:
        return ops.pad(inputs, [[0, 0], [lead, fft_length - time - lead]])
    # Rows of `hop` samples; block j is row j followed by the head of row
    # j + 1 (N - hop <= hop samples), so no gather is needed and the number
    # of blocks may be dynamic.
    signal = ops.pad(inputs, [[0, 0], [lead, (num_blocks + 1) * hop - time - lead]])
    rows = ops.reshape(signal, (ops.shape(inputs)[0], num_blocks + 1, hop))
    blocks = ops.concatenate([rows[:, :-1], rows[:, 1:, : fft_length - hop]], axis=2)
    return ops.reshape(blocks, (-1, fft_length))


def _check_correlation_operands(inputs, filters_real, filters_imag, name):
    inputs = ops.convert_to_tensor(inputs)
    filters_real = ops.convert_to_tensor(filters_real)
    if len(inputs.shape) != 2 or len(filters_real.shape) != 2:
        raise ValueError(
            f"{name} expects inputs [batch, time] and filters [channels, "
            f"kernel_size], got {tuple(inputs.shape)} and "
            f"{tuple(filters_real.shape)}."
        )
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    inputs = precision.upcast_half(inputs)
    filters_real = ops.cast(filters_real, inputs.dtype)
    filters_imag = ops.cast(filters_imag, inputs.dtype)
    return inputs, filters_real, filters_imag, dtype


def _spectral_product_fft(x_real, x_imag, h_real, h_imag):
    """`u = fft(conj(X_r) H_c)` for all rows r and filters c, `[channels,
    rows, N]` (real, imag); `conj(X) H = (xr hr + xi hi) + i (xr hi - xi
    hr)`."""
    xr, xi = x_real[None], x_imag[None]
    hr, hi = h_real[:, None], h_imag[:, None]
    return ops.fft((xr * hr + xi * hi, xr * hi - xi * hr))


@ops.custom_gradient
def _spectral_energies(x_real, x_imag, h_real, h_imag, mask):
    """`mask * |conj(fft(conj(X_r) H_c))[:hop]|^2` for all rows r, filters c.

    Args:
        x_real, x_imag: `[rows, N]` signal (block) spectra `X`.
        h_real, h_imag: `[channels, N]` scaled conjugate-filter spectra `H`.
        mask: `[rows, hop]` 0/1 weights of the kept outputs.

    Returns:
        `[channels, rows, hop]` energies.

    The gradient is written out: autodiff of the (real, imag) pair
    arithmetic leaves XLA several `[channels, rows, N]` products and padded
    copies to materialise before reducing them over the rows. With the
    outputs `u = fft(conj(X) H)` (`|u| = |z|`), `g = 2 mask dE u` (zero on
    dropped outputs) and `Q = fft(conj(g))`: `dH_c = sum_r X_r conj(Q_cr)`
    and `dX_r = sum_c H_c Q_cr`.
    """
    hop = ops.shape(mask)[-1]
    # The sign of the imaginary part of z = conj(u) does not change |z|.
    z_real, z_imag = _spectral_product_fft(x_real, x_imag, h_real, h_imag)
    z_real, z_imag = z_real[..., :hop], z_imag[..., :hop]
    energies = (ops.square(z_real) + ops.square(z_imag)) * mask

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        weights = 2.0 * upstream * mask
        # u has cotangent g = 2 mask dE u.
        return _spectral_gradients(
            x_real, x_imag, h_real, h_imag, weights * z_real, -weights * z_imag
        ) + (ops.zeros_like(mask),)

    return energies, precision.keeps_float64_gradient(grad, x_real)


def _spectral_gradients(x_real, x_imag, h_real, h_imag, conj_g_real, conj_g_imag):
    """Gradients w.r.t. `(X, H)` of `u = fft(conj(X) H)[..., :hop]`.

    Args:
        x_real, x_imag: `[rows, N]` signal spectra `X`.
        h_real, h_imag: `[channels, N]` filter spectra `H`.
        conj_g_real, conj_g_imag: `[channels, rows, hop]`, the conjugate of
            the cotangent `g` of `u`.

    Returns:
        `(dX_real, dX_imag, dH_real, dH_imag)`: with `Q = fft(conj(g))`
        (zero-padded to N; the DFT matrix is symmetric, so the product
        `conj(X) H` gets `conj(Q)`), `dH_c = sum_r X_r conj(Q_cr)` and `dX_r =
        sum_c H_c Q_cr`.
    """
    fft_length = ops.shape(x_real)[-1]
    hop = ops.shape(conj_g_real)[-1]
    xr, xi = x_real[None], x_imag[None]
    hr, hi = h_real[:, None], h_imag[:, None]
    pad = [[0, 0], [0, 0], [0, fft_length - hop]]
    q_real, q_imag = ops.fft((ops.pad(conj_g_real, pad), ops.pad(conj_g_imag, pad)))
    return (
        ops.sum(hr * q_real - hi * q_imag, axis=0),
        ops.sum(hr * q_imag + hi * q_real, axis=0),
        ops.sum(xr * q_real + xi * q_imag, axis=1),
        ops.sum(xi * q_real - xr * q_imag, axis=1),
    )


@ops.custom_gradient
def _spectral_outputs(x_real, x_imag, h_real, h_imag, mask):
    """`mask * conj(fft(conj(X_r) H_c))[:hop]` for all rows r, filters c.

    The correlation outputs `z` themselves, stacked `[2, channels, rows,
    hop]` (real part, imaginary part: one output keeps the custom gradient
    portable across backends), with the arguments of `_spectral_energies`
    and its written-out gradient: `z = conj(u)` with cotangent `(a, b)`
    gives `u` the cotangent `g = mask (a - i b)`.
    """
    hop = ops.shape(mask)[-1]
    u_real, u_imag = _spectral_product_fft(x_real, x_imag, h_real, h_imag)
    outputs = ops.stack([u_real[..., :hop] * mask, -u_imag[..., :hop] * mask])

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        return _spectral_gradients(
            x_real, x_imag, h_real, h_imag, upstream[0] * mask, upstream[1] * mask
        ) + (ops.zeros_like(mask),)

    return outputs, precision.keeps_float64_gradient(grad, x_real)


def correlation_energies(
    inputs,
    filters_real,
    filters_imag,
    start,
    length,
    hop_multiple=1,
    fft_length=None,
    implementation="auto",
):
    """Squared moduli of complex correlations, in a pooling's padded layout.

    With `z[b, c, n] = sum_m x[b, n + m - (K - 1) // 2] h_c[m]` (the SAME,
    stride-1 correlation of `fft_conv1d`) and `h_c = filters_real[c] + i
    filters_imag[c]`: `e[c, b, p] = |z[b, c, start + p]|^2` if `0 <= start
    + p < time`, else 0, for `p` in `[0, L)`, `L >= length` a multiple of
    `hop_multiple`. That is the squared-modulus input of a pooling whose
    zero padding and block layout are folded into the correlation, in the
    channels-major layout `[channels, batch, L]` of the FFTs (the filter
    gradients are sums over the (batch, block) rows, which XLA reduces fast
    only when they are adjacent).

    Derivation: with `xp` the left-padded signal and N the FFT size, the DFT
    of `z_c` is `conj(conj(XP) fft(conj(h_c)))`, and `ifft(Z) =
    conj(fft(conj(Z))) / N`, so two forward FFTs suffice (`keras.ops` has
    no inverse complex FFT): `z = conj(fft(conj(XP) fft(conj(h_c)))) / N`,
    one complex transform per pair of real filters.

    Two exact algorithms compute it: one FFT of the whole padded signal
    (`implementation="single"`), or overlap-save (`"blocks"`): blocks of N
    = `fft_length` (default 3200) samples advancing by a hop `<= N - K + 1`
    (a multiple of `hop_multiple`), one transform per block and filter, the
    wrapped-around outputs of each block dropped. Both agree up to float32
    round-off; blocks are faster (their FFTs stay in the L1 cache) and
    handle a time axis known only at run time with a fixed FFT size.
    `"auto"` uses one FFT for static lengths with `length + K - 1 <= 3200`.
    The gradient is written out (`_spectral_energies`).
    Args:
        inputs: float tensor `[batch, time]`.
        filters_real: float tensor `[channels, kernel_size]`.
        filters_imag: float tensor `[channels, kernel_size]`.
        start: int (or scalar tensor) `<= 0`, e.g. minus the left padding
            of a SAME pooling.
        length: number of outputs wanted, `start + length >= time` (int, or
            a scalar tensor for a dynamic time axis).
        hop_multiple: `L` and the block hop are multiples of it (e.g. a
            pooling stride, so that pooling blocks never straddle FFT
            blocks).
        fft_length: optional FFT size: for one FFT `>= length + kernel_size
            - 1` (default: the next even 2^a 3^b 5^c size), for blocks `>= 2
            (kernel_size - 1)` (default 3200, more for kernels over 801 taps).
        implementation: "auto", "single" or "blocks" (see above).

    Returns:
        A float32 tensor `[channels, batch, L]`.
    """
    spectra, mask, (channels, batch, length) = _padded_correlation_layout(
        inputs,
        filters_real,
        filters_imag,
        start,
        length,
        hop_multiple,
        fft_length,
        implementation,
        "correlation_energies",
    )
    energies = _spectral_energies(*spectra, mask)
    return ops.reshape(energies, (channels, batch, length))


# Filter pairs per step of `pooled_correlation_energies`. One pair per step was
# the fastest as well as the leanest of 1 to 20 pairs (LEAF's exact engine in
# benchmarks/benchmark_frontends.py, TF XLA and JAX, 64 x 1 s and 8 x 10 s): a
# step's FFTs, [rows, N] complex64 (10 MB for 64 x 1 s), stay in the caches.
POOLED_GROUP_SIZE = 1


def pooled_correlation_energies(
    inputs,
    filters_real,
    filters_imag,
    kernel,
    strides,
    start,
    length,
    fft_length=None,
    implementation="auto",
    group_size=POOLED_GROUP_SIZE,
):
    """A linear pooling of `correlation_energies`, without its full-rate energies.

    `out[c, b, f] = sum_q kernel[c, q] e[c, b, f * strides + q]`, `e` the
    energies `correlation_energies(inputs, filters_real, filters_imag, start,
    length, hop_multiple=strides)` (same arguments), for every frame that their
    padded layout holds: `L / strides - ceil(taps / strides) + 1` frames.

    The same values as `channels_major_block_pooling(correlation_energies(...),
    kernel, strides, frames)`, computed `group_size` filter pairs at a time in
    a `keras.ops.fori_loop`, which stores none of the full-rate tensors: its
    written-out gradient computes each group's correlations again (one more
    FFT per block and filter) instead of keeping them from the forward pass,
    so a step holds one group's full-rate intermediates at a time, where the
    unpooled correlation keeps the correlations (two `[channels, batch, L]`
    tensors) and the energies for the backward pass. A loop op, not a Python
    loop, so that the compiler can neither merge the recomputation with the
    forward pass nor run every group at once.

    Args:
        inputs, filters_real, filters_imag, start, length, fft_length,
            implementation: as for `correlation_energies`.
        kernel: float tensor `[channels, taps]`, the pooling filters (static
            shape; e.g. `transpose(pooling.pooling_filters(channels))`).
        strides: int, the pooling's hop (also the layout's `hop_multiple`).
        group_size: filter pairs per loop step.

    Returns:
        A float32 tensor `[channels, batch, frames]`.
    """
    spectra, mask, (channels, batch, length) = _padded_correlation_layout(
        inputs,
        filters_real,
        filters_imag,
        start,
        length,
        strides,
        fft_length,
        implementation,
        "pooled_correlation_energies",
    )
    x_real, x_imag, h_real, h_imag = spectra
    if kernel.shape[0] != channels:
        raise ValueError(
            f"pooled_correlation_energies needs one pooling filter per filter pair, got a "
            f"kernel of shape {tuple(kernel.shape)} for {channels} pairs."
        )
    kernel = ops.cast(kernel, x_real.dtype)
    taps = kernel.shape[1]
    frames = length // strides - (-(-taps // strides)) + 1
    groups = -(-channels // group_size)
    size = -(-channels // groups)
    # Zero filters and zero pooling filters pad the last group; their frames are
    # zeros, dropped below.
    extra = [[0, groups * size - channels], [0, 0]]

    def grouped(tensor):
        return ops.reshape(ops.pad(tensor, extra), (groups, size, tensor.shape[1]))

    pooled = _grouped_pooled_energies(
        x_real,
        x_imag,
        grouped(h_real),
        grouped(h_imag),
        ops.reshape(mask, (batch, -1)),
        grouped(kernel),
        strides,
    )
    pooled = ops.reshape(pooled, (groups * size, batch, frames))
    return pooled[:channels]


def _grouped_pooled_energies(x_real, x_imag, h_real, h_imag, mask, kernel, strides):
    """`pooled_correlation_energies` on grouped operands, one group per loop step.

    Args:
        x_real, x_imag: `[rows, N]` block spectra, rows = batch * blocks.
        h_real, h_imag: `[groups, size, N]` scaled conjugate-filter spectra.
        mask: `[batch, blocks * hop]` 0/1 weights of the outputs inside the signal.
        kernel: `[groups, size, taps]` pooling filters.
        strides: the pooling's hop.

    Returns:
        `[groups, size, batch, frames]`.
    """

    @ops.custom_gradient
    def pooled(x_real, x_imag, h_real, h_imag, mask, kernel):
        groups, size, taps = kernel.shape
        batch = ops.shape(mask)[0]
        frames = ops.shape(mask)[1] // strides - (-(-taps // strides)) + 1
        # The rows of one batch element are consecutive: `[size, rows, hop]` and
        # `[size, batch, blocks * hop]` hold the same values in the same order.
        hop = ops.shape(mask)[1] * batch // ops.shape(x_real)[0]

        def group_energies(group):
            """`(energies [size, batch, L], u_real, u_imag [size, rows, hop])`."""
            u_real, u_imag = _spectral_product_fft(
                x_real, x_imag, _group(h_real, group), _group(h_imag, group)
            )
            u_real, u_imag = u_real[..., :hop], u_imag[..., :hop]
            power = ops.reshape(ops.square(u_real) + ops.square(u_imag), (size, batch, -1))
            return power * mask[None], u_real, u_imag

        def forward(group, outputs):
            power, _, _ = group_energies(group)
            frames_ = block_pooling.channels_major_block_pooling(
                power, _group(kernel, group), strides, frames
            )
            return ops.slice_update(outputs, (group, 0, 0, 0), frames_[None])

        outputs = ops.fori_loop(
            0, groups, forward, ops.zeros((groups, size, batch, frames), x_real.dtype)
        )

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args

            def backward(group, carry):
                dx_real, dx_imag, dh_real, dh_imag, d_kernel = carry
                power, u_real, u_imag = group_energies(group)
                kernel_group = _group(kernel, group)
                d_power, d_kernel_group = block_pooling.channels_major_block_pooling_gradients(
                    power, kernel_group, strides, _group(upstream, group)
                )
                # u has cotangent g = 2 mask dE u (`_spectral_energies`).
                weights = ops.reshape(2.0 * d_power * mask[None], ops.shape(u_real))
                gradients = _spectral_gradients(
                    x_real,
                    x_imag,
                    _group(h_real, group),
                    _group(h_imag, group),
                    weights * u_real,
                    -weights * u_imag,
                )
                return (
                    dx_real + gradients[0],
                    dx_imag + gradients[1],
                    ops.slice_update(dh_real, (group, 0, 0), gradients[2][None]),
                    ops.slice_update(dh_imag, (group, 0, 0), gradients[3][None]),
                    ops.slice_update(d_kernel, (group, 0, 0), d_kernel_group[None]),
                )

            dx_real, dx_imag, dh_real, dh_imag, d_kernel = ops.fori_loop(
                0,
                groups,
                backward,
                (
                    ops.zeros_like(x_real),
                    ops.zeros_like(x_imag),
                    ops.zeros_like(h_real),
                    ops.zeros_like(h_imag),
                    ops.zeros_like(kernel),
                ),
            )
            return dx_real, dx_imag, dh_real, dh_imag, ops.zeros_like(mask), d_kernel

        return outputs, precision.keeps_float64_gradient(grad, x_real)

    return pooled(x_real, x_imag, h_real, h_imag, mask, kernel)


def _group(tensor, group):
    """`tensor[group]` for a loop index `group` (a Python int or a scalar tensor)."""
    shape = tuple(ops.shape(tensor))
    return ops.slice(tensor, (group,) + (0,) * (len(shape) - 1), (1,) + shape[1:])[0]


def correlation_outputs(
    inputs,
    filters_real,
    filters_imag,
    start,
    length,
    hop_multiple=1,
    fft_length=None,
    implementation="auto",
):
    """Complex correlations in a pooling's padded channels-major layout.

    `(real, imag)[c, b, p] = z[b, c, start + p]` (`z` as in
    `correlation_energies`) if `0 <= start + p <
    time`, else 0, laid out and computed like `correlation_energies` (same
    arguments), with a written-out gradient. Pairing two real filters as
    `h_2k + i h_2k+1` gives their two real correlations as `real[k]` and
    `imag[k]` from one complex FFT.

    Returns:
        A pair `(real, imag)` of float32 tensors `[channels, batch, L]`.
    """
    spectra, mask, (channels, batch, length) = _padded_correlation_layout(
        inputs,
        filters_real,
        filters_imag,
        start,
        length,
        hop_multiple,
        fft_length,
        implementation,
        "correlation_outputs",
    )
    outputs = _spectral_outputs(*spectra, mask)
    return (
        ops.reshape(outputs[0], (channels, batch, length)),
        ops.reshape(outputs[1], (channels, batch, length)),
    )


def _padded_correlation_layout(
    inputs,
    filters_real,
    filters_imag,
    start,
    length,
    hop_multiple,
    fft_length,
    implementation,
    name,
):
    """Spectra and mask of `correlation_energies` / `correlation_outputs`.

    Returns:
        `((x_real, x_imag, h_real, h_imag), mask, (channels, batch, L))`:
        the block spectra `[rows, N]`, the scaled conjugate-filter spectra
        `[channels, N]`, the 0/1 mask `[rows, hop]` of outputs inside the
        signal, and the sizes of the `[channels, batch, L]` result.
    """
    inputs, filters_real, filters_imag, _ = _check_correlation_operands(
        inputs, filters_real, filters_imag, name
    )
    kernel_size = filters_real.shape[1]
    left, _ = padding.same_padding(ops.shape(inputs)[1], kernel_size)
    if isinstance(start, int) and start > 0:
        raise ValueError(f"start must be <= 0, got {start}.")
    batch, time = ops.shape(inputs)[0], ops.shape(inputs)[1]
    if isinstance(length, int) and isinstance(time, int) and (start + length < time):
        raise ValueError(f"start + length = {start + length} must cover the {time} input samples.")
    fft_length, hop, num_blocks = _correlation_plan(
        time, kernel_size, length, implementation, fft_length, hop_multiple
    )
    blocks = _signal_blocks(inputs, left - start, fft_length, hop, num_blocks)
    x_real, x_imag = ops.fft((blocks, ops.zeros_like(blocks)))
    h_real, h_imag = _conj_filter_spectra(filters_real, filters_imag, fft_length)
    positions = ops.reshape(ops.arange(num_blocks * hop, dtype="int32"), (num_blocks, hop)) + start
    mask = ops.cast(ops.logical_and(positions >= 0, positions < time), inputs.dtype)
    mask = ops.reshape(ops.tile(mask[None], (batch, 1, 1)), (-1, hop))
    return (
        (x_real, x_imag, h_real, h_imag),
        mask,
        (filters_real.shape[0], batch, num_blocks * hop),
    )

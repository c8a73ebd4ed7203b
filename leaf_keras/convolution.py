"""Convolutions of the learnable frontends: Gabor, sinc and normalized filters.

The filters of LEAF are long (401 taps for 25 ms at 16 kHz) and applied at
stride 1, so `GaborConv1D` and `SincConv1D` convolve in the Fourier domain by
default (`fft_conv1d`), which computes the same SAME-padded cross-correlation
as `tf.nn.conv1d` up to float32 round-off, several times faster than a direct
convolution. The direct convolution stays available (`implementation=
"direct"`).

Reference: Zeghidour et al., "LEAF: A Learnable Frontend for Audio
Classification", ICLR 2021; Ravanelli & Bengio, "Speaker Recognition from Raw
Waveform with SincNet", 2018.
"""

import math

import keras
import numpy as np
from keras import ops

from leaf_keras import impulse_responses
from leaf_keras import utils

_HALF_DTYPES = ("float16", "bfloat16")


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


def _same_padding(kernel_size):
    """(left, right) padding of a stride-1 SAME convolution, TF's rule."""
    left = (kernel_size - 1) // 2
    return left, kernel_size - 1 - left


def _to_float32(x):
    """Upcasts half-precision tensors: backends' FFTs need float32."""
    dtype = keras.backend.standardize_dtype(x.dtype)
    return (ops.cast(x, "float32"), dtype) if dtype in _HALF_DTYPES else (x,
                                                                          dtype)


def _check_conv_operands(inputs, filters, name):
    if len(inputs.shape) != 3:
        raise ValueError(f"{name} expects inputs [batch, time, 1], got shape "
                         f"{tuple(inputs.shape)}.")
    if len(filters.shape) != 3:
        raise ValueError(f"{name} expects filters [kernel_size, 1, channels], "
                         f"got shape {tuple(filters.shape)}.")
    if inputs.shape[-1] is not None and inputs.shape[-1] != 1:
        raise ValueError(f"{name} supports one input channel; got inputs of "
                         f"shape {tuple(inputs.shape)}.")
    if filters.shape[1] != 1:
        raise ValueError(f"{name} supports one input channel; got filters of "
                         f"shape {tuple(filters.shape)}.")


def _complex_correlate(x_real, x_imag, h_real, h_imag):
    """Spectrum of a correlation: X * conj(H), broadcast over channels."""
    x_real = ops.expand_dims(x_real, 1)
    x_imag = ops.expand_dims(x_imag, 1)
    return (x_real * h_real + x_imag * h_imag,
            x_imag * h_real - x_real * h_imag)


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
    inputs, dtype = _to_float32(inputs)
    filters = ops.cast(filters, inputs.dtype)
    kernel_size = filters.shape[0]
    time = ops.shape(inputs)[1]
    left, right = _same_padding(kernel_size)
    signal = ops.pad(inputs[:, :, 0], [[0, 0], [left, right]])
    if fft_length is None:
        if isinstance(time, int):
            fft_length = _next_fast_length(time + kernel_size - 1)
        else:
            fft_length = time + kernel_size - 1
    x_real, x_imag = ops.rfft(signal, fft_length=fft_length)
    h_real, h_imag = ops.rfft(ops.transpose(filters[:, 0, :]),
                              fft_length=fft_length)
    spectrum = _complex_correlate(x_real, x_imag, h_real, h_imag)
    outputs = ops.irfft(spectrum, fft_length=fft_length)[:, :, :time]
    outputs = ops.transpose(outputs, (0, 2, 1))
    # Restate the static channel count, which dynamic FFT lengths hide.
    outputs = ops.reshape(outputs, (ops.shape(inputs)[0], time,
                                    filters.shape[2]))
    return ops.cast(outputs, dtype)


# Overlap-save blocks: a CPU FFT is several times faster per point while its
# block stays in the L1 data cache. 3200 complex64 samples are 25 KB, which
# leaves room in a 32 KB L1d for the twiddles and the next block; 4096 (32
# KB) no longer fits. Measured on XLA CPU (AMD EPYC, 2 cores), exact LEAF
# forward + backward, 40 filters: at 64 x 1 s, 6 blocks of 3200 take ~0.36 s
# against ~0.51 s for one 17280-point FFT per filter and ~0.59 s for 5 blocks
# of 4096; at 8 x 10 s, 59 blocks of 3200 take ~0.55 s against ~0.7 s for
# 44 blocks of 4096 (one 162000-point FFT is ~4.5x slower still). 3200 =
# 2^7 5^2, and with a 401-tap kernel its hop, 2720, is a multiple of the
# 160-sample pooling stride, so a 1 s clip is exactly 6 blocks.
_BLOCK_FFT_LENGTH = 3200
# Static lengths that fit in one block use one FFT (no overlap to waste);
# longer ones use blocks, which beat one whole-clip FFT from 0.5 s on.
_MAX_SINGLE_FFT_LENGTH = _BLOCK_FFT_LENGTH


def _conj_filter_spectra(filters_real, filters_imag, fft_length):
    """`fft(conj(h_c)) / N` of the zero-padded filters, `(real, imag)`.

    Folding 1 / N into the small filter spectra keeps the large inverse
    transform free of a scaling pass.
    """
    kernel_size = filters_real.shape[1]
    pad = [[0, 0], [0, fft_length - kernel_size]]
    h_real, h_imag = ops.fft((ops.pad(filters_real, pad),
                              -ops.pad(filters_imag, pad)))
    scale = 1.0 / ops.cast(fft_length, filters_real.dtype)
    return h_real * scale, h_imag * scale


def _block_fft_length(kernel_size):
    """Block FFT size: `_BLOCK_FFT_LENGTH`, or more for long kernels (the
    hop N - K + 1 must cover the K - 1 samples each block borrows)."""
    return max(_BLOCK_FFT_LENGTH,
               _next_fast_length(4 * (kernel_size - 1), even=True))


def _correlation_plan(time, kernel_size, length, method, fft_length,
                      hop_multiple=1):
    """`(fft_length, hop, num_blocks)` for `length` outputs per signal.

    One FFT (`num_blocks = 1`, `hop` = `length` rounded up to
    `hop_multiple`) or overlap-save blocks of `fft_length` samples whose
    `hop` (a multiple of `hop_multiple`) leaves room for the K - 1 samples
    each block needs from the next one.
    """
    if method not in ("auto", "single", "blocks"):
        raise ValueError("method must be 'auto', 'single' or 'blocks', got "
                         f"{method!r}.")
    static = isinstance(length, int) and isinstance(time, int)
    if method == "auto":
        single = static and length + kernel_size - 1 <= _MAX_SINGLE_FFT_LENGTH
        method = "single" if single else "blocks"
    if method == "single":
        hop = (length + hop_multiple - 1) // hop_multiple * hop_multiple
        if fft_length is None:
            fft_length = (_next_fast_length(hop + kernel_size - 1, even=True)
                          if static else hop + kernel_size - 1)
        return fft_length, hop, 1
    if fft_length is None:
        fft_length = _block_fft_length(kernel_size)
    fft_length = int(fft_length)
    hop = (fft_length - kernel_size + 1) // hop_multiple * hop_multiple
    if hop < max(kernel_size - 1, 1):
        raise ValueError(
            f"A block fft_length of {fft_length} leaves a hop of {hop} "
            f"samples (a multiple of {hop_multiple}); it must be >= "
            f"kernel_size - 1 = {kernel_size - 1}: use a larger fft_length.")
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
    signal = ops.pad(inputs, [[0, 0],
                              [lead, (num_blocks + 1) * hop - time - lead]])
    rows = ops.reshape(signal, (ops.shape(inputs)[0], num_blocks + 1, hop))
    blocks = ops.concatenate(
        [rows[:, :-1], rows[:, 1:, :fft_length - hop]], axis=2)
    return ops.reshape(blocks, (-1, fft_length))


def _check_correlation_operands(inputs, filters_real, filters_imag, name):
    inputs = ops.convert_to_tensor(inputs)
    filters_real = ops.convert_to_tensor(filters_real)
    if len(inputs.shape) != 2 or len(filters_real.shape) != 2:
        raise ValueError(
            f"{name} expects inputs [batch, time] and filters [channels, "
            f"kernel_size], got {tuple(inputs.shape)} and "
            f"{tuple(filters_real.shape)}.")
    inputs, dtype = _to_float32(inputs)
    filters_real = ops.cast(filters_real, inputs.dtype)
    filters_imag = ops.cast(filters_imag, inputs.dtype)
    return inputs, filters_real, filters_imag, dtype


def complex_fft_correlation(inputs, filters_real, filters_imag,
                            fft_length=None, method="auto"):
    """SAME, stride-1 correlation of real signals with complex filters.

    `z[b, c, n] = sum_m x[b, n + m - (K - 1) // 2] h_c[m]` (TF's SAME
    padding rule, as `fft_conv1d`), `h_c = filters_real[c] + i
    filters_imag[c]`: the real and imaginary parts are what `fft_conv1d`
    returns for the interleaved real filter bank, but computed with one
    complex inverse FFT per complex filter instead of two real ones.

    Derivation: with `xp` the left-padded signal and N the FFT size, the
    DFT of `z_c` is `Z = XP(w) sum_m h_c[m] exp(+i w m) = conj(conj(XP)
    fft(conj(h_c)))`, and `z = ifft(Z) = conj(fft(conj(Z))) / N`, so two
    forward FFTs (`keras.ops` has no inverse complex FFT) suffice:
    `z = conj(fft(conj(XP) fft(conj(h_c)))) / N`.

    Two exact algorithms compute it: one FFT of the whole padded signal
    (`method="single"`), or overlap-save (`method="blocks"`): blocks of N
    = `fft_length` (default 3200) samples advancing by N - K + 1, one
    transform per block and filter, the K - 1 wrapped-around outputs of
    each block dropped. Both give the same values up to float32 round-off;
    blocks are much faster (their FFTs stay in the L1 cache) and handle a
    time axis known only at run time with a fixed FFT size. `"auto"` uses
    one FFT for static lengths with `time + K - 1 <= 3200` and blocks
    otherwise.

    Args:
        inputs: float tensor `[batch, time]`.
        filters_real: float tensor `[channels, kernel_size]`.
        filters_imag: float tensor `[channels, kernel_size]`.
        fft_length: optional FFT size. For one FFT, `>= time + kernel_size -
            1` (default: the next even 2^a 3^b 5^c size); for blocks,
            `>= 2 * (kernel_size - 1)` (default 3200, or more for kernels
            longer than 801 taps).
        method: "auto", "single" or "blocks".

    Returns:
        A pair `(real, imag)` of float tensors `[batch, channels, time]`.
    """
    inputs, filters_real, filters_imag, dtype = _check_correlation_operands(
        inputs, filters_real, filters_imag, "complex_fft_correlation")
    kernel_size = filters_real.shape[1]
    batch, time = ops.shape(inputs)[0], ops.shape(inputs)[1]
    fft_length, hop, num_blocks = _correlation_plan(
        time, kernel_size, time, method, fft_length)
    blocks = _signal_blocks(inputs, _same_padding(kernel_size)[0],
                            fft_length, hop, num_blocks)
    x_real, x_imag = ops.fft((blocks, ops.zeros_like(blocks)))
    h_real, h_imag = _conj_filter_spectra(filters_real, filters_imag,
                                          fft_length)
    # [batch * blocks, 1, N] x [channels, N]: conj(X) H, then
    # z = conj(fft(conj(X) H)), keeping the first `hop` outputs of a block.
    x_real, x_imag = x_real[:, None], -x_imag[:, None]
    z_real, z_imag = ops.fft((x_real * h_real - x_imag * h_imag,
                              x_real * h_imag + x_imag * h_real))
    channels = filters_real.shape[0]

    def to_output(part):
        part = ops.reshape(part[..., :hop],
                           (batch, num_blocks, channels, hop))
        part = ops.reshape(ops.transpose(part, (0, 2, 1, 3)),
                           (batch, channels, num_blocks * hop))
        # Restate the static sizes, which dynamic FFT lengths hide.
        return ops.cast(ops.reshape(part[:, :, :time],
                                    (batch, channels, time)), dtype)

    return to_output(z_real), to_output(-z_imag)


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
        return _spectral_gradients(x_real, x_imag, h_real, h_imag,
                                   weights * z_real, -weights * z_imag) + (
                                       ops.zeros_like(mask),)

    return energies, grad


def _spectral_gradients(x_real, x_imag, h_real, h_imag, conj_g_real,
                        conj_g_imag):
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
    q_real, q_imag = ops.fft((ops.pad(conj_g_real, pad),
                              ops.pad(conj_g_imag, pad)))
    return (ops.sum(hr * q_real - hi * q_imag, axis=0),
            ops.sum(hr * q_imag + hi * q_real, axis=0),
            ops.sum(xr * q_real + xi * q_imag, axis=1),
            ops.sum(xi * q_real - xr * q_imag, axis=1))


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
        return _spectral_gradients(x_real, x_imag, h_real, h_imag,
                                   upstream[0] * mask, upstream[1] * mask) + (
                                       ops.zeros_like(mask),)

    return outputs, grad


def correlation_energies(inputs, filters_real, filters_imag, start, length,
                         hop_multiple=1, fft_length=None, method="auto"):
    """Squared moduli of `complex_fft_correlation`, zero outside the signal.

    `e[c, b, p] = |z[b, c, start + p]|^2` if `0 <= start + p < time`, else
    0, for `p` in `[0, L)`, `L >= length` a multiple of `hop_multiple`:
    the squared-modulus input of a pooling whose (zero) padding and block
    layout are folded into the correlation, in the channels-major layout
    `[channels, batch, L]` of the FFTs (the filter gradients are sums over
    the (batch, block) rows, which XLA reduces fast only when they are
    adjacent). Exact, computed with one FFT or overlap-save blocks like
    `complex_fft_correlation` (whose `fft_length` and `method` it takes),
    with a written-out gradient.

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
        fft_length: optional FFT size, see `complex_fft_correlation`.
        method: "auto", "single" or "blocks".

    Returns:
        A float32 tensor `[channels, batch, L]`.
    """
    spectra, mask, (channels, batch, length) = _padded_correlation_layout(
        inputs, filters_real, filters_imag, start, length, hop_multiple,
        fft_length, method, "correlation_energies")
    energies = _spectral_energies(*spectra, mask)
    return ops.reshape(energies, (channels, batch, length))


def correlation_outputs(inputs, filters_real, filters_imag, start, length,
                        hop_multiple=1, fft_length=None, method="auto"):
    """`complex_fft_correlation` in a pooling's padded channels-major layout.

    `(real, imag)[c, b, p] = z[b, c, start + p]` if `0 <= start + p <
    time`, else 0, laid out and computed like `correlation_energies` (same
    arguments), with a written-out gradient. Pairing two real filters as
    `h_2k + i h_2k+1` gives their two real correlations as `real[k]` and
    `imag[k]` from one complex FFT.

    Returns:
        A pair `(real, imag)` of float32 tensors `[channels, batch, L]`.
    """
    spectra, mask, (channels, batch, length) = _padded_correlation_layout(
        inputs, filters_real, filters_imag, start, length, hop_multiple,
        fft_length, method, "correlation_outputs")
    outputs = _spectral_outputs(*spectra, mask)
    return (ops.reshape(outputs[0], (channels, batch, length)),
            ops.reshape(outputs[1], (channels, batch, length)))


def _padded_correlation_layout(inputs, filters_real, filters_imag, start,
                               length, hop_multiple, fft_length, method,
                               name):
    """Spectra and mask of `correlation_energies` / `correlation_outputs`.

    Returns:
        `((x_real, x_imag, h_real, h_imag), mask, (channels, batch, L))`:
        the block spectra `[rows, N]`, the scaled conjugate-filter spectra
        `[channels, N]`, the 0/1 mask `[rows, hop]` of outputs inside the
        signal, and the sizes of the `[channels, batch, L]` result.
    """
    inputs, filters_real, filters_imag, _ = _check_correlation_operands(
        inputs, filters_real, filters_imag, name)
    kernel_size = filters_real.shape[1]
    left = _same_padding(kernel_size)[0]
    if isinstance(start, int) and start > 0:
        raise ValueError(f"start must be <= 0, got {start}.")
    batch, time = ops.shape(inputs)[0], ops.shape(inputs)[1]
    if isinstance(length, int) and isinstance(time, int) and (
            start + length < time):
        raise ValueError(f"start + length = {start + length} must cover the "
                         f"{time} input samples.")
    fft_length, hop, num_blocks = _correlation_plan(
        time, kernel_size, length, method, fft_length, hop_multiple)
    blocks = _signal_blocks(inputs, left - start, fft_length, hop, num_blocks)
    x_real, x_imag = ops.fft((blocks, ops.zeros_like(blocks)))
    h_real, h_imag = _conj_filter_spectra(filters_real, filters_imag,
                                          fft_length)
    positions = ops.reshape(ops.arange(num_blocks * hop, dtype="int32"),
                            (num_blocks, hop)) + start
    mask = ops.cast(ops.logical_and(positions >= 0, positions < time),
                    inputs.dtype)
    mask = ops.reshape(ops.tile(mask[None], (batch, 1, 1)), (-1, hop))
    return ((x_real, x_imag, h_real, h_imag), mask,
            (filters_real.shape[0], batch, num_blocks * hop))


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
        raise ValueError(f"fft_length={fft_length} must be >= 2 * kernel_size "
                         f"- 1 = {2 * kernel_size - 1}.")
    inputs, dtype = _to_float32(inputs)
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
    full = ops.irfft((x_real * h_real - x_imag * h_imag,
                      x_real * h_imag + x_imag * h_real), fft_length=fft_length)
    # Each block's full convolution has block + K - 1 <= 2 * block samples:
    # its head stays in place and its tail spills into the next block.
    head = full[..., :block]
    tail = ops.pad(full[..., block:block + kernel_size - 1],
                   [[0, 0], [0, 0], [0, 0], [0, block - kernel_size + 1]])
    zeros = ops.zeros_like(head[:, :, :1, :])
    summed = (ops.concatenate([head, zeros], axis=2) +
              ops.concatenate([zeros, tail], axis=2))
    full_signal = ops.reshape(summed, (batch, channels, -1))
    left, _ = _same_padding(kernel_size)
    start = kernel_size - 1 - left
    outputs = full_signal[:, :, start:start + time]
    outputs = ops.reshape(ops.transpose(outputs, (0, 2, 1)),
                          (batch, time, channels))
    return ops.cast(outputs, dtype)


def _apply_conv(inputs, filters, strides, padding, implementation):
    """Direct (`ops.conv`) or FFT convolution of [batch, time, 1] inputs."""
    if implementation == "fft":
        return fft_conv1d(inputs, filters)
    if implementation == "overlap_add":
        return overlap_add_conv1d(inputs, filters)
    return ops.conv(inputs, ops.cast(filters, inputs.dtype), strides=strides,
                    padding=padding)


def _resolve_implementation(implementation, kernel_size, strides, padding):
    if implementation not in ("auto", "direct", "fft", "overlap_add"):
        raise ValueError(
            f"implementation must be 'auto', 'direct', 'fft' or 'overlap_add', "
            f"got {implementation!r}.")
    fft_possible = strides == 1 and padding == "same"
    if implementation == "auto":
        return "fft" if fft_possible and kernel_size >= 32 else "direct"
    if implementation != "direct" and not fft_possible:
        raise ValueError(
            f"implementation={implementation!r} needs strides=1 and "
            f"padding='same', got strides={strides}, padding={padding!r}.")
    return implementation


def _check_single_channel(layer, input_shape):
    if len(input_shape) != 3 or input_shape[-1] != 1:
        raise ValueError(
            f"{layer.__class__.__name__} expects inputs [batch, time, 1], got "
            f"shape {tuple(input_shape)}.")


def _conv_output_length(length, kernel_size, strides, padding):
    if length is None:
        return None
    if padding == "same":
        return (length + strides - 1) // strides
    return max(length - kernel_size, -1) // strides + 1


@keras.saving.register_keras_serializable(package="leaf_keras")
class GaborConstraint(keras.constraints.Constraint):
    """Keeps Gabor parameters in a meaningful range.

    The center frequency mu is clipped to [0, pi] and the standard deviation
    sigma to [4 sqrt(2 ln 2) / pi, kernel_size sqrt(2 ln 2) / pi] samples,
    i.e. the full width at half maximum of the frequency response stays
    between 2 pi / kernel_size ... pi / 2 (Section 2.2 of
    https://arxiv.org/abs/1711.01161).

    Args:
        kernel_size: filter length in samples.
    """

    def __init__(self, kernel_size):
        self.kernel_size = int(kernel_size)

    def __call__(self, kernel):
        mu = impulse_responses.clip(kernel[:, 0], 0.0, math.pi)
        sigma_lower = 4.0 * math.sqrt(2.0 * math.log(2.0)) / math.pi
        sigma_upper = self.kernel_size * math.sqrt(2.0 * math.log(2.0)) / math.pi
        sigma = impulse_responses.clip(kernel[:, 1], sigma_lower, sigma_upper)
        return ops.stack([mu, sigma], axis=1)

    def get_config(self):
        return {"kernel_size": self.kernel_size}


class _ParametricConv1D(keras.layers.Layer):
    """Shared constructor/config of the parametric 1-D convolutions."""

    def __init__(self, filters, kernel_size, strides=1, padding="same",
                 use_bias=False, kernel_initializer=None,
                 kernel_regularizer=None, trainable=True,
                 implementation="auto", name=None, **kwargs):
        kwargs.pop("input_shape", None)  # accepted for original call sites
        # Filters are built and convolved in float32 even under a mixed
        # policy: Gabor/sinc filters and FFTs lose too much in half precision.
        # (Their float32 weights are also created with autocast=False: Keras
        # reads autocast weights in the compute dtype inside the autocast
        # scope of an enclosing layer, e.g. a frontend, whatever this
        # layer's `autocast`; a sinc cutoff rounded to bfloat16 moves by up
        # to 0.4 %, which changes the filter outputs by ~8 %.)
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, trainable=trainable, **kwargs)
        if int(filters) < 2 or int(filters) % 2:
            raise ValueError(f"{self.__class__.__name__}: filters must be an "
                             f"even number >= 2, got {filters}.")
        self.kernel_size, self.strides, self.padding = (
            utils.check_window_arguments(kernel_size, strides, padding))
        self.filters = int(filters)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.implementation = _resolve_implementation(
            implementation, self.kernel_size, self.strides, self.padding)
        self._implementation_arg = implementation

    def _build_weights(self, input_shape, kernel_shape, bias_size,
                       constraint=None):
        """Checks the single input channel; adds the float32 "kernel" (and
        "bias" of `bias_size` values with `use_bias`)."""
        _check_single_channel(self, input_shape)
        self.kernel = self.add_weight(
            name="kernel", shape=kernel_shape,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=constraint,
            trainable=self.trainable, dtype="float32", autocast=False)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(bias_size,),
                                        initializer="zeros", dtype="float32",
                                        autocast=False)

    def _convolve(self, inputs, filters):
        inputs, dtype = _to_float32(ops.convert_to_tensor(inputs))
        outputs = _apply_conv(inputs, filters, self.strides, self.padding,
                              self.implementation)
        if self.use_bias:
            outputs = outputs + ops.cast(self.bias, outputs.dtype)
        return ops.cast(outputs, self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(
                self.kernel_regularizer),
            "implementation": self._implementation_arg,
        })
        return config


@keras.saving.register_keras_serializable(package="leaf_keras")
class GaborConv1D(_ParametricConv1D):
    """Convolution with complex Gabor filters, 2 parameters per filter.

    Filter k is `exp(-t^2 / (2 sigma_k^2)) exp(i mu_k t) / (sqrt(2 pi)
    sigma_k)`, t = -(K // 2) .. (K + 1) // 2 - 1. The weight "kernel" of
    shape `(filters // 2, 2)` holds (mu in radians per sample, sigma in
    samples); `GaborConstraint` clips it inside `call` (the stored variable
    may hold out-of-range values, as in the original) and is also attached to
    the variable, so optimizers project it after each step like the original.

    Args:
        filters: number of real output channels, 2 per complex filter
            (channel 2k is the real part of filter k, 2k + 1 its imaginary
            part).
        kernel_size: filter length K in samples.
        strides: convolution stride.
        padding: "same" or "valid".
        use_bias: whether to add a bias per output channel.
        kernel_initializer: initializer of the `(filters // 2, 2)` kernel,
            e.g. `GaborInit`.
        kernel_regularizer: optional regularizer of the kernel.
        trainable: whether the Gabor parameters are learned.
        sort_filters: if True, filters are sorted by center frequency.
        implementation: "auto" (FFT for long stride-1 SAME kernels), "fft",
            "overlap_add" or "direct".
        name: layer name.

    Input shape:
        `(batch, time, 1)`.

    Output shape:
        `(batch, time, filters)` for SAME padding at stride 1.

    Example:
        >>> conv = GaborConv1D(80, 401, kernel_initializer=GaborInit(
        ...     sample_rate=16000, min_freq=60.0, max_freq=7800.0))
        >>> conv(np.zeros((2, 16000, 1), "float32")).shape  # (2, 16000, 80)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same",
                 use_bias=False, kernel_initializer=None,
                 kernel_regularizer=None, trainable=True, sort_filters=False,
                 implementation="auto", name=None, **kwargs):
        if kernel_initializer is None:
            from leaf_keras import initializers  # pylint: disable=g-import-not-at-top
            kernel_initializer = initializers.GaborInit(
                min_freq=60.0, max_freq=7800.0)
        super().__init__(filters, kernel_size, strides, padding, use_bias,
                         kernel_initializer, kernel_regularizer, trainable,
                         implementation, name, **kwargs)
        self.sort_filters = bool(sort_filters)
        self.constraint = GaborConstraint(self.kernel_size)

    def build(self, input_shape):
        self._build_weights(input_shape, (self.filters // 2, 2), self.filters,
                            self.constraint)

    def clipped_kernel(self):
        """The Gabor parameters as used: clipped, optionally sorted."""
        kernel = self.constraint(ops.cast(self.kernel, "float32"))
        if self.sort_filters:
            kernel = ops.take(kernel, ops.argsort(kernel[:, 0]), axis=0)
        return kernel

    def complex_filters(self):
        """The complex Gabor filters as `(real, imag)`, each
        `(filters // 2, kernel_size)`."""
        return impulse_responses.gabor_filters(self.clipped_kernel(),
                                               self.kernel_size)

    def filter_bank(self):
        """Real convolution kernel `(kernel_size, 1, filters)` (interleaved)."""
        real, imag = self.complex_filters()
        stacked = ops.reshape(ops.stack([real, imag], axis=1),
                              (self.filters, self.kernel_size))
        return ops.expand_dims(ops.transpose(stacked), 1)

    def call(self, inputs):
        return self._convolve(inputs, self.filter_bank())

    def compute_output_shape(self, input_shape):
        return (input_shape[0],
                _conv_output_length(input_shape[1], self.kernel_size,
                                    self.strides, self.padding), self.filters)

    def get_config(self):
        config = super().get_config()
        config["sort_filters"] = self.sort_filters
        return config


@keras.saving.register_keras_serializable(package="leaf_keras")
class SincConv1D(_ParametricConv1D):
    """Convolution with Hamming-windowed sinc band-pass filters (SincNet).

    The weight "kernel" `(filters // 2, 2)` holds (lower cutoff, band width)
    in Hz. As in the original: `low = min_low_hz + |kernel[:, 0]|`,
    `high = clip(low + min_band_hz + |kernel[:, 1]|, min_low_hz,
    sample_rate / 2)`, the band-pass is normalized to a peak of 1 and
    multiplied by the Hamming window `0.54 - 0.46 cos(2 pi n / K)`.

    Note on `sample_rate`: the original layer builds its filters with
    `sinc_filters(...)` at that function's default rate of 16000 Hz, and the
    original frontends never pass a rate to the layer (whose default is also
    16000). This port keeps that: `sample_rate` (default 16000) sets both
    the Nyquist clip and the time axis of the filters, and `SincNet` /
    `SincNetPlus` leave it at 16000 whatever their own `sample_rate`, so the
    parameters are "Hz at 16 kHz" (i.e. a normalized frequency times 16000).

    Like the original, `filters` counts the channels of a complex
    convolution: the layer produces `filters // 2` real output channels.

    Args:
        filters: twice the number of band-pass filters.
        kernel_size: filter length in samples (odd).
        strides: convolution stride.
        padding: "same" or "valid".
        use_bias: whether to add a bias per output channel.
        kernel_initializer: initializer of the kernel, e.g. `SincInit`.
        kernel_regularizer: optional regularizer of the kernel.
        trainable: whether the cutoffs are learned.
        sample_rate: rate (Hz) of the filters' time axis, see above.
        min_low_hz: minimum lower cutoff frequency.
        min_band_hz: minimum band width.
        implementation: "auto", "fft", "overlap_add" or "direct".
        name: layer name.

    Input shape:
        `(batch, time, 1)`.

    Output shape:
        `(batch, time, filters // 2)` for SAME padding at stride 1.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same",
                 use_bias=False, kernel_initializer=None,
                 kernel_regularizer=None, trainable=True, sample_rate=16000,
                 min_low_hz=50.0, min_band_hz=50.0, implementation="auto",
                 name=None, **kwargs):
        if kernel_initializer is None:
            from leaf_keras import initializers  # pylint: disable=g-import-not-at-top
            kernel_initializer = initializers.SincInit()
        super().__init__(filters, kernel_size, strides, padding, use_bias,
                         kernel_initializer, kernel_regularizer, trainable,
                         implementation, name, **kwargs)
        if self.kernel_size % 2 == 0:
            raise ValueError(
                f"SincConv1D needs an odd kernel_size, got {kernel_size}.")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}.")
        self.sample_rate = sample_rate
        self.min_low_hz = float(min_low_hz)
        self.min_band_hz = float(min_band_hz)
        self._window = utils.window(utils.WindowType.HAMMING,
                                    self.kernel_size).astype(np.float32)

    def build(self, input_shape):
        self._build_weights(input_shape, (self.filters // 2, 2),
                            self.filters // 2)

    def band_edges(self):
        """(low, high) cutoffs in Hz after the abs/min/clip rules."""
        kernel = ops.cast(self.kernel, "float32")
        low = self.min_low_hz + ops.abs(kernel[:, 0])
        high = impulse_responses.clip(
            low + self.min_band_hz + ops.abs(kernel[:, 1]), self.min_low_hz,
            self.sample_rate / 2.0)
        return low, high

    def filter_bank(self):
        """Real convolution kernel `(kernel_size, 1, filters // 2)`."""
        low, high = self.band_edges()
        filters = impulse_responses.sinc_filters(
            low[None, :], high[None, :], self.kernel_size, self.sample_rate)
        filters = filters * ops.convert_to_tensor(self._window[:, None])
        return ops.expand_dims(filters, 1)

    def call(self, inputs):
        return self._convolve(inputs, self.filter_bank())

    def compute_output_shape(self, input_shape):
        return (input_shape[0],
                _conv_output_length(input_shape[1], self.kernel_size,
                                    self.strides, self.padding),
                self.filters // 2)

    def get_config(self):
        config = super().get_config()
        config.update({"sample_rate": self.sample_rate,
                       "min_low_hz": self.min_low_hz,
                       "min_band_hz": self.min_band_hz})
        return config


@keras.saving.register_keras_serializable(package="leaf_keras")
class NormalizedConv1D(_ParametricConv1D):
    """A 1-D convolution whose filters are kept at unit L2 norm.

    The weight "kernel" `(kernel_size, 1, filters)` is divided by its L2 norm
    over the time axis (`keras.constraints.UnitNorm(axis=0)`) inside `call`.

    Args:
        filters: number of output channels.
        kernel_size: filter length.
        strides: convolution stride.
        padding: "same" or "valid".
        use_bias: whether to add a bias per output channel.
        kernel_initializer: initializer of the kernel.
        kernel_regularizer: optional regularizer of the kernel.
        trainable: whether the filters are learned.
        implementation: "auto", "fft", "overlap_add" or "direct".
        name: layer name.

    Input shape:
        `(batch, time, 1)`.

    Output shape:
        `(batch, frames, filters)`.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same",
                 use_bias=False, kernel_initializer="glorot_uniform",
                 kernel_regularizer=None, trainable=True,
                 implementation="auto", name=None, **kwargs):
        super().__init__(2 * int(filters), kernel_size, strides, padding,
                         use_bias, kernel_initializer, kernel_regularizer,
                         trainable, implementation, name, **kwargs)
        self.filters = int(filters)
        self.constraint = keras.constraints.UnitNorm(axis=0)

    def build(self, input_shape):
        self._build_weights(input_shape, (self.kernel_size, 1, self.filters),
                            self.filters, self.constraint)

    def filter_bank(self):
        """The unit-norm kernel `(kernel_size, 1, filters)`."""
        return self.constraint(ops.cast(self.kernel, "float32"))

    def call(self, inputs):
        return self._convolve(inputs, self.filter_bank())

    def compute_output_shape(self, input_shape):
        return (input_shape[0],
                _conv_output_length(input_shape[1], self.kernel_size,
                                    self.strides, self.padding), self.filters)

"""The plan of the band-limited Gabor filterbank: decimations and blocks.

Everything here is numpy and runs when the layer is built or its weights
are loaded, never inside `call`: which decimation each Gabor filter can be
computed at (`plan_decimations`), the static layout of the overlap-save
blocks (`BandPlan`) and the interpolation that evaluates the Gaussian
pooling on a decimated grid (`interpolation_matrix`). See
`band_limited` for the algorithm.
"""

import dataclasses
import math

import numpy as np
from keras import ops

from leaf_keras import convolution


def plan_decimations(
    gabor_kernel,
    kernel_size=401,
    strides=160,
    block_size=5120,
    band_stds=4.0,
    bandwidth_margin=1.1,
    max_decimation=80,
    leakage=2e-3,
):
    """Chooses the decimation factor of each Gabor filter.

    Filter k is computed at every `D_k`-th sample from the `block_size / D_k`
    DFT bins around its center, i.e. from a band of width `2 pi / D_k`. That
    band must hold the filter's frequency response: `pi / D_k >= h_k`, with
    `h_k = band_stds / sigma_k` (times `bandwidth_margin`) the half width of
    the Gaussian response. `|y_k|^2` is then aliased at rate `D_k`, but only by
    the products of the response's tails (`exp(-(pi / D_k)^2 sigma_k^2)`,
    below 1e-6 for `band_stds >= 4`), which the pooling's narrow low-pass
    suppresses further, so no 2x oversampling is needed.

    Args:
        gabor_kernel: array `(n_filters, 2)` of (center frequency in radians
            per sample, standard deviation in samples), unclipped.
        kernel_size: Gabor filter length in samples.
        strides: pooling stride; decimations divide it.
        block_size: FFT block length; decimations divide it.
        band_stds: half width of the kept band, in standard deviations of the
            Gabor frequency response (`1 / sigma_k`).
        bandwidth_margin: extra factor on the band width, so that filters may
            become this much wider during training before accuracy degrades.
        max_decimation: largest allowed decimation.
        leakage: the kept band also holds every part of the truncated
            filter's response above this fraction of its peak.

    Returns:
        numpy int array `(n_filters,)` of divisors of `strides`.
    """
    clipped = convolution.GaborConstraint(kernel_size).clip_numpy(gabor_kernel)
    mu, sigma = clipped[:, 0], clipped[:, 1]
    # The truncated filter is never narrower than the main lobe of its
    # kernel_size-sample support (matters for sigma ~ kernel_size / 3).
    half_width = np.maximum(band_stds / sigma, 4.0 * math.pi / kernel_size)
    half_width = half_width * bandwidth_margin
    # Wide envelopes (sigma above ~kernel_size / 6) are cut off at the ends
    # of the kernel, whose response then has sidelobes that decay only as
    # 1 / frequency: a weak channel next to loud out-of-band sounds (the
    # lowest filters on speech) picks up their energy through them, so the
    # band must also hold the sidelobes above `leakage`, measured on the
    # truncated filter with the envelope `bandwidth_margin` times wider.
    leakage_widths = _sidelobe_half_widths(
        mu, sigma * bandwidth_margin, kernel_size, block_size, leakage
    )
    candidates = sorted(
        (
            d
            for d in range(1, strides + 1)
            if strides % d == 0 and block_size % d == 0 and d <= max_decimation
        ),
        reverse=True,
    )
    decimations = []
    for h, leak in zip(half_width, leakage_widths):
        fitting = [d for d in candidates if math.pi / d >= h and block_size // d >= leak]
        decimations.append(fitting[0] if fitting else 1)
    return np.asarray(decimations, np.int64)


def _sidelobe_half_widths(mu, sigma, kernel_size, block_size, leakage):
    """Bins around each center needed to hold `|G| > leakage * max |G|`.

    `G` is the length-`block_size` DFT of the truncated, `kernel_size`-tap
    Gabor filter. Returns, per filter, the smallest even band length (in
    bins) centered on the filter's center bin outside which the response
    stays below `leakage` times its peak.
    """
    half = kernel_size // 2
    t = np.arange(-half, half + 1)
    envelope = np.exp(-(t[None, :] ** 2) / (2.0 * sigma[:, None] ** 2))
    response = np.abs(np.fft.fft(envelope, block_size, axis=1))
    response /= response.max(axis=1, keepdims=True)
    # Distance of every bin from the center (in bins, circular): the
    # envelope's response is centered on bin 0; the band is centered on mu.
    bins = np.arange(block_size)
    distance = np.minimum(bins, block_size - bins)
    lengths = []
    for row in response:
        above = distance[row > leakage]
        lengths.append(2 * (int(above.max()) + 1) if above.size else 2)
    del mu  # the response of a modulated envelope is the same, shifted
    return np.asarray(lengths)


def _interpolation_kernel(positions, taps):
    """Gaussian-windowed sinc, support |positions| <= taps (in samples).

    The window's standard deviation is the smaller of `taps / 3.5` and
    `sqrt(taps / 2.2)`. Short kernels (taps <= 5) take the first: `|y|^2` is
    aliased at the decimated rate (see `plan_decimations`), most at
    transients, and a narrow window keeps that error local (with 5 taps the
    pooled energies are within ~1e-4 of the exact path, ~1e-3 after PCEN).
    But cut at `taps` where the window is still `exp(-3.5^2 / 2)` = 2e-3 of
    its peak, the kernel's weights sum to 1 only within ~5e-5 at any length,
    and that error, proportional to the loud frames' energy, is what PCEN
    shows in the quiet frames next to them: it held every wider band at
    ~1e-4 after PCEN. The second form leaves `exp(-1.1 taps)` at the cut
    (5e-6 at 11 taps) and keeps the pass band flat where the wider bands of
    the `tolerance` settings put `|y|^2`'s content: 1e-5 after PCEN.
    """
    std = min(taps / 3.5, math.sqrt(taps / 2.2))
    window = np.exp(-0.5 * (positions / std) ** 2)
    return np.where(np.abs(positions) <= taps, np.sinc(positions) * window, 0.0)


def interpolation_matrix(decimation, kernel_size, taps, dtype="float32"):
    """Maps pooling windows to weights on a decimated grid.

    Row j, column q: interpolation weight of grid sample q (at offset
    `decimation * (q - taps)` from the window start) for window tap j.
    Returns the matrix (a `dtype` tensor) and its number of columns.
    """
    count = (kernel_size - 1 + 2 * taps * decimation) // decimation + 1
    grid = decimation * (np.arange(count) - taps)
    j = np.arange(kernel_size)
    matrix = _interpolation_kernel((j[:, None] - grid[None, :]) / decimation, taps)
    return ops.convert_to_tensor(matrix, dtype), count


@dataclasses.dataclass(frozen=True)
class BandPlan:
    """Where each filter's band is computed: the static layout of the blocks.

    Attributes:
        decimations: `(n_filters,)` decimation factor of each filter.
        groups: `(decimation, filter indices)` of the filters sharing it.
        inverse_order: puts the concatenated groups back in filter order.
        step: lcm of the decimations: the kept outputs of a block start at
            a multiple of it, free of circular wrap-around.
        valid_start: first kept output of a block.
        hop: kept outputs per block (a multiple of `step`).
        guard: samples before the first pooling window, room for the
            interpolation taps of the coarsest grid.
    """

    decimations: np.ndarray
    groups: tuple
    inverse_order: np.ndarray
    step: int
    valid_start: int
    hop: int
    guard: int

    @classmethod
    def create(cls, decimations, kernel_size, block_size, interpolation_taps):
        """The plan of blocks of `block_size` for these decimations."""
        decimations = np.asarray(decimations, np.int64)
        step = int(np.lcm.reduce(decimations))
        half = kernel_size // 2
        valid_start = -(-half // step) * step
        groups = tuple(
            (int(d), np.flatnonzero(decimations == d)) for d in sorted(set(decimations.tolist()))
        )
        order = np.concatenate([indices for _, indices in groups])
        return cls(
            decimations=decimations,
            groups=groups,
            inverse_order=np.argsort(order).astype("int32"),
            step=step,
            valid_start=valid_start,
            hop=(block_size - valid_start - half) // step * step,
            guard=-(-interpolation_taps * int(decimations.max()) // step) * step,
        )

"""leaf_keras.band_plan: the decimations of the band-limited engine."""

import math

import numpy as np

from leaf_keras import band_plan


def test_planned_decimations():
    kernel = np.array([[0.1, 100.0], [1.0, 8.0], [2.0, 1.0], [3.0, 30.0]])
    decimations = band_plan.plan_decimations(kernel)
    assert decimations.tolist() == [4, 5, 1, 20]
    for d, (_, sigma) in zip(decimations, kernel):
        half_width = 1.1 * max(4.0 / max(sigma, 1.5), 4 * math.pi / 401)
        # The kept band (2 pi / d wide) holds the Gaussian response.
        assert d == 1 or math.pi / d >= half_width
    # Narrow envelopes: the widest band that holds it (any coarser divisor of
    # the stride would cut it).
    assert math.pi / 8 < 1.1 * 4.0 / 8.0 and math.pi / 40 < 1.1 * 4.0 / 30.0
    # sigma = 100 is cut off at +-2 sigma by the 401 taps: the Gaussian rule
    # alone allows 40, the truncation sidelobes need a wider band.
    assert band_plan.plan_decimations(kernel[:1], leakage=0.5)[0] == 40


def test_long_interpolation_kernels_keep_a_constant_exact():
    # Every window tap's weights on the decimated grid must sum to 1, or a constant
    # power (the loud frames' mean energy) leaks into the pooled energies: that
    # error, 5e-5 for a window cut where it is still 2e-3 of its peak, was the
    # band-limited engine's floor after PCEN whatever its band. Long kernels take a
    # narrower window for it; the default 5 taps keep their tuned, local one.
    for decimation in (4, 8, 16):
        sums = {}
        for taps in (5, 7, 9, 11):
            matrix, count = band_plan.interpolation_matrix(decimation, 401, taps, "float64")
            matrix = np.asarray(matrix)
            assert matrix.shape == (401, count)
            sums[taps] = float(np.abs(matrix.sum(axis=1) - 1.0).max())
        assert sums[5] < 1e-4
        assert sums[7] < 2e-5
        assert sums[9] < 2e-6
        assert sums[11] < 5e-7, sums


def test_interpolation_reproduces_a_band_limited_signal():
    # The kernel interpolates a sine at a quarter of the decimated rate's Nyquist
    # frequency between grid points (the pass band the tight tolerance settings use).
    decimation, taps = 8, 11
    matrix, count = band_plan.interpolation_matrix(decimation, 401, taps, "float64")
    matrix = np.asarray(matrix)
    grid = decimation * (np.arange(count) - taps)
    omega = 0.25 * math.pi / decimation
    on_grid = np.cos(omega * grid + 0.3)
    expected = np.cos(omega * np.arange(401) + 0.3)
    assert np.abs(matrix @ on_grid - expected).max() < 1e-5

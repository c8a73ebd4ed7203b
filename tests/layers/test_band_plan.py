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

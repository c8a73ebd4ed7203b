"""experiments.report: the PNG training report and the values its plots are made of."""

import math
import os

import keras
import numpy as np
import pytest
from PIL import Image

from experiments import metrics
from experiments import report
from leaf_keras import frontend as frontend_lib
from leaf_keras import initializers
from leaf_keras import models

SAMPLE_RATE = 16000
CLIP = 1600  # 0.1 s: the model is only built, never trained.

# A restarted run: epochs 0-2, a restart from the backup of epoch 1 that appends the
# header again (with one more column) and epochs 2-3, then a line cut by a crash.
RESTART_LOG = """epoch,loss,sparse_categorical_accuracy,val_loss,val_sparse_categorical_accuracy
0,2.0,0.20,1.9,0.25
1,1.5,0.40,1.6,0.35
2,1.4,0.45,nan,0.30
epoch,learning_rate,loss,sparse_categorical_accuracy,val_loss,val_sparse_categorical_accuracy
2,0.001,1.2,0.50,1.3,0.45
3,0.0005,1.0,0.60,1.1,0.55
4,0.0005,0.9
"""


def _classifier(frontend, num_classes=4):
    model = models.AudioClassifier(num_classes, frontend=frontend, use_batch_norm=False)
    model.build((None, CLIP))
    return model


def _hz(mu):
    return mu * SAMPLE_RATE / (2.0 * np.pi)


def _fwhm_hz(sigma):
    return 2.0 * np.sqrt(2.0 * np.log(2.0)) / sigma * SAMPLE_RATE / (2.0 * np.pi)


def _mel_init():
    """GaborInit's (mu, sigma) of the default Leaf, numpy (40, 2)."""
    init = initializers.GaborInit(sample_rate=SAMPLE_RATE, min_freq=60.0, max_freq=7800.0)
    return keras.ops.convert_to_numpy(init((40, 2))).astype(np.float64)


def _gabor_kernel(frontend):
    stage = frontend.filterbank
    return stage.gabor_kernel if frontend.band_limited else stage.conv.kernel


def _perturbed_leaf(**kwargs):
    """A Leaf whose filter 5 is moved to 1000 Hz with sigma 20 samples, pooling channel 3
    to 0.25 (channel 4 above the clip), PCEN alpha 2 above the clip, delta 1, smooth 0."""
    frontend = frontend_lib.Leaf(**kwargs)
    model = _classifier(frontend)
    kernel = _mel_init()
    kernel[5] = [2.0 * np.pi * 1000.0 / SAMPLE_RATE, 20.0]
    _gabor_kernel(frontend).assign(kernel.astype("float32"))
    pool = frontend.pooling.pooling_kernel if frontend.band_limited else frontend.pooling.kernel
    sigma = np.full((1, 1, 40, 1), 0.4, "float32")
    sigma[0, 0, 3, 0], sigma[0, 0, 4, 0] = 0.25, 0.9
    pool.assign(sigma)
    pcen = frontend.compression_fn
    for weight, channel, value in ((pcen.alpha, 2, 1.5), (pcen.delta, 1, 3.0)):
        values = keras.ops.convert_to_numpy(weight).copy()
        values[channel] = value
        weight.assign(values)
    smooth = keras.ops.convert_to_numpy(pcen.ema.smooth).copy()
    smooth[0] = 0.1
    pcen.ema.smooth.assign(smooth)
    return model, kernel


def _check_png(path, min_pixels=300):
    assert os.path.getsize(path) > 10_000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert min(width, height) >= min_pixels and max(width, height) <= 3000


@pytest.mark.parametrize("engine", ["auto", "band_limited"])
def test_gabor_parameters_show_a_moved_filter_in_hz(engine):
    model, kernel = _perturbed_leaf(filterbank=engine)
    centers, bandwidths = report.gabor_parameters(model.frontend)
    np.testing.assert_allclose(centers[5], 1000.0, rtol=1e-5)
    np.testing.assert_allclose(bandwidths[5], _fwhm_hz(20.0), rtol=1e-5)
    np.testing.assert_allclose(centers, _hz(kernel[:, 0]), rtol=1e-5)
    np.testing.assert_allclose(bandwidths, _fwhm_hz(kernel[:, 1]), rtol=1e-5)
    # The initialization is the mel one, whatever the trained weights are.
    init_centers, init_bandwidths = report.gabor_parameters(
        report.initial_frontend_of(model.frontend)
    )
    np.testing.assert_allclose(init_centers, _hz(_mel_init()[:, 0]), rtol=1e-5)
    np.testing.assert_allclose(init_bandwidths, _fwhm_hz(_mel_init()[:, 1]), rtol=1e-5)
    assert abs(init_centers[5] - 1000.0) > 100.0


@pytest.mark.parametrize("engine", ["auto", "band_limited"])
def test_pooling_and_pcen_parameters_are_clipped_per_channel(engine):
    model, _ = _perturbed_leaf(filterbank=engine)
    pool = report.pooling_widths(model.frontend)
    expected = np.full(40, 0.4)
    expected[3], expected[4] = 0.25, 0.5  # 0.9 is clipped to 0.5.
    np.testing.assert_allclose(pool["sigma"], expected, rtol=1e-6)
    # 401 taps: std = sigma * 200 samples = sigma * 12.5 ms.
    np.testing.assert_allclose(pool["std_ms"], expected * 12.5, rtol=1e-6)
    assert pool["trainable"]

    pcen = report.pcen_parameters(model.frontend)
    assert all(pcen[key].shape == (40,) for key in ("alpha", "delta", "root", "smooth"))
    assert pcen["alpha"][2] == 1.0 and np.allclose(np.delete(pcen["alpha"], 2), 0.96)
    assert pcen["delta"][1] == 3.0 and np.allclose(np.delete(pcen["delta"], 1), 2.0)
    np.testing.assert_allclose(pcen["root"], 2.0)
    np.testing.assert_allclose(pcen["smooth"][0], 0.1, rtol=1e-6)
    np.testing.assert_allclose(pcen["smooth"][1:], 0.04, rtol=1e-6)

    initial = report.initial_frontend_of(model.frontend)
    np.testing.assert_allclose(report.pooling_widths(initial)["sigma"], 0.4, rtol=1e-6)
    np.testing.assert_allclose(report.pcen_parameters(initial)["alpha"], 0.96, rtol=1e-6)


def test_mel_frontends_have_only_their_layers():
    mel = _classifier(frontend_lib.MelFilterbanks()).frontend
    assert report.gabor_parameters(mel) is None
    assert report.pooling_widths(mel) is None and report.pcen_parameters(mel) is None
    mel_pcen = _classifier(frontend_lib.MelPCEN()).frontend
    assert report.gabor_parameters(mel_pcen) is None and report.pooling_widths(mel_pcen) is None
    np.testing.assert_allclose(report.pcen_parameters(mel_pcen)["alpha"], 0.96, rtol=1e-6)
    sincnet_plus = _classifier(frontend_lib.SincNetPlus()).frontend
    assert report.gabor_parameters(sincnet_plus) is None
    assert not report.pcen_parameters(sincnet_plus)["trainable"]["alpha"]
    assert report.pooling_widths(sincnet_plus) is not None


def test_read_training_log_keeps_the_last_row_of_each_epoch(tmp_path):
    path = tmp_path / "training_log.csv"
    path.write_text(RESTART_LOG)
    log = report.read_training_log(str(path))
    assert list(log) == [
        "epoch",
        "loss",
        "sparse_categorical_accuracy",
        "val_loss",
        "val_sparse_categorical_accuracy",
        "learning_rate",
    ]
    np.testing.assert_array_equal(log["epoch"], [0, 1, 2, 3])  # The cut line is skipped.
    np.testing.assert_allclose(log["loss"], [2.0, 1.5, 1.2, 1.0])
    np.testing.assert_allclose(log["val_sparse_categorical_accuracy"], [0.25, 0.35, 0.45, 0.55])
    np.testing.assert_allclose(log["learning_rate"], [math.nan, math.nan, 1e-3, 5e-4])


def test_read_training_log_of_a_written_nan(tmp_path):
    path = tmp_path / "training_log.csv"
    path.write_text("epoch,loss,val_loss\n0,nan,\n1,0.5,0.6\n")
    log = report.read_training_log(str(path))
    assert np.isnan(log["loss"][0]) and np.isnan(log["val_loss"][0])
    assert log["loss"][1] == 0.5


def test_confusion_matrix_of_known_predictions():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 0, 2])
    logits = np.eye(4)[predicted] * 5.0 - 1.0  # 4 classes, class 3 never occurs.
    counts = report.confusion_matrix(labels, logits, 4)
    expected = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(counts, expected)
    fractions = report.row_normalized(counts)
    np.testing.assert_allclose(fractions[:3], expected[:3] / np.array([[2], [1], [3]]))
    assert np.isnan(fractions[3]).all()


def test_per_class_average_precision_matches_metrics():
    rng = np.random.default_rng(0)
    labels = (rng.random((50, 6)) < 0.3).astype(np.int64)
    labels[:, 4] = 0  # No positive: undefined.
    labels[:, 5] = 1  # No negative: undefined, as in the mAP of metrics.json.
    logits = rng.standard_normal((50, 6)) + 2.0 * labels
    precisions = report.per_class_average_precision(labels, logits)
    for c in range(4):
        assert precisions[c] == metrics.average_precision(labels[:, c], logits[:, c])
    assert np.isnan(precisions[4:]).all()
    assert np.nanmean(precisions) == pytest.approx(
        metrics.multilabel_metrics(labels, logits)["mAP"]
    )
    # One hand-computed AP: positives ranked 1st and 3rd -> (1 + 2/3) / 2.
    assert report.per_class_average_precision(
        np.array([[1], [0], [1], [0]]), np.array([[0.9], [0.8], [0.7], [0.1]])
    )[0] == pytest.approx(5.0 / 6.0)


def test_write_report_of_a_leaf_classifier(tmp_path):
    model, _ = _perturbed_leaf()
    (tmp_path / "training_log.csv").write_text(RESTART_LOG)
    num_classes = 35  # Speech Commands' 35 words must stay readable.
    rng = np.random.default_rng(1)
    labels = rng.integers(0, num_classes, 300)
    logits = rng.standard_normal((300, num_classes)) + 3.0 * np.eye(num_classes)[labels]
    names = [f"word_{index}" for index in range(num_classes)]
    written = report.write_report(
        str(tmp_path), model, labels, logits, names, multi_label=False, raise_errors=True
    )
    assert set(written) == {"filters", "pooling_pcen", "training_curves", "confusion_matrix"}
    for name, path in written.items():
        assert path == os.path.join(str(tmp_path), "report", f"{name}.png")
        _check_png(path)


def test_write_report_of_a_multi_label_mel_classifier(tmp_path):
    model = _classifier(frontend_lib.MelFilterbanks(), num_classes=527)
    rng = np.random.default_rng(2)
    labels = (rng.random((200, 527)) < 0.02).astype(np.int64)
    logits = rng.standard_normal((200, 527)) + 2.0 * labels
    written = report.write_report(
        str(tmp_path), model, labels, logits, None, multi_label=True, raise_errors=True
    )
    # No learnable frontend layers and no training log: the class plot only.
    assert set(written) == {"per_class_ap"}
    _check_png(written["per_class_ap"])
    assert sorted(os.listdir(tmp_path / "report")) == ["per_class_ap.png"]


def test_write_report_of_mel_pcen_with_a_given_initial_frontend(tmp_path):
    model = _classifier(frontend_lib.MelPCEN())
    initial = frontend_lib.MelPCEN()
    written = report.write_report(
        str(tmp_path), model, None, None, None, False, initial_frontend=initial, raise_errors=True
    )
    assert set(written) == {"pooling_pcen"}
    _check_png(written["pooling_pcen"])


def test_write_report_logs_a_failing_plot_and_goes_on(tmp_path):
    model, _ = _perturbed_leaf()
    bad_logits = np.zeros((3, 4))  # 5 labels, 3 rows of logits.
    written = report.write_report(str(tmp_path), model, np.arange(5) % 4, bad_logits, None, False)
    assert set(written) == {"filters", "pooling_pcen"}
    with pytest.raises(ValueError, match="logits must be"):
        report.write_report(
            str(tmp_path), model, np.arange(5) % 4, bad_logits, None, False, raise_errors=True
        )

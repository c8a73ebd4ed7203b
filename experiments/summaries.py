"""TensorBoard summaries of the training loop: epoch metrics and LEAF's Gabor filters.

``tf.summary.scalar`` / ``histogram`` live in the ``tensorboard`` package, which
TensorFlow >= 2.20 does not install; `write_scalar` and `write_histogram` write the
same records with TensorFlow alone (``tf.summary.write`` + the plugins' metadata), so
the logs are readable by any TensorBoard installed later.
"""

import os

import keras
import numpy as np

from experiments.nan_guard import is_finite_number

HISTOGRAM_BINS = 30


def _summary_metadata(plugin_name, data_class):
    from tensorflow.core.framework import summary_pb2  # pylint: disable=g-import-not-at-top

    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin_name
    metadata.data_class = data_class
    return metadata


def write_scalar(tag, value, step):
    """Writes a TensorBoard scalar to the default tf.summary writer."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tensorflow.core.framework import summary_pb2  # pylint: disable=g-import-not-at-top

    tf.summary.write(
        tag,
        tf.constant(float(value), tf.float32),
        step=step,
        metadata=_summary_metadata("scalars", summary_pb2.DATA_CLASS_SCALAR),
    )


def write_histogram(tag, values, step):
    """Writes a TensorBoard histogram ([HISTOGRAM_BINS, 3] = left edge, right edge, count)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tensorflow.core.framework import summary_pb2  # pylint: disable=g-import-not-at-top

    values = np.asarray(values, np.float64).reshape(-1)
    # A diverged run has NaN weights: the NaN guard reports it, so the histogram only bins
    # the finite values (and is skipped when there are none) instead of raising first.
    values = values[np.isfinite(values)]
    if not values.size:
        return
    low, high = float(values.min()), float(values.max())
    if high <= low:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(low, high))
    buckets = np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)
    tf.summary.write(
        tag,
        tf.constant(buckets, tf.float64),
        step=step,
        metadata=_summary_metadata("histograms", summary_pb2.DATA_CLASS_TENSOR),
    )


def gabor_parameters(frontend):
    """The Gabor center frequencies and bandwidths (Hz) of a LEAF-style frontend.

    Reads ``frontend.gabor_center_frequencies_hz()`` and ``gabor_bandwidths_hz()``
    (`leaf_keras.frontend.Leaf`, with any filterbank engine: the band-limited one holds
    the same Gabor weights): the clipped parameters the filters are built from.

    Args:
        frontend: a frontend layer, or None.

    Returns:
        ``(centers_hz, bandwidths_hz)``, numpy arrays ``(n_filters,)`` (bandwidth = full
        width at half maximum of the frequency response), or None for frontends without
        Gabor filters (mel, SincNet, Time-Domain Filterbanks, None).
    """
    if frontend is None or not hasattr(frontend, "gabor_center_frequencies_hz"):
        return None
    try:
        return (
            np.asarray(frontend.gabor_center_frequencies_hz()),
            np.asarray(frontend.gabor_bandwidths_hz()),
        )
    except (ValueError, AttributeError, NotImplementedError):
        # Leaf subclasses without a Gabor convolution (SincNet, TimeDomainFilterbanks)
        # inherit the helpers but raise.
        return None


class _SummaryCallback(keras.callbacks.Callback):
    """Base class: lazily opened tf.summary writers, one per run name."""

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir
        self._writers = {}

    def _writer(self, run):
        import tensorflow as tf  # pylint: disable=g-import-not-at-top

        if run not in self._writers:
            self._writers[run] = tf.summary.create_file_writer(os.path.join(self.log_dir, run))
        return self._writers[run]

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


class EpochTensorBoard(_SummaryCallback):
    """Logs every epoch's training and validation metrics to TensorBoard.

    Runs ``train`` (loss, metrics, learning rate) and ``validation`` (the ``val_*``
    entries, without the prefix) under `log_dir`, step = epoch number (1-based), so the
    curves of a resumed run continue where they stopped.
    """

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        for run, prefix in (("train", ""), ("validation", "val_")):
            entries = {
                key[len(prefix) :]: value
                for key, value in logs.items()
                if (key.startswith("val_") == (prefix == "val_"))
            }
            if not entries:
                continue
            with self._writer(run).as_default():
                for key, value in entries.items():
                    if is_finite_number(value) and not isinstance(value, str):
                        write_scalar(f"epoch_{key}", value, epoch + 1)
            self._writer(run).flush()


class GaborTensorBoard(_SummaryCallback):
    """Logs the learned Gabor center frequencies and bandwidths (Hz) to TensorBoard.

    For models whose ``frontend`` exposes ``gabor_center_frequencies_hz()`` and
    ``gabor_bandwidths_hz()`` (LEAF); other frontends are skipped. Written (run
    ``gabor``) at the start of training (step = initial epoch) and after every epoch
    (step = epoch + 1): a histogram of each, their mean/min/max, and one scalar per
    filter under ``gabor_center_hz/filter_NN`` and ``gabor_bandwidth_hz/filter_NN``.

    Args:
        log_dir: TensorBoard directory.
    """

    def _gabor_values(self):
        """The two arrays, or None for frontends without Gabor filters."""
        parameters = gabor_parameters(getattr(self.model, "frontend", None))
        if parameters is None:
            return None
        centers, bandwidths = parameters
        return {"gabor_center_hz": centers, "gabor_bandwidth_hz": bandwidths}

    def _write(self, step):
        values = self._gabor_values()
        if values is None:
            return
        with self._writer("gabor").as_default():
            for tag, array in values.items():
                write_histogram(tag, array, step)
                write_scalar(f"{tag}_summary/mean", np.mean(array), step)
                write_scalar(f"{tag}_summary/min", np.min(array), step)
                write_scalar(f"{tag}_summary/max", np.max(array), step)
                for index, value in enumerate(array.reshape(-1)):
                    write_scalar(f"{tag}/filter_{index:02d}", value, step)
        self._writer("gabor").flush()

    def on_train_begin(self, logs=None):
        self._write(int(getattr(self.model, "_initial_epoch", 0) or 0))

    def on_epoch_end(self, epoch, logs=None):
        self._write(epoch + 1)

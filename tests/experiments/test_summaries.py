"""experiments.summaries: TensorBoard records written without the tensorboard package."""

import numpy as np
import tensorflow as tf

from experiments import summaries


def _read(log_dir):
    events = {}
    for path in tf.io.gfile.glob(f"{log_dir}/*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                events.setdefault(value.tag, []).append(tf.make_ndarray(value.tensor))
    return events


def test_histogram_bins_the_values(tmp_path):
    values = np.array([1.0, 2.0, 2.0, 7.0])
    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        summaries.write_histogram("h", values, step=0)
    (buckets,) = _read(tmp_path)["h"]
    assert buckets.shape == (summaries.HISTOGRAM_BINS, 3)
    assert buckets[0, 0] == 1.0 and buckets[-1, 1] == 7.0
    assert buckets[:, 2].sum() == 4


def test_histogram_of_diverged_weights_does_not_raise(tmp_path):
    """The NaN guard, not a histogram error, must be what a diverged run reports."""
    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        summaries.write_histogram("all_nan", np.full(4, np.nan), step=0)
        summaries.write_histogram("some_nan", np.array([1.0, np.nan, 3.0, np.inf]), step=0)
    events = _read(tmp_path)
    assert "all_nan" not in events
    assert events["some_nan"][0][:, 2].sum() == 2

"""End-to-end tests of experiments.main: every frontend config, the quickstart, bad bindings."""

import json
import os

import fixtures_train
import numpy as np
import pytest


def _check_workdir(workdir, metrics):
    """Checkpoint, metrics.json and export exist; the checkpoint and export reload."""
    import keras  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from experiments import train  # pylint: disable=import-outside-toplevel

    checkpoint = os.path.join(workdir, "checkpoints", "best.weights.h5")
    assert os.path.exists(checkpoint)
    assert os.path.exists(os.path.join(workdir, "checkpoints", "last.weights.h5"))
    with open(os.path.join(workdir, "metrics.json")) as f:
        written = json.load(f)
    assert written == json.loads(json.dumps(metrics))
    assert 0.0 <= written["accuracy"] <= 1.0
    assert written["num_examples"] == 20
    assert written["split"] == "test"
    assert "AudioClassifier.frontend" in written["gin_config"]
    assert "dataset_stats" in written
    assert os.path.exists(os.path.join(workdir, "operative_config.gin"))
    assert os.listdir(os.path.join(workdir, "tensorboard", "train"))

    # The best checkpoint reloads into a freshly built model (same gin config) and the
    # SavedModel gives that model's probabilities.
    waveforms = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 16000)).astype(np.float32)
    loaded = tf.saved_model.load(os.path.join(workdir, "export"))
    with open(os.path.join(workdir, "export", "export_info.json")) as f:
        listed = json.load(f)["signatures"]
    # serving_padded (a padded batch and its lengths) when the model takes lengths.
    assert set(loaded.signatures) == set(listed)
    assert set(listed) - {"serving_padded"} == {"serving_default", "frontend"}
    exported = loaded.signatures["serving_default"](waveform=tf.constant(waveforms))
    exported = exported["probabilities"].numpy()
    np.testing.assert_allclose(exported.sum(axis=1), 1.0, rtol=1e-5)
    return keras, train, checkpoint, waveforms, exported


@pytest.mark.parametrize("config", fixtures_train.FRONTEND_CONFIGS)
def test_frontend_config_end_to_end(config, synthetic_commands_data_dir, tmp_path):
    import gin  # pylint: disable=import-outside-toplevel

    workdir = tmp_path / config
    bindings = fixtures_train.tiny_bindings(synthetic_commands_data_dir)
    metrics = fixtures_train.run_in_process(
        [config, "datasets/synthetic_commands"], bindings, workdir
    )
    keras, train, checkpoint, waveforms, exported = _check_workdir(str(workdir), metrics)

    # Rebuild the model from the same config and load the best checkpoint into it.
    from experiments import experiment  # pylint: disable=import-outside-toplevel

    gin.clear_config()
    try:
        experiment.parse_gin([f"gin/{config}.gin", "gin/datasets/synthetic_commands.gin"], bindings)
        model = train.build_model(num_outputs=10, sample_rate=16000)
    finally:
        gin.clear_config()
    model.load_weights(checkpoint)
    # run_experiment evaluates, then exports, the best checkpoint; the SavedModel first
    # does what evaluation did to every clip (loudness normalization, 1 s minimum).
    from experiments.data import preprocessing  # pylint: disable=import-outside-toplevel

    with open(workdir / "export" / "export_info.json") as f:
        info = json.load(f)
    assert info["preprocessing"] == {"min_length": 16000, "loudness_normalize": True}
    # Every frontend config but leaf_custom (PANN: SAME average pooling) masks padding.
    assert ("serving_padded" in info["signatures"]) == (config != "leaf_custom")
    evaluated = preprocessing.serving_preprocessing(waveforms, 16000, True)
    expected = keras.ops.convert_to_numpy(
        keras.ops.softmax(model(evaluated, training=False), axis=-1)
    )
    np.testing.assert_allclose(exported, expected, rtol=1e-4, atol=1e-6)
    # The raw waveform would not give the same scores: the preprocessing is not a no-op.
    raw = keras.ops.convert_to_numpy(keras.ops.softmax(model(waveforms, training=False), axis=-1))
    assert np.max(np.abs(raw - exported)) > 1e-4


def test_quickstart_command_line(synthetic_commands_data_dir, tmp_path):
    """The README's quickstart command, made tiny with bindings."""
    workdir = tmp_path / "quickstart"
    process = fixtures_train.run_main(
        ["--gin_config=gin/quickstart.gin", f"--workdir={workdir}"]
        + [f"--gin_bindings={b}" for b in fixtures_train.tiny_bindings(synthetic_commands_data_dir)]
        + ["--gin_bindings=export.tflite = True"]
    )
    assert process.returncode == 0, fixtures_train.describe(process)
    with open(workdir / "metrics.json") as f:
        metrics = json.load(f)
    assert "Leaf.n_filters = %n_filters" in metrics["gin_config"]
    assert (workdir / "export" / "model.tflite").exists()
    # LEAF logs its Gabor filters (Hz) for TensorBoard: before training and per epoch.
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    tags = {}
    for event_file in (workdir / "tensorboard" / "gabor").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                tags.setdefault(value.tag, set()).add(event.step)
    assert tags["gabor_center_hz"] == {0, 1}
    assert tags["gabor_bandwidth_hz"] == {0, 1}
    assert len([t for t in tags if t.startswith("gabor_center_hz/filter_")]) == 40


def test_misspelled_binding_fails_before_reading_data(tmp_path):
    """Through the command line; tests/experiments/test_gin.py covers more cases."""
    data_dir = tmp_path / "tfds_never_created"
    process = fixtures_train.run_main(
        [
            "--gin_config=gin/quickstart.gin",
            f"--workdir={tmp_path / 'work'}",
            f"--gin_bindings=load_task.data_dir = '{data_dir}'",
            "--gin_bindings=Leaf.n_filtres = 40",
        ],
        timeout=120,
    )
    assert process.returncode != 0
    assert "Leaf.n_filtres" in process.stderr, fixtures_train.describe(process)
    # Nothing was read or generated, nothing trained.
    assert not data_dir.exists()
    assert not (tmp_path / "work").exists()

"""The code examples of google-research/leaf-audio's README run with leaf_keras.

Each snippet is copied verbatim from the original README (commit
b130481b7ddeffceaa265eba4e49a49ed7352d7e) with ``leaf_audio`` replaced by ``leaf_keras``
and nothing else changed. The TFDS example reads ``speech_commands``, which cannot be
downloaded here: `tfds.load` is replaced by a stand-in giving examples of the same
structure (int16 ``audio``).
"""

import numpy as np
import pytest
import tensorflow as tf

import leaf_keras

CREATE_FRONTENDS = """
import leaf_audio.frontend as frontend

leaf = frontend.Leaf()
melfbanks = frontend.MelFilterbanks()
tfbanks = frontend.TimeDomainFilterbanks()
sincnet = frontend.SincNet()
sincnet_plus = frontend.SincNetPlus()
"""

RUN_FRONTENDS = """
import tensorflow as tf
import tensorflow_datasets as tfds

dataset = iter(tfds.load('speech_commands', split='train', shuffle_files=True))
# Audio is in int16, we rescale it to [-1; 1].
audio_sample = next(dataset)['audio'] / tf.int16.max
# The frontend expects inputs of shape [B, T] or [B, T, C].
audio_sample = audio_sample[tf.newaxis, :]

leaf_representation = leaf(audio_sample)
melfbanks_representation = melfbanks(audio_sample)
tfbanks_representation = tfbanks(audio_sample)
sincnet_representation = sincnet(audio_sample)
sincnet_plus_representation = sincnet_plus(audio_sample)
"""

CUSTOM_LEAF = """
import functools
from leaf_audio import frontend, initializers

n_filters = 64
window_len = 32
sample_rate = 24000
preemp = True
compression_fn = functools.partial(frontend.log_compression, log_offset=1e-5)
complex_conv_init = initializers.GaborInit(sample_rate=sample_rate, min_freq=60., max_freq=7800.)
learn_pooling=False
custom_leaf = frontend.Leaf(learn_pooling=learn_pooling,
                            n_filters=n_filters,
                            window_len=window_len,
                            sample_rate=sample_rate,
                            preemp=preemp,
                            compression_fn=compression_fn,
                            complex_conv_init=complex_conv_init)
"""


def _run(snippet, namespace):
    exec(compile(snippet.replace("leaf_audio", "leaf_keras"), "<README>", "exec"), namespace)  # pylint: disable=exec-used
    return namespace


def _speech_commands_stand_in(name, split, shuffle_files):
    assert (name, split, shuffle_files) == ("speech_commands", "train", True)
    audio = np.random.default_rng(0).integers(-3000, 3000, 16000).astype(np.int16)
    return [{"audio": tf.constant(audio), "label": tf.constant(3, tf.int64)}]


def test_creating_and_running_the_frontends(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(tfds, "load", _speech_commands_stand_in)
    namespace = _run(RUN_FRONTENDS, _run(CREATE_FRONTENDS, {}))
    shapes = {
        name: tuple(namespace[f"{name}_representation"].shape)
        for name in ("leaf", "melfbanks", "tfbanks", "sincnet", "sincnet_plus")
    }
    # 16000 samples, 10 ms stride: 100 frames (98 for the VALID pooling of TD-filterbanks).
    assert shapes == {
        "leaf": (1, 100, 40),
        "melfbanks": (1, 100, 40),
        "tfbanks": (1, 98, 40),
        "sincnet": (1, 100, 40),
        "sincnet_plus": (1, 100, 40),
    }
    for name in shapes:
        assert np.all(np.isfinite(np.asarray(namespace[f"{name}_representation"])))


def test_customizing_the_frontend():
    custom_leaf = _run(CUSTOM_LEAF, {})["custom_leaf"]
    assert isinstance(custom_leaf.compression_fn, leaf_keras.LogCompression)
    assert custom_leaf.compression_fn.log_offset == 1e-5
    waveform = np.random.default_rng(1).normal(0.0, 0.1, (2, 24000)).astype(np.float32)
    features = np.asarray(custom_leaf(waveform))
    # 24 kHz, 10 ms stride → 240 samples per frame; 32 ms windows; 64 filters.
    assert features.shape == (2, 100, 64)
    assert custom_leaf.window_size == int(24000 * 32 // 1000 + 1)
    # log(energy + 1e-5) of a non-learnable Gaussian pooling: bounded below by log(1e-5).
    assert features.min() >= np.log(1e-5) - 1e-4

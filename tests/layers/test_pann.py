"""Tests of leaf_keras.pann (CNN14 and WaveGram encoders) on the current Keras backend."""

import keras
import numpy as np
from keras import ops

# `models` re-exports the pann classes (leaf-audio's module map has them there);
# the tests moved here from test_models.py name them so.
from leaf_keras import models
from leaf_keras import pann

import layer_test

BINS = 16


def _features(batch=2, frames=24, bins=BINS, channels=1, seed=0):
    shape = (batch, frames, bins) + ((channels,) if channels else ())
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _waveforms(batch=2, samples=6400, seed=0):
    return np.random.default_rng(seed).normal(scale=0.1, size=(batch, samples)).astype("float32")


def _numpy(x):
    return ops.convert_to_numpy(x)


def _output_shape_with_none_time(layer, inner_shape):
    inputs = keras.Input(inner_shape)
    return keras.Model(inputs, layer(inputs)).output_shape


# ---------------------------------------------------------------------------- CNN14


def test_pann_default_is_cnn14_without_building():
    pann = models.PANN()
    blocks = [layer for layer in pann.stack if isinstance(layer, models.PANNConvBlock)]
    assert [block.filters for block in blocks] == [64, 128, 256, 512, 1024, 2048]
    assert [block.pool_size for block in blocks] == [(2, 2)] * 5 + [(1, 1)]
    assert [layer.rate for layer in pann.stack if isinstance(layer, keras.layers.Dropout)] == [
        0.2
    ] * 6
    assert pann.compute_output_shape((None, None, 64, 1)) == (None, None, 2, 2048)
    assert pann.compute_output_shape((3, 101, 40, 1)) == (3, 4, 2, 2048)


def test_pann_average_pooling_handles_inputs_smaller_than_the_pools():
    pann = models.PANN(depth=3, dropout_rate=0.0)
    assert tuple(_numpy(pann(_features(1, 3, 2))).shape) == (1, 1, 1, 256)


def test_pann_conv_block_matches_manual_computation():
    block = models.PANNConvBlock(3, (2, 2))
    features = _features(1, 4, 4, channels=2)
    out = _numpy(block(features, training=False))
    # Rebuild the computation with numpy: conv ("same", no bias) -> BN (inference) -> ReLU.
    x = features[0]
    for conv, norm in ((block.stack[0], block.stack[1]), (block.stack[3], block.stack[4])):
        kernel = _numpy(conv.kernel)
        padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
        y = np.zeros(x.shape[:2] + (kernel.shape[-1],), "float32")
        for i in range(x.shape[0]):
            for j in range(x.shape[1]):
                y[i, j] = np.einsum("abc,abcd->d", padded[i : i + 3, j : j + 3], kernel)
        scale = _numpy(norm.gamma) / np.sqrt(_numpy(norm.moving_variance) + norm.epsilon)
        x = np.maximum((y - _numpy(norm.moving_mean)) * scale + _numpy(norm.beta), 0.0)
    expected = x.reshape(2, 2, 2, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(out[0], expected, rtol=1e-4, atol=1e-5)


def test_pann_wav_block_shapes():
    block = models.PANNWavBlock(8, 4)
    waveforms = _waveforms(2, 103)[..., None]
    assert tuple(_numpy(block(waveforms)).shape) == (2, 25, 8)
    assert block.compute_output_shape((2, 103, 1)) == (2, 25, 8)
    dilations = [
        layer.dilation_rate for layer in block.stack if isinstance(layer, keras.layers.Conv1D)
    ]
    assert dilations == [(1,), (2,)]


# ---------------------------------------------------------------------------- WaveGram


def test_wavegram_on_raw_waveforms():
    wavegram = models.WaveGram()
    waveforms = _waveforms(2, 3200)
    out = _numpy(wavegram(waveforms, training=False))
    assert out.shape == (2, 5, 64) and np.all(np.isfinite(out))
    np.testing.assert_allclose(
        _numpy(wavegram(waveforms[..., None], training=False)), out, rtol=1e-6
    )
    # 4156 samples: ceil(4156 / 5) = 832 -> 208 -> 52 -> 13 -> ceil(13 / 2) = 7 frames; one
    # sample less gives 831 -> 207 -> 51 -> 12 -> 6 (the max poolings drop partial windows).
    for samples, frames in ((4156, 7), (4155, 6)):
        assert tuple(_numpy(wavegram(_waveforms(1, samples))).shape) == (1, frames, 64)
        assert wavegram.compute_output_shape((1, samples)) == (1, frames, 64)
    assert _output_shape_with_none_time(models.WaveGram(), (None,)) == (None, None, 64)
    assert (wavegram.n_filters, wavegram.stride, wavegram.sample_rate) == (64, 640, 16000)
    assert wavegram.window_size == 2556


def test_wavegram_receptive_field_is_window_size():
    wavegram = models.WaveGram()
    samples, frame = 6400, 5  # an interior frame, away from the "same" padding
    positions = np.arange(0, samples, 80)
    # One example per perturbed sample; in inference mode examples do not interact.
    waveforms = np.repeat(_waveforms(1, samples), len(positions) + 1, axis=0)
    waveforms[np.arange(1, len(positions) + 1), positions] += 1.0
    out = _numpy(wavegram(waveforms, training=False))[:, frame]
    affected = positions[np.any(out[1:] != out[0], axis=1)]
    assert len(affected) > 5
    # Everything that influences the frame lies within window_size samples of it.
    assert affected[-1] - affected[0] <= wavegram.window_size
    assert affected[0] <= frame * wavegram.stride <= affected[-1]


# ---------------------------------------------------------------------------- layer contracts
# The blocks create their sub-layers (convolutions, batch normalizations) under the
# global dtype policy. Batch normalization runs in inference mode (no `training`).
# The configurations and input shapes of the tests above and of test_models.py's
# test_encoder_shapes_keep_none_time: on JAX, where every eager op compiles once per
# shape, they share its compilations.


def test_pann_conv_block_layer_contract():
    # Two bias-free convolutions and two batch normalizations.
    layer_test.run_layer_test(
        pann.PANNConvBlock,
        {"filters": 4, "pool_size": (2, 1)},
        input_data=_features(),
        expected_output_shape=(2, 12, BINS, 4),
        mixed_precision_via="global",
        expected_num_trainable_weights=6,
        expected_num_non_trainable_weights=4,
    )


def test_pann_wav_block_layer_contract():
    # floor(103 / 4) = 25 frames.
    layer_test.run_layer_test(
        pann.PANNWavBlock,
        {"filters": 8, "pool_size": 4},
        input_data=_waveforms(2, 103)[..., None],
        expected_output_shape=(2, 25, 8),
        mixed_precision_via="global",
        expected_num_trainable_weights=6,
        expected_num_non_trainable_weights=4,
    )


def test_pann_layer_contract():
    # The bins batch normalization and one block of 64 filters.
    layer_test.run_layer_test(
        pann.PANN,
        {"depth": 1, "dropout_rate": 0.1},
        input_data=_features(),
        expected_output_shape=(2, 12, 8, 64),
        mixed_precision_via="global",
        expected_num_trainable_weights=8,
        expected_num_non_trainable_weights=6,
    )


def test_wavegram_layer_contract():
    # 3200 samples: 640 -> 160 -> 40 -> 10 -> 5 frames. Nine batch normalizations
    # (the stem's, two per block) and nine bias-free convolutions.
    layer_test.run_layer_test(
        pann.WaveGram,
        input_data=_waveforms(2, 3200),
        expected_output_shape=(2, 5, 64),
        mixed_precision_via="global",
        expected_num_trainable_weights=27,
        expected_num_non_trainable_weights=18,
    )

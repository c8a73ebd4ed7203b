"""Waveform preprocessing and batching shared by every task in `experiments.data`.

The training-time preprocessing follows the LEAF paper's released pipeline
(google-research/leaf-audio, example/data.py): integer PCM is scaled to floats,
every training clip is randomly cropped (or zero-padded at the end) to a fixed
length, then its loudness is normalized.

Evaluation differs on purpose: the original crops evaluation clips at random too,
which makes the reported metric depend on the crop. Here evaluation sees whole
clips, deterministically. Clips shorter than the training length are padded at the
end exactly like the training pad (so a short clip looks the same in both), and
clips are batched only with clips of the *same* length (`batch_by_length`), so no
clip is ever padded to the length of a longer neighbour: padding would add silent
frames that change a max-pooled classifier's output. Datasets whose clips all have
one length (Speech Commands, the synthetic commands, NSynth) therefore get full
evaluation batches; datasets with variable lengths get smaller batches, never
different results.
"""

import tensorflow as tf

import gin

# Scale for integer PCM: int16 values map to [-1, 1).
INT16_SCALE = 32768.0


def to_float_waveform(audio: tf.Tensor) -> tf.Tensor:
    """Converts a decoded mono waveform to float32 in [-1, 1].

    Integer audio (TFDS stores 16-bit PCM as int16 or int64) is divided by 32768;
    floating-point audio is assumed to be in [-1, 1] already (e.g. NSynth).
    Multi-channel audio [time, channels] is averaged to mono.

    Args:
        audio: waveform tensor of shape [time] or [time, channels].

    Returns:
        float32 tensor of shape [time].
    """
    audio = tf.convert_to_tensor(audio)
    if audio.dtype.is_integer:
        audio = tf.cast(audio, tf.float32) / INT16_SCALE
    else:
        audio = tf.cast(audio, tf.float32)
    if audio.shape.rank == 2:
        audio = tf.reduce_mean(audio, axis=-1)
    elif audio.shape.rank != 1:
        raise ValueError(
            f"Expected audio of shape [time] or [time, channels], got shape {audio.shape}."
        )
    return audio


def db_to_linear(decibels):
    """Converts an amplitude ratio in dB to a linear factor."""
    return 10.0 ** (decibels / 20.0)


@gin.configurable
def loudness_normalization(
    samples: tf.Tensor, target_db: float = 15.0, max_gain_db: float = 30.0
) -> tf.Tensor:
    """Scales a waveform so that its standard deviation is `target_db` dB.

    gain = min(10^(max_gain_db/20), 10^(target_db/20) / (std(samples) + 1e-9)),
    the rule of the original LEAF pipeline. The gain cap keeps near-silent clips
    (e.g. Speech Commands `_silence_`) from being amplified into loud noise.

    Args:
        samples: float waveform [time], or a batch [..., time] (one gain per clip).
        target_db: target level of the standard deviation, in dB (15 dB → 5.62).
        max_gain_db: largest gain ever applied, in dB.

    Returns:
        The scaled waveform, same shape.
    """
    std = tf.math.reduce_std(samples, axis=-1, keepdims=True) + 1e-9
    gain = tf.minimum(db_to_linear(max_gain_db), db_to_linear(target_db) / std)
    return gain * samples


def padded_loudness_normalization(
    waveforms: tf.Tensor, lengths: tf.Tensor, target_db: float = 15.0, max_gain_db: float = 30.0
) -> tf.Tensor:
    """`loudness_normalization` of each clip of a zero-padded batch [batch, time], from its
    first `lengths` samples only (the padding stays zero)."""
    mask = tf.sequence_mask(lengths, tf.shape(waveforms)[1], dtype=waveforms.dtype)
    count = tf.cast(lengths, waveforms.dtype)[:, None]
    mean = tf.reduce_sum(waveforms * mask, axis=1, keepdims=True) / count
    variance = tf.reduce_sum(tf.square((waveforms - mean) * mask), axis=1, keepdims=True) / count
    std = tf.sqrt(variance) + 1e-9
    gain = tf.minimum(db_to_linear(max_gain_db), db_to_linear(target_db) / std)
    return gain * waveforms * mask


def pad_to_length(samples: tf.Tensor, min_length: int) -> tf.Tensor:
    """Zero-pads a waveform [time], or a batch [batch, time], at the end to at least
    `min_length` samples."""
    samples = tf.convert_to_tensor(samples)
    pad = tf.maximum(min_length - tf.shape(samples)[-1], 0)
    paddings = [[0, 0]] * (samples.shape.rank - 1) + [[0, pad]]
    return tf.pad(samples, paddings)


def random_crop_or_pad(samples: tf.Tensor, length: int, seed: tf.Tensor) -> tf.Tensor:
    """Pads [time] at the end to `length`, then takes a random window of `length`.

    Args:
        samples: float waveform [time].
        length: output length in samples.
        seed: int64/int32 tensor of shape [2], a stateless random seed, so the crop
            is reproducible given the pipeline seed.

    Returns:
        float32 tensor of shape [length].
    """
    padded = pad_to_length(samples, length)
    max_offset = tf.shape(padded)[0] - length
    offset = tf.random.stateless_uniform(
        [], seed=seed, minval=0, maxval=max_offset + 1, dtype=tf.int32
    )
    return tf.reshape(padded[offset : offset + length], [length])


def batch_by_length(dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """Batches (waveform [time], label) pairs, grouping only clips of equal length.

    Deterministic: for a deterministic input order the output is always the same.
    A batch closes when it holds `batch_size` clips of one length; leftover clips of
    every length are emitted at the end of the dataset as smaller batches.
    """
    return dataset.group_by_window(
        key_func=lambda audio, label: tf.cast(tf.shape(audio)[0], tf.int64),
        reduce_func=lambda _, window: window.batch(batch_size),
        window_size=batch_size,
    )


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset`, sharded by elements, not files, when a multi-worker job splits it.

    tf.data's default (AUTO) shards by input file, and fails when a split has fewer files
    than workers, as the small TFDS and cached local datasets do. Each worker then reads
    the whole pipeline and keeps its part of every global batch. No effect on one worker.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def with_known_cardinality(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset`, with its number of elements known to tf.data (counted once if need be).

    Keras sizes its progress bar and epochs from it; without it the bar says "Unknown" and
    every evaluation ends in a "ran out of data" warning. TFDS splits are already sized;
    batches grouped by clip length and filtered folders are counted with one pass.
    """
    if int(dataset.cardinality()) >= 0:
        return dataset
    count = int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))
    return dataset.apply(tf.data.experimental.assert_cardinality(count))


def make_train_pipeline(
    dataset: tf.data.Dataset,
    batch_size: int,
    clip_length: int,
    loudness_normalize: bool,
    shuffle_buffer: int,
    seed: int,
) -> tf.data.Dataset:
    """Shuffled, randomly cropped, batched training pipeline of (waveform, label).

    Args:
        dataset: unbatched (float waveform [time], label) pairs.
        batch_size: batch size.
        clip_length: training crop length in samples.
        loudness_normalize: whether to apply `loudness_normalization`.
        shuffle_buffer: shuffle buffer size (0 or 1 disables shuffling).
        seed: seed of the shuffle and of the crops; each epoch reshuffles and
            draws new crops, reproducibly.

    Returns:
        Dataset of (float32 [B, clip_length], label [B, ...]); one epoch.
    """
    if shuffle_buffer > 1:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    crop_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    dataset = tf.data.Dataset.zip((dataset, crop_seeds))

    def _crop(example, crop_seed):
        audio, label = example
        audio = random_crop_or_pad(audio, clip_length, crop_seed)
        if loudness_normalize:
            audio = loudness_normalization(audio)
        return audio, label

    dataset = dataset.map(_crop, num_parallel_calls=tf.data.AUTOTUNE)
    return shard_by_data(dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE))


def make_eval_pipeline(
    dataset: tf.data.Dataset, batch_size: int, min_length: int, loudness_normalize: bool
) -> tf.data.Dataset:
    """Deterministic evaluation pipeline on whole clips (see the module docstring).

    Args:
        dataset: unbatched (float waveform [time], label) pairs, in a fixed order.
        batch_size: largest batch size; batches only hold clips of one length.
        min_length: shorter clips are zero-padded at the end to this length (the
            training clip length, which is always longer than the frontend window).
        loudness_normalize: whether to apply `loudness_normalization`.

    Returns:
        Dataset of (float32 [B, T], label [B, ...]) where T varies across batches.
    """

    def _prepare(audio, label):
        audio = pad_to_length(audio, min_length)
        if loudness_normalize:
            audio = loudness_normalization(audio)
        return audio, label

    options = tf.data.Options()
    options.deterministic = True
    dataset = dataset.with_options(options).map(_prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return shard_by_data(batch_by_length(dataset, batch_size).prefetch(tf.data.AUTOTUNE))


def serving_preprocessing(waveforms: tf.Tensor, min_length: int, loudness_normalize: bool):
    """What evaluation does to every clip, on a batch [batch, time]: the exported models
    apply it, so they take raw waveforms and score them exactly as `metrics.json` did."""
    waveforms = pad_to_length(waveforms, min_length)
    return loudness_normalization(waveforms) if loudness_normalize else waveforms


def padded_serving_preprocessing(
    waveforms: tf.Tensor, lengths: tf.Tensor, min_length: int, loudness_normalize: bool
):
    """`serving_preprocessing` of each clip of a zero-padded batch [batch, time] of clips of
    `lengths` samples: returns (waveforms, lengths) as each clip alone would be padded and
    normalized, for a model called with those lengths."""
    lengths = tf.maximum(tf.cast(lengths, tf.int32), min_length)
    waveforms = pad_to_length(waveforms, min_length)
    if loudness_normalize:
        waveforms = padded_loudness_normalization(waveforms, lengths)
    return waveforms, lengths


# Float waveforms are in [-1, 1] (a little beyond after resampling or gain); integer PCM
# cast to float without dividing by 32768 is in the hundreds or thousands.
MAX_WAVEFORM_MAGNITUDE = 2.0


def check_serving_waveforms(waveforms: tf.Tensor, min_samples: int) -> tf.Tensor:
    """`waveforms`, after in-graph checks that raise InvalidArgumentError naming the problem.

    The exported signatures run these before the model, so wrong input gets an error, not
    a plausible answer: a rank other than [batch, time], an empty batch, clips shorter than
    `min_samples` (one frontend window), NaN or inf samples, or values beyond
    ±`MAX_WAVEFORM_MAGNITUDE` (integer PCM not divided by 32768).
    """
    rank = tf.debugging.Assert(
        tf.equal(tf.rank(waveforms), 2),
        [
            "waveform must be float32 [batch, time] (mono: mix the channels first); got shape",
            tf.shape(waveforms),
        ],
    )
    # The other checks assume the rank: they run after its check.
    with tf.control_dependencies([rank]):
        waveforms = tf.identity(waveforms)
    shape = tf.shape(waveforms)
    checks = [
        tf.debugging.assert_positive(shape[0], message="waveform has an empty batch"),
        tf.debugging.assert_greater_equal(
            shape[1],
            min_samples,
            message=f"waveform clips must have at least {min_samples} samples (one frontend "
            "window); got fewer",
        ),
        tf.debugging.assert_all_finite(waveforms, "waveform contains NaN or inf samples"),
        tf.debugging.Assert(
            tf.reduce_all(tf.abs(tf.reshape(waveforms, [-1])) <= MAX_WAVEFORM_MAGNITUDE),
            ["waveform must be float samples in [-1, 1]: divide int16 PCM by 32768"],
        ),
    ]
    with tf.control_dependencies(checks):
        # A static rank 2 for the model's trace. A reshape, not `ensure_shape`: TensorFlow
        # does not order an op's own error after the assertions it depends on, and
        # ensure_shape's message would then replace theirs.
        return tf.reshape(waveforms, [-1, tf.shape(waveforms)[-1]])

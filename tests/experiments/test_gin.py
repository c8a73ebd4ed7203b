"""Tests of the gin configs and of experiments.configurables (no training)."""

import glob
import os

import fixtures_train
import numpy as np
import pytest

import gin
from experiments import configurables
from experiments import experiment

GIN_DIR = os.path.join(fixtures_train.REPO_ROOT, "gin")


@pytest.fixture(autouse=True)
def _clear_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _all_gin_files():
    return sorted(
        os.path.relpath(path, fixtures_train.REPO_ROOT)
        for path in glob.glob(os.path.join(GIN_DIR, "**", "*.gin"), recursive=True)
    )


def test_gin_folder_is_not_a_package():
    assert not os.path.exists(os.path.join(GIN_DIR, "__init__.py"))
    assert {f"gin/{c}.gin" for c in fixtures_train.FRONTEND_CONFIGS} <= set(_all_gin_files())
    assert "gin/quickstart.gin" in _all_gin_files()


@pytest.mark.parametrize("path", _all_gin_files())
def test_every_gin_file_parses_and_validates(path):
    # Dataset files are meant to be combined with a frontend file.
    files = [path] if "datasets" not in path else ["gin/leaf.gin", path]
    experiment.parse_gin(files, [])
    assert gin.query_parameter("load_task.dataset")


FRONTEND_FILES = (
    "leaf",
    "leaf_band_limited",
    "mel",
    "mel_pcen",
    "sincnet",
    "sincnet_plus",
    "tfbanks",
)


@pytest.mark.parametrize("frontend_file", FRONTEND_FILES)
def test_a_frontend_file_after_the_quickstart_swaps_only_the_frontend(frontend_file):
    experiment.parse_gin(["gin/quickstart.gin"], [])
    quickstart = {
        name: gin.query_parameter(name)
        for name in (
            "load_task.dataset",
            "load_task.batch_size",
            "train.num_epochs",
            "train.learning_rate",
            "ConvNet.filters",
            "ConvNet.use_batch_norm",
            "AudioClassifier.use_batch_norm",
        )
    }
    assert quickstart["load_task.dataset"] == "synthetic_commands"
    gin.clear_config()
    experiment.parse_gin(["gin/quickstart.gin", f"gin/{frontend_file}.gin"], [])
    for name, value in quickstart.items():
        assert gin.query_parameter(name) == value, name
    with open(os.path.join(GIN_DIR, f"{frontend_file}.gin")) as f:
        text = f.read()
    # Frontend files bind frontends only: no data, recipe or encoder.
    for prefix in ("load_task.", "train.", "ConvNet.", "include 'gin/common.gin'"):
        assert f"\n{prefix}" not in text, prefix


# Encoder files: (file, class, a binding and its value).
ENCODER_FILES = (
    ("transformer", "TransformerEncoder", "TransformerEncoder.num_blocks", 4),
    ("small_cnn", "SmallConvNet", "SmallConvNet.dense_units", 420),
)


@pytest.mark.parametrize("encoder_file, class_name, binding, value", ENCODER_FILES)
def test_an_encoder_file_after_the_quickstart_builds_its_classifier(
    encoder_file, class_name, binding, value
):
    import leaf_keras  # pylint: disable=import-outside-toplevel
    from experiments import train  # pylint: disable=import-outside-toplevel

    experiment.parse_gin(["gin/quickstart.gin", f"gin/{encoder_file}.gin"], [])
    assert gin.query_parameter(binding) == value
    assert gin.query_parameter("load_task.dataset") == "synthetic_commands"
    # build_model runs one second of 16 kHz audio through the model.
    model = train.build_model(num_outputs=10, sample_rate=16000)
    assert type(model.encoder) is getattr(leaf_keras, class_name)  # pylint: disable=unidiomatic-typecheck
    assert type(model.frontend) is leaf_keras.Leaf  # pylint: disable=unidiomatic-typecheck
    logits = model(np.zeros((2, 16000), np.float32), training=False)
    assert tuple(logits.shape) == (2, 10)
    with open(os.path.join(GIN_DIR, f"{encoder_file}.gin")) as f:
        text = f.read()
    # Encoder files bind the encoder only: no data, recipe or frontend.
    for prefix in ("load_task.", "train.", "ConvNet.", "AudioClassifier.frontend", "include "):
        assert f"\n{prefix}" not in text, prefix


def test_the_transformer_file_averages_the_frames_and_binds_its_widths():
    experiment.parse_gin(["gin/mel.gin", "gin/transformer.gin"], [])
    assert gin.query_parameter("AudioClassifier.pooling") == "avg"
    encoder = gin.query_parameter("AudioClassifier.encoder").scoped_configurable_fn()
    assert (encoder.d_model, encoder.num_heads, encoder.ff_dim, encoder.dropout) == (
        256,
        8,
        1024,
        0.1,
    )


def test_a_misspelled_strategy_fails_at_parse_time():
    with pytest.raises(ValueError, match="'mirored' is not a strategy.*mirrored"):
        experiment.parse_gin(["gin/leaf.gin"], ["train.strategy = 'mirored'"])


def test_the_paper_recipe_is_read_first_and_any_file_overrides_it():
    experiment.parse_gin(["gin/mel.gin"], [])
    assert gin.query_parameter("load_task.dataset") == "speech_commands"
    assert gin.query_parameter("train.learning_rate") == 1e-4
    gin.clear_config()
    experiment.parse_gin(["gin/mel.gin", "gin/datasets/speech_commands_folder.gin"], [])
    assert gin.query_parameter("load_task.dataset") == "speech_commands_folder"
    assert gin.query_parameter("train.learning_rate") == 1e-4


_PAPER = {"n_filters": 40, "window_size": 401, "stride": 160, "sample_rate": 16000}


@pytest.mark.parametrize(
    "config, class_name",
    [
        ("leaf", "Leaf"),
        ("leaf_custom", "Leaf"),
        ("mel", "MelFilterbanks"),
        ("mel_pcen", "MelPCEN"),
        ("sincnet", "SincNet"),
        ("sincnet_plus", "SincNetPlus"),
        ("tfbanks", "TimeDomainFilterbanks"),
        ("quickstart", "Leaf"),
    ],
)
def test_frontend_configs_build_the_papers_frontend(config, class_name):
    import leaf_keras  # pylint: disable=import-outside-toplevel

    experiment.parse_gin([f"gin/{config}.gin"], [])
    frontend = gin.query_parameter("AudioClassifier.frontend").scoped_configurable_fn()
    assert type(frontend) is getattr(leaf_keras, class_name)  # pylint: disable=unidiomatic-typecheck
    for attribute, value in _PAPER.items():
        assert getattr(frontend, attribute) == value, attribute


def test_leaf_config_binds_the_paper_values():
    import leaf_keras  # pylint: disable=import-outside-toplevel

    experiment.parse_gin(["gin/leaf.gin"], [])
    assert gin.query_parameter("PCENLayer.alpha") == 0.96
    assert gin.query_parameter("PCENLayer.smooth_coef") == 0.04
    assert gin.query_parameter("PCENLayer.delta") == 2.0
    assert gin.query_parameter("PCENLayer.root") == 2.0
    assert gin.query_parameter("PCENLayer.floor") == 1e-12
    assert gin.query_parameter("PCENLayer.per_channel_smooth_coef") is True
    leaf = gin.query_parameter("AudioClassifier.frontend").scoped_configurable_fn()
    # Leaf's default engine: the band-limited Gabor filterbank at tolerance 1e-4.
    assert leaf.band_limited and leaf.filterbank.tolerance == 1e-4
    init = leaf.filterbank.kernel_initializer.get_config()
    assert (init["min_freq"], init["max_freq"], init["sample_rate"]) == (60.0, 7800.0, 16000)
    pcen = [layer for layer in leaf.layers if isinstance(layer, leaf_keras.PCENLayer)]
    assert len(pcen) == 1


def test_leaf_exact_config_is_leaf_with_the_exact_engine():
    import leaf_keras  # pylint: disable=import-outside-toplevel

    experiment.parse_gin(["gin/leaf_exact.gin"], [])
    assert gin.query_parameter("PCENLayer.alpha") == 0.96
    leaf = gin.query_parameter("AudioClassifier.frontend").scoped_configurable_fn()
    assert leaf.filterbank.engine == "fused" and not leaf.band_limited
    assert isinstance(leaf.complex_conv, leaf_keras.GaborConv1D)
    init = leaf.complex_conv.kernel_initializer.get_config()
    assert (init["min_freq"], init["max_freq"], init["sample_rate"]) == (60.0, 7800.0, 16000)


def test_leaf_custom_uses_log_compression_pann_and_spec_augment():
    import leaf_keras  # pylint: disable=import-outside-toplevel

    experiment.parse_gin(["gin/leaf_custom.gin"], [])
    leaf = gin.query_parameter("AudioClassifier.frontend").scoped_configurable_fn()
    kinds = [type(layer) for layer in leaf.layers]
    assert leaf_keras.LogCompression in kinds
    assert leaf_keras.PCENLayer not in kinds
    # `Leaf.compression_fn = @log_compression`, as the original file writes it.
    assert isinstance(leaf.compression_fn, leaf_keras.LogCompression)
    assert leaf.compression_fn.log_offset == 1e-5
    augment = [layer for layer in leaf.layers if isinstance(layer, leaf_keras.SpecAugment)]
    # The SpecAugment layer that Leaf builds itself receives the gin bindings.
    assert len(augment) == 1 and augment[0].freq_mask_max_bins == 8
    encoder = gin.query_parameter("AudioClassifier.encoder").scoped_configurable_fn()
    assert type(encoder).__name__ == "PANN" and encoder.depth == 7


def test_gin_log_compression_binding_reaches_the_layer():
    experiment.parse_gin(["gin/leaf_custom.gin"], ["log_compression.log_offset = 1e-3"])
    leaf = gin.query_parameter("AudioClassifier.frontend").scoped_configurable_fn()
    assert leaf.compression_fn.log_offset == 1e-3


@pytest.mark.parametrize(
    "binding, message",
    [
        ("Leaf.n_filtres = 40", "Leaf.n_filtres"),  # **kwargs Keras class
        ("train.num_epoch = 1", "num_epoch"),  # plain function
        ("GaborInit.max_frequency = 8000.0", "max_frequency"),  # class with _ALLOWED kwargs
        ("ConvNet.filter = [4]", "ConvNet.filter"),
        ("Leafy.n_filters = 40", "Leafy"),  # unknown configurable
        ("windw_stride = 20.0", "'windw_stride'.*Did you mean 'window_stride'"),  # macro
    ],
)
def test_misspelled_bindings_are_rejected(binding, message):
    with pytest.raises(ValueError, match=message):
        experiment.parse_gin(["gin/leaf.gin"], [binding])


def test_valid_inherited_parameters_are_accepted():
    # `name` and `trainable` come from keras.layers.Layer / keras.Sequential.
    experiment.parse_gin(
        ["gin/leaf.gin"],
        ["Leaf.name = 'my_leaf'", "PCENLayer.trainable = False", "SincNet.learn_pooling = False"],
    )


def test_registered_configurables():
    selectors = configurables.register_all()
    for name in (
        "leaf_keras.frontend.Leaf",
        "leaf_keras.models.AudioClassifier",
        "leaf_keras.postprocessing.PCENLayer",
        "keras.initializers.Constant",
        "keras.layers.Dense",
    ):
        assert name in selectors


def test_the_adamw_recipe_file_changes_only_the_recipe():
    experiment.parse_gin(["gin/quickstart.gin", "gin/recipe_adamw.gin"], [])
    assert gin.query_parameter("train.optimizer") == "adamw"
    assert gin.query_parameter("train.learning_rate_schedule") == "cosine_restarts"
    assert gin.query_parameter("load_task.dataset") == "synthetic_commands"
    assert gin.query_parameter("ConvNet.filters") == [32, 64, 64, 128]
    with open(os.path.join(GIN_DIR, "recipe_adamw.gin")) as f:
        lines = [line for line in f.read().splitlines() if line and not line.startswith("#")]
    assert all(line.startswith("train.") for line in lines), lines


def test_a_used_macro_of_a_users_own_is_accepted():
    experiment.parse_gin(["gin/leaf.gin"], ["my_rate = 8000", "GaborInit.sample_rate = %my_rate"])
    assert gin.query_parameter("GaborInit.sample_rate").scoped_selector == "my_rate/gin.macro"

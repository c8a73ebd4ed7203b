"""experiments.optimizers: the recipe's optimizers, schedules and frontend multiplier."""

import json

import fixtures_train
import keras
import numpy as np
import pytest

from experiments import optimizers


def _variables():
    frontend = keras.Variable(np.ones(3, np.float32), name="frontend_weight")
    encoder = keras.Variable(np.ones(3, np.float32), name="encoder_weight")
    return frontend, encoder


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_frontend_variables_step_at_the_multiplied_learning_rate(name):
    frontend, encoder = _variables()
    optimizer = optimizers.make_optimizer(
        name, 1e-3, frontend_variables=[frontend], frontend_multiplier=10.0
    )
    gradient = np.array([0.5, -2.0, 3.0], np.float32)
    optimizer.apply([gradient, gradient], [frontend, encoder])
    # Adam's first step is lr · m̂ / (√v̂ + ε) ≈ lr · sign(g), whatever the gradient's scale
    # (so scaling gradients could not give the frontend a larger step).
    np.testing.assert_allclose(1.0 - np.asarray(encoder), 1e-3 * np.sign(gradient), rtol=1e-4)
    np.testing.assert_allclose(1.0 - np.asarray(frontend), 1e-2 * np.sign(gradient), rtol=1e-4)


def test_adamw_does_not_decay_the_frontend():
    frontend, encoder = _variables()
    optimizer = optimizers.make_optimizer(
        "adamw", 0.1, weight_decay=0.5, frontend_variables=[frontend]
    )
    zero = np.zeros(3, np.float32)
    optimizer.apply([zero, zero], [frontend, encoder])
    np.testing.assert_array_equal(np.asarray(frontend), np.ones(3))
    np.testing.assert_allclose(np.asarray(encoder), np.full(3, 1.0 - 0.1 * 0.5), rtol=1e-6)


def test_gradient_clipping_bounds_the_global_norm():
    frontend, encoder = _variables()
    optimizer = keras.optimizers.SGD(1.0, global_clipnorm=1.0)
    reference = optimizers.make_optimizer("adam", 1.0, clip_norm=1.0)
    assert reference.global_clipnorm == optimizer.global_clipnorm == 1.0
    big = np.full(3, 100.0, np.float32)
    optimizer.apply([big, big], [frontend, encoder])
    step = np.concatenate([1.0 - np.asarray(frontend), 1.0 - np.asarray(encoder)])
    np.testing.assert_allclose(np.linalg.norm(step), 1.0, rtol=1e-5)


def test_schedules():
    assert optimizers.learning_rate_schedule(1e-3, "constant", None) == 1e-3
    cosine = optimizers.learning_rate_schedule(1e-3, "cosine", total_steps=100)
    np.testing.assert_allclose(
        [float(cosine(step)) for step in (0, 50, 100)], [1e-3, 5e-4, 0.0], atol=1e-9
    )
    restarts = optimizers.learning_rate_schedule(1e-3, "cosine_restarts", 100, restart_steps=10)
    # Periods of 10, 20, 40 steps: back at the initial rate at steps 10 and 30.
    values = [float(restarts(step)) for step in (0, 5, 9, 10, 30)]
    np.testing.assert_allclose(values[0], 1e-3)
    assert values[0] > values[1] > values[2]
    np.testing.assert_allclose([values[3], values[4]], [1e-3, 1e-3], rtol=1e-5)
    with pytest.raises(ValueError, match="train.steps_per_epoch"):
        optimizers.learning_rate_schedule(1e-3, "cosine", None)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (("sgdw", "constant", 0.0, None, 1.0), "train.optimizer"),
        (("adam", "linear", 0.0, None, 1.0), "train.learning_rate_schedule"),
        (("adam", "constant", 0.1, None, 1.0), "train.weight_decay"),
        (("adamw", "constant", -0.1, None, 1.0), "train.weight_decay"),
        (("adam", "constant", 0.0, 0.0, 1.0), "train.gradient_clip_norm"),
        (("adam", "constant", 0.0, None, 0.0), "frontend_learning_rate_multiplier"),
    ],
)
def test_bad_recipes_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        optimizers.check_recipe(*arguments)


def test_recipe_trains_with_multiplier_schedule_and_early_stopping(
    synthetic_commands_data_dir, tmp_path
):
    # Real jit-compiled fits. First the whole recipe with the frontend at 100 × the
    # encoder's learning rate; then early stopping: with a learning rate too small to
    # change any float32 weight, the validation metric never improves and patience 1
    # stops after the second of 8 epochs.
    bindings = fixtures_train.tiny_bindings(synthetic_commands_data_dir, epochs=1) + [
        "train.optimizer = 'adamw'",
        "train.weight_decay = 1e-4",
        "train.learning_rate_schedule = 'cosine_restarts'",
        "train.restart_epochs = 1",
        "train.gradient_clip_norm = 1.0",
        "train.frontend_learning_rate_multiplier = 100.0",
        "train.learning_rate = 1e-5",
        "ConvNet.dropout = 0.0",
    ]
    code = f"""
import json
import keras
import numpy as np
from experiments import data, experiment, train
experiment.parse_gin(["gin/leaf.gin", "gin/datasets/synthetic_commands.gin"], {bindings!r})
task = data.load_task()
def weights(model):
    return ([np.asarray(w) for w in model.frontend.get_weights()],
            [np.asarray(w) for w in model.head.get_weights()])
class Initial(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = weights(self.model)
initial_callback = Initial()
result = train.train(task, {str(tmp_path / "recipe")!r}, extra_callbacks=[initial_callback])
trained, initial = weights(result.model), initial_callback.weights
moved = [max(float(np.max(np.abs(a - b))) for a, b in zip(after, before))
         for after, before in zip(trained, initial)]
stopped = train.train(task, {str(tmp_path / "stopped")!r}, num_epochs=8, learning_rate=1e-12,
                      early_stopping_patience=1, frontend_learning_rate_multiplier=1.0)
print("RESULT " + json.dumps({{
    "optimizer": type(result.model.optimizer).__name__,
    "schedule": type(result.model.optimizer.learning_rate).__name__
        if not hasattr(result.model.optimizer, "_learning_rate") else
        type(result.model.optimizer._learning_rate).__name__,
    "frontend_moved": moved[0],
    "head_moved": moved[1],
    "stopped_epochs": len(stopped.history.history["loss"]),
}}))
"""
    process = fixtures_train.run_script(code)
    assert process.returncode == 0, fixtures_train.describe(process)
    line = [l for l in process.stdout.splitlines() if l.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT ") :])
    assert result["optimizer"] == "AdamWWithFrontendMultiplier"
    assert result["schedule"] == "CosineDecayRestarts"
    # 2 Adam steps of at most ~3 × lr each: the head moves ≤ 6e-5, the frontend ~100 × more.
    assert result["head_moved"] < 1e-4
    assert result["frontend_moved"] > 20 * result["head_moved"]
    assert result["stopped_epochs"] == 2

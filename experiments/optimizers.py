"""The training recipe's optimizer: Adam or AdamW, a learning-rate schedule, gradient
clipping, and a learning-rate multiplier for the frontend's weights.

The LEAF paper trains with Adam at 1e-4 and no schedule (`gin/common.gin`). The Speech
Commands reproductions that report the strongest LEAF numbers use AdamW with cosine decay
(with warm restarts), gradient clipping and early stopping; `gin/recipe_adamw.gin` sets
that recipe. Learnable frontends barely move from their mel initialization at the
encoder's learning rate (SincNet issues #84, #88; Meng et al. 2023,
https://arxiv.org/abs/2302.10014), hence `frontend_learning_rate_multiplier`.
"""

import keras

OPTIMIZERS = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW}
SCHEDULES = ("constant", "cosine", "cosine_restarts")


def check_recipe(optimizer, schedule, weight_decay, clip_norm, frontend_multiplier):
    """Raises ValueError naming the first bad recipe argument."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"train.optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}.")
    if schedule not in SCHEDULES:
        raise ValueError(
            f"train.learning_rate_schedule must be one of {list(SCHEDULES)}, got {schedule!r}."
        )
    if weight_decay < 0 or (weight_decay and optimizer != "adamw"):
        raise ValueError(
            f"train.weight_decay={weight_decay!r}: weight decay must be >= 0 and needs "
            "train.optimizer = 'adamw'."
        )
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"train.gradient_clip_norm must be > 0 or None, got {clip_norm!r}.")
    if not frontend_multiplier > 0:
        raise ValueError(
            f"train.frontend_learning_rate_multiplier must be > 0, got {frontend_multiplier!r}."
        )


def learning_rate_schedule(learning_rate, schedule, total_steps, restart_steps=None):
    """The learning rate, or schedule, of a run of `total_steps` optimizer steps.

    Args:
        learning_rate: the peak (initial) learning rate.
        schedule: "constant"; "cosine" (to 0 over `total_steps`); "cosine_restarts"
            (SGDR, Loshchilov & Hutter 2017: a first period of `restart_steps`, each next
            one twice as long, restarting at the initial rate).
        total_steps: optimizer steps of the whole run.
        restart_steps: first period of "cosine_restarts" (default: a tenth of the run).

    Returns:
        A float or a `keras.optimizers.schedules.LearningRateSchedule`.
    """
    if schedule == "constant":
        return learning_rate
    if not total_steps or total_steps < 1:
        raise ValueError(
            f"learning_rate_schedule={schedule!r} needs the number of training steps; the "
            "training set's size is unknown: set train.steps_per_epoch."
        )
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps)
    first = restart_steps or max(1, total_steps // 10)
    return keras.optimizers.schedules.CosineDecayRestarts(learning_rate, first_decay_steps=first)


def make_optimizer(
    name,
    learning_rate,
    weight_decay=0.0,
    clip_norm=None,
    frontend_variables=(),
    frontend_multiplier=1.0,
):
    """An Adam/AdamW optimizer, the frontend's variables stepped at `frontend_multiplier` ×.

    AdamW's decay is not applied to the frontend's variables: they are physical
    quantities (center frequencies, bandwidths, pooling widths, PCEN exponents) whose
    zero is not a "simpler" model, so decaying them towards it is not regularization.

    Args:
        name: a key of `OPTIMIZERS`.
        learning_rate: float or schedule.
        weight_decay: AdamW's decoupled weight decay.
        clip_norm: clip the global gradient norm to this (None: no clipping).
        frontend_variables: the trainable variables of the frontend.
        frontend_multiplier: their learning rate is the schedule's times this.

    Returns:
        A `keras.optimizers.Optimizer`.
    """
    cls = OPTIMIZERS[name]
    kwargs = {"learning_rate": learning_rate, "global_clipnorm": clip_norm}
    if name == "adamw":
        kwargs["weight_decay"] = weight_decay
    frontend_variables = list(frontend_variables)
    if frontend_multiplier != 1.0 and frontend_variables:
        optimizer = _with_learning_rate_multiplier(cls)(
            scaled_variables=frontend_variables, multiplier=frontend_multiplier, **kwargs
        )
    else:
        optimizer = cls(**kwargs)
    if name == "adamw" and frontend_variables:
        optimizer.exclude_from_weight_decay(var_list=frontend_variables)
    return optimizer


_MULTIPLIER_CLASSES = {}


def _with_learning_rate_multiplier(cls):
    """`cls` whose update of `scaled_variables` uses `multiplier` × the learning rate.

    Keras 3 has no per-variable learning rate. Scaling the gradients instead would do
    nothing for Adam (its step is invariant to the gradient's scale), so the learning rate
    given to `update_step` is scaled, which every backend's update loop calls per
    variable (`_var_key` maps a replica's variable to the one the optimizer was built on).
    """
    if cls in _MULTIPLIER_CLASSES:
        return _MULTIPLIER_CLASSES[cls]

    class Scaled(cls):  # pylint: disable=missing-class-docstring
        def __init__(self, scaled_variables, multiplier, **kwargs):
            super().__init__(**kwargs)
            self._scaled_variables = list(scaled_variables)
            self._multiplier = float(multiplier)
            self._scaled_keys = None

        def update_step(self, gradient, variable, learning_rate):
            if self._scaled_keys is None:
                self._scaled_keys = {self._var_key(v) for v in self._scaled_variables}
            if self._var_key(variable) in self._scaled_keys:
                learning_rate = learning_rate * self._multiplier
            return super().update_step(gradient, variable, learning_rate)

    Scaled.__name__ = Scaled.__qualname__ = f"{cls.__name__}WithFrontendMultiplier"
    _MULTIPLIER_CLASSES[cls] = Scaled
    return Scaled

"""Chooses how training is distributed: tf.distribute strategies or Keras DataParallel.

Names (gin: ``make_strategy.name``, or the ``--strategy`` flag of experiments.main):

- ``default``: no distribution (TensorFlow's default strategy; one device).
- ``one_device``: ``tf.distribute.OneDeviceStrategy(device)`` (``device`` defaults to
  the first GPU, else the CPU).
- ``mirrored``: ``tf.distribute.MirroredStrategy(devices)``: synchronous data parallel
  over the local devices (all GPUs, or e.g. two logical CPUs in tests).
- ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy()``; the cluster comes
  from the ``TF_CONFIG`` environment variable.
- ``tpu``: ``tf.distribute.TPUStrategy`` on the TPU named by ``tpu`` ("" = local).
- ``data_parallel``: ``keras.distribution.DataParallel`` (JAX backend). On JAX,
  ``mirrored`` means the same thing.

The model must be built and compiled inside ``strategy.scope()``; with Keras
DataParallel the scope is a no-op and the distribution is set globally.
"""

import contextlib
import dataclasses
import json
import os

import keras
from absl import logging

import gin

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu", "data_parallel")


def check_name(name) -> None:
    """Raises ValueError unless `name` is one of STRATEGIES."""
    if name not in STRATEGIES:
        raise ValueError(f"{name!r} is not a strategy; expected one of {', '.join(STRATEGIES)}.")


@dataclasses.dataclass
class Distribution:
    """What `make_strategy` chose.

    Attributes:
        name: one of STRATEGIES.
        strategy: the tf.distribute strategy, or None (JAX / PyTorch backends).
        num_replicas: how many replicas share each global batch.
        is_chief: False on the non-chief workers of a multi-worker job (they should not
            write checkpoints, metrics or exports to the shared workdir).
    """

    name: str
    strategy: object = None
    num_replicas: int = 1
    is_chief: bool = True

    def scope(self):
        if self.strategy is None:
            return contextlib.nullcontext()
        return self.strategy.scope()


def is_chief_from_tf_config():
    """Whether this process is the chief of the ``TF_CONFIG`` cluster (True without one)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    task_type, task_index = task.get("type"), task.get("index", 0)
    if task_type in (None, "chief"):
        return True
    # Without an explicit chief, worker 0 is the chief (tf.distribute's convention).
    has_chief = "chief" in config.get("cluster", {})
    return task_type == "worker" and task_index == 0 and not has_chief


@gin.configurable
def make_strategy(name="default", devices=None, device=None, tpu=""):
    """Creates the distribution named `name` for the current Keras backend.

    Args:
        name: one of "default", "one_device", "mirrored", "multi_worker", "tpu",
            "data_parallel".
        devices: device list for "mirrored" / "data_parallel" (None = all local ones).
        device: the device of "one_device" (None = first GPU, else "/cpu:0").
        tpu: TPU name or address for "tpu" ("" = the local TPU).

    Returns:
        A `Distribution`.

    Raises:
        ValueError: unknown name, or a tf.distribute strategy on a non-TensorFlow backend.
    """
    check_name(name)
    backend = keras.backend.backend()
    if backend == "jax":
        if name == "default":
            return Distribution("default")
        if name in ("data_parallel", "mirrored"):
            distribution = keras.distribution.DataParallel(devices=devices)
            keras.distribution.set_distribution(distribution)
            num = len(devices) if devices else len(keras.distribution.list_devices())
            logging.info("keras.distribution.DataParallel over %d devices.", num)
            return Distribution("data_parallel", None, num)
        raise ValueError(
            f"Strategy {name!r} needs KERAS_BACKEND=tensorflow (got {backend}); "
            "on JAX use 'default' or 'data_parallel'."
        )
    if backend != "tensorflow":
        if name == "default":
            return Distribution("default")
        raise ValueError(
            f"Strategy {name!r} is not supported on KERAS_BACKEND={backend}; "
            "use 'default', or the tensorflow / jax backend."
        )

    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    if name == "data_parallel":
        raise ValueError(
            "'data_parallel' is the JAX backend's strategy; on TensorFlow use 'mirrored'."
        )
    if name == "default":
        strategy = tf.distribute.get_strategy()
        return Distribution(name, strategy, strategy.num_replicas_in_sync)
    if name == "one_device":
        if device is None:
            device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
        strategy = tf.distribute.OneDeviceStrategy(device)
    elif name == "mirrored":
        strategy = tf.distribute.MirroredStrategy(devices=devices)
    elif name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            logging.warning("multi_worker without TF_CONFIG: running as a single worker.")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return Distribution(
            name, strategy, strategy.num_replicas_in_sync, is_chief_from_tf_config()
        )
    else:  # tpu
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    logging.info("Distribution strategy %s with %d replicas.", name, strategy.num_replicas_in_sync)
    return Distribution(name, strategy, strategy.num_replicas_in_sync)

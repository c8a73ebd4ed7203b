"""Serialization of the layer arguments of the frontends.

A frontend's config names its convolution and pooling classes (by their
registered name, or their `keras.layers` name) and serializes the layers it
is given (activation, compression), so `.keras` files round-trip with
`safe_mode`.
"""

import keras

# The value of arguments whose default is a fresh object (e.g. LEAF's PCEN):
# `None` already means "no stage".
DEFAULT = "default"


def is_default(value):
    """Whether an argument was left at `DEFAULT`."""
    return isinstance(value, str) and value == DEFAULT


def serialize_class(cls):
    """Name of a layer class for get_config (registered or keras.layers)."""
    if cls is None:
        return None
    registered = keras.saving.get_registered_name(cls)
    if keras.saving.get_registered_object(registered) is cls:
        return registered
    if getattr(keras.layers, cls.__name__, None) is cls:
        return cls.__name__
    raise ValueError(
        f"Cannot serialize layer class {cls!r}: register it with "
        "@keras.saving.register_keras_serializable()."
    )


def deserialize_class(name):
    """The layer class named by `serialize_class` (or the class itself)."""
    if name is None or isinstance(name, type):
        return name
    cls = keras.saving.get_registered_object(name)
    if cls is None:
        cls = getattr(keras.layers, name, None)
    if cls is None:
        raise ValueError(f"Unknown layer class {name!r} in the config.")
    return cls


def deserialize_layer(config):
    """A layer from its serialized config (other values unchanged)."""
    if config is None or not isinstance(config, dict):
        return config
    return keras.saving.deserialize_keras_object(config)

"""Makes leaf_keras and Keras classes configurable with gin.

Importing this module registers, under their plain class names:

- every leaf_keras frontend, layer, initializer and model (``Leaf``, ``MelFilterbanks``,
  ``PCENLayer``, ``GaborInit``, ``AudioClassifier``, ``ConvNet``, ``PANN``, ...), with gin
  module names such as ``leaf_keras.frontend`` so a config can write ``@Leaf()`` or
  ``@leaf_keras.frontend.Leaf()``;
- a few Keras layers, losses, regularizers, initializers and applications under
  ``keras.layers``, ``keras.losses``, ... (e.g. ``@pooling/keras.initializers.Constant()``).

leaf_keras classes are decorated in place (like ``@gin.configurable`` on their
definitions in the original), Keras classes with ``gin.external_configurable``; never
``import gin.tf``, which fails on TensorFlow >= 2.16. Either way the objects built are
of the original classes, so models built from a config save to ``.keras`` files and
reload without gin.

Keras layers take ``**kwargs``, so gin alone accepts any parameter name for them
(``Leaf.n_filtres = 40`` would only fail when the layer is built, after the data was
read). `validate_bindings` closes that gap: `experiments.main` calls it right after
parsing, and it rejects every bound parameter that no ``__init__`` in the class's MRO
declares.
"""

import difflib
import importlib
import inspect

import keras
from absl import logging

import gin

# (python module, gin module, names). Names missing from a module are skipped, so a
# config that uses them fails with gin's own "No configurable matching" error.
_LEAF_KERAS_CONFIGURABLES = (
    (
        "leaf_keras.frontend",
        "leaf_keras.frontend",
        (
            "Leaf",
            "MelFilterbanks",
            "MelPCEN",
            "SincNet",
            "SincNetPlus",
            "TimeDomainFilterbanks",
            "SquaredModulus",
            "log_compression",  # leaf-audio's gin files write `@log_compression`
        ),
    ),
    (
        "leaf_keras.postprocessing",
        "leaf_keras.postprocessing",
        ("PCENLayer", "LogCompression", "ExponentialMovingAverage", "InstanceNormalization"),
    ),
    ("leaf_keras.spec_augment", "leaf_keras.spec_augment", ("SpecAugment",)),
    (
        "leaf_keras.initializers",
        "leaf_keras.initializers",
        ("PreempInit", "GaborInit", "SincInit", "LowpassInit"),
    ),
    (
        "leaf_keras.convolution",
        "leaf_keras.convolution",
        ("GaborConv1D", "SincConv1D", "NormalizedConv1D", "GaborConstraint"),
    ),
    (
        "leaf_keras.pooling",
        "leaf_keras.pooling",
        ("GaussianLowpass", "LearnablePooling1D", "ChannelWiseLearnablePooling1D", "MaxPooling1D"),
    ),
    (
        "leaf_keras.models",
        "leaf_keras.models",
        (
            "AudioClassifier",
            "ConvBlock",
            "ConvNet",
            "PANN",
            "PANNConvBlock",
            "PANNWavBlock",
            "WaveGram",
            "EfficientNetB0Encoder",
            "SmallConvNet",
        ),
    ),
    ("leaf_keras.transformer", "leaf_keras.transformer", ("TransformerEncoder",)),
    ("leaf_keras.band_limited", "leaf_keras.band_limited", ("BandLimitedGaborPooling",)),
)

# Keras classes, registered under keras.<group> (e.g. @keras.layers.Dense()). Keras's
# MaxPooling1D is left out on purpose: it would make "MaxPooling1D" ambiguous with
# leaf_keras.pooling.MaxPooling1D, which the frontends use.
_KERAS_CONFIGURABLES = {
    "keras.layers": (
        "Conv1D",
        "Conv2D",
        "Dense",
        "Dropout",
        "Flatten",
        "Reshape",
        "MaxPooling2D",
        "GlobalMaxPooling2D",
        "GlobalAveragePooling2D",
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "LeakyReLU",
    ),
    "keras.losses": (
        "SparseCategoricalCrossentropy",
        "CategoricalCrossentropy",
        "BinaryCrossentropy",
        "MeanSquaredError",
        "MeanAbsoluteError",
    ),
    "keras.regularizers": ("L1", "L2", "L1L2"),
    "keras.initializers": (
        "Constant",
        "GlorotUniform",
        "HeNormal",
        "HeUniform",
        "RandomNormal",
        "Zeros",
        "Ones",
    ),
    "keras.optimizers": ("Adam", "AdamW", "SGD", "RMSprop"),
    "keras.applications": ("EfficientNetB0", "EfficientNetB1", "MobileNetV2", "ResNet50"),
}

_REGISTERED = {}


def _register(obj, name, module, in_place=False):
    """Registers `obj` with gin as ``module.name``.

    ``in_place=True`` decorates the class itself, as ``@gin.configurable`` on its
    definition would: bindings then also apply when leaf_keras builds it internally
    (``ConvBlock.dropout`` reaches the blocks that ``ConvNet`` creates, ``SpecAugment.*``
    the layer that ``Leaf(spec_augment=True)`` creates), and through ``super().__init__``
    (``Leaf.n_filters`` also sets SincNet's), exactly like the original's gin setup.
    Keras inspects ``__init__`` with ``inspect.getfullargspec``, which does not follow
    ``__wrapped__``, so the original signature is copied onto gin's wrapper.
    """
    key = f"{module}.{name}"
    if key in _REGISTERED:
        return _REGISTERED[key]
    if in_place and inspect.isclass(obj):
        original_init = obj.__init__
        gin.configurable(name, module=module)(obj)
        if obj.__init__ is not original_init:
            obj.__init__.__signature__ = inspect.signature(original_init)
        wrapper = obj
    else:
        wrapper = gin.external_configurable(obj, name=name, module=module)
    _REGISTERED[key] = wrapper
    return wrapper


def register_all():
    """Registers every available configurable; safe to call more than once.

    Returns:
        The list of registered gin selectors, e.g. ``["leaf_keras.frontend.Leaf", ...]``.
    """
    for python_module, gin_module, names in _LEAF_KERAS_CONFIGURABLES:
        try:
            module = importlib.import_module(python_module)
        except ImportError as error:
            logging.debug("gin: %s not available (%s)", python_module, error)
            continue
        for name in names:
            if hasattr(module, name):
                _register(getattr(module, name), name, gin_module, in_place=True)
    for gin_module, names in _KERAS_CONFIGURABLES.items():
        keras_module = importlib.import_module(gin_module)
        for name in names:
            if hasattr(keras_module, name):
                _register(getattr(keras_module, name), name, gin_module)
    return sorted(_REGISTERED)


def configurable(selector):
    """Returns the gin wrapper registered as ``selector`` (e.g. "AudioClassifier").

    Calling the wrapper builds the object with the parsed gin bindings applied.

    Raises:
        ValueError: if nothing is registered under that name (e.g. the module that
            defines it could not be imported).
    """
    registered = register_all()
    try:
        return gin.get_configurable(selector)
    except ValueError:
        raise ValueError(
            f"No gin configurable named {selector!r} is registered; "
            f"registered: {', '.join(registered)}."
        ) from None


def _declared_parameters(fn_or_cls):
    """Names of the parameters `fn_or_cls` declares explicitly, or None if unknown.

    For a class this is the union over its MRO of the explicit ``__init__`` parameters,
    because Keras layers forward ``**kwargs`` to their base classes (``name``,
    ``trainable``, ``dtype`` ...).
    """
    functions = []
    if inspect.isclass(fn_or_cls):
        for base in inspect.getmro(fn_or_cls):
            if base is object:
                continue
            if "__init__" in vars(base):
                functions.append(vars(base)["__init__"])
    else:
        functions.append(fn_or_cls)
    names = set()
    accepts_anything = True
    for function in functions:
        function = inspect.unwrap(function)
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return None
        kinds = {parameter.kind for parameter in signature.parameters.values()}
        names.update(
            name
            for name, parameter in signature.parameters.items()
            if parameter.kind
            not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        )
        if inspect.Parameter.VAR_KEYWORD not in kinds:
            accepts_anything = False
    names.discard("self")
    if accepts_anything:
        if not inspect.isclass(fn_or_cls):
            return None
        allowed = getattr(fn_or_cls, "_ALLOWED", None)
        if isinstance(allowed, (tuple, list, set, frozenset)):
            # A class that checks its own **kwargs against an _ALLOWED list
            # (e.g. leaf_keras.initializers.GaborInit).
            return names | set(allowed)
        if not issubclass(fn_or_cls, keras.layers.Layer):
            return None
        # Keras layers forward **kwargs to keras.layers.Layer, which rejects unknown
        # names: the explicit parameters of the MRO are exactly the valid ones.
    return names


def validate_bindings():
    """Checks every parsed gin binding against the parameters its target declares.

    Gin itself only checks parameter names of callables without ``**kwargs``; Keras
    layers all take ``**kwargs``. Call this after parsing and before reading data.

    Raises:
        ValueError: naming the binding, e.g. "Leaf.n_filtres", and the valid names.
    """
    # gin has no public API that lists the parsed bindings or gives the function
    # a configurable wraps, hence its private `_CONFIG` and `_REGISTRY`.
    for (scope, selector), parameters in gin.config._CONFIG.items():  # pylint: disable=protected-access
        configurable_ = gin.config._REGISTRY.get_match(selector)  # pylint: disable=protected-access
        if configurable_ is None:  # Macros and unknown selectors: gin reports those.
            continue
        declared = _declared_parameters(configurable_.wrapped)
        if declared is None:
            continue
        for parameter in parameters:
            if parameter not in declared:
                where = f"{scope}/{selector}" if scope else selector
                raise ValueError(
                    f"Unknown gin parameter {where}.{parameter}: "
                    f"{configurable_.name} has no parameter named {parameter!r}. "
                    f"Valid parameters: {', '.join(sorted(declared))}."
                )


def _macro_references(value, found):
    """Adds to `found` the macro names that `value` refers to (``%name``), recursively."""
    if isinstance(value, gin.config.ConfigurableReference):
        if value.selector == "gin.macro":
            found.add(value.scoped_selector.rsplit("/", 1)[0])
    elif isinstance(value, dict):
        for item in value.values():
            _macro_references(item, found)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            _macro_references(item, found)


def validate_macros(may_be_unused=()):
    """Rejects a gin macro that nothing refers to: a misspelling, silently ignored by gin.

    ``windw_stride = 20.0`` defines a macro that no ``%window_stride`` reads, so the run
    would use the old stride. Call after parsing.

    Args:
        may_be_unused: macro names allowed to go unused (those of gin/common.gin, which
            not every frontend file reads).

    Raises:
        ValueError: naming the unused macro and the closest used name.
    """
    defined, used = set(), set()
    for (scope, selector), parameters in gin.config._CONFIG.items():  # pylint: disable=protected-access
        if selector == "gin.macro":
            defined.add(scope)
        for value in parameters.values():
            _macro_references(value, used)
    unused = sorted(defined - used - set(may_be_unused))
    if unused:
        close = difflib.get_close_matches(unused[0], sorted(used | set(may_be_unused)), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"The gin macro {unused[0]!r} is defined but no binding uses it (%{unused[0]}).{hint}"
        )


register_all()

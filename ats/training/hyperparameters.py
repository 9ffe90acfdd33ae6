"""Hyper-parameters declared once: a frozen dataclass whose fields say how to
check them and how to ask for them on the command line.

An experiment declares its hyper-parameters as a subclass of
:class:`TrainConfig` (the ones every attention-sampling run has), each field
made with :func:`hyperparameter`: its default, a line of help, and what it
accepts (the kind is read from the default: an int, a real number, a bool, a
``(height, width)`` pair, or a choice). Construction checks every field with
:mod:`ats.checks`; presets are dicts of overrides (:meth:`TrainConfig.
with_overrides`); ``ats.cli.add_hyperparameter_arguments`` makes one flag
per field (``--field-name``) from the same declaration.

Example:
    >>> import dataclasses
    >>> from ats.training.hyperparameters import TrainConfig, hyperparameter
    >>> @dataclasses.dataclass(frozen=True)
    ... class MyConfig(TrainConfig):
    ...     depth: int = hyperparameter(3, "convolutions per block", minimum=1)
    >>> config = MyConfig().with_overrides({"depth": 5, "epochs": None})
    >>> config.depth, config.epochs
    (5, 10)
"""

import dataclasses

from .. import checks

__all__ = ["KINDS", "TrainConfig", "hyperparameter", "hyperparameters"]

KINDS = ("int", "real", "bool", "choice", "pair", "indices", "text")
"""What a field accepts: ``pair`` is ``(height, width)`` of ints >= 1
(``HEIGHTxWIDTH`` on the command line), ``indices`` a tuple of ints >= 0,
``text`` a non-empty string (e.g. a name or a file)."""


def hyperparameter(
    default,
    help,
    *,
    kind=None,
    choices=None,
    minimum=None,
    exclusive_minimum=False,
    optional=False,
):
    """A dataclass field declaring one hyper-parameter.

    Args:
        default: the value without preset or override.
        help: str, one line describing it (the ``--help`` text).
        kind: one of :data:`KINDS`; read from ``default`` when omitted
            (``choice`` when ``choices`` are given).
        choices: the allowed values of a ``choice``.
        minimum: the smallest allowed value of an ``int`` or ``real``.
        exclusive_minimum: ``minimum`` itself is not allowed (``real``).
        optional: None is allowed too (e.g. "all of them").

    Returns:
        A ``dataclasses.field`` with the declaration in its metadata.
    """
    if kind is None:
        kind = _kind_of(default, choices)
    checks.choice("kind", kind, KINDS, where="hyperparameter")
    metadata = {
        "help": help,
        "kind": kind,
        "choices": tuple(choices) if choices is not None else None,
        "minimum": minimum,
        "exclusive_minimum": exclusive_minimum,
        "optional": optional,
    }
    return dataclasses.field(default=default, metadata=metadata)


def _kind_of(default, choices):
    if choices is not None:
        return "choice"
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "real"
    if isinstance(default, tuple) and len(default) == 2:
        return "pair"
    if isinstance(default, str):
        return "text"
    raise ValueError(
        f"hyperparameter: cannot tell the kind of the default {default!r}; "
        f"pass kind= (one of {list(KINDS)})"
    )


def hyperparameters(config_class):
    """The declared fields of ``config_class``, in declaration order."""
    return [f for f in dataclasses.fields(config_class) if "kind" in f.metadata]


def _checked(field, value):
    spec = field.metadata
    if value is None and spec["optional"]:
        return None
    name, kind = field.name, spec["kind"]
    if kind == "int":
        return checks.integer(name, value, minimum=spec["minimum"])
    if kind == "real":
        return checks.real(
            name,
            value,
            minimum=spec["minimum"],
            exclusive_minimum=spec["exclusive_minimum"],
        )
    if kind == "bool":
        return checks.boolean(name, value)
    if kind == "choice":
        return checks.choice(name, value, spec["choices"])
    if kind == "pair":
        return checks.int_tuple(name, value, length=2)
    if kind == "text":
        if not isinstance(value, str) or not value:
            checks.fail(name, "a non-empty string", value)
        return value
    return tuple(checks.integer(name, i, minimum=0) for i in value)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The hyper-parameters every attention-sampling run has (``config.json``'s
    ``train``); experiments subclass it to add their own or change defaults.

    Attributes:
        epochs: epochs to train.
        steps_per_epoch: training steps per epoch (None: the whole training
            set).
        batch_size: images per step (the global batch when distributed).
        learning_rate: Adam's learning rate.
        clipnorm: Adam's gradient-norm clipping.
        cooldown_epochs: the last epochs, over which the learning rate
            falls linearly (``ats.training.schedule.cooldown_learning_rate``;
            0: constant).
        n_patches: patches sampled per image.
        patch_size: ``(height, width)`` of the patches.
        regularizer_strength: weight of the attention's entropy regularizer.
        replace: sample patches with replacement.
        seed: seed of the weights' initialisation, shuffling and sampling.
        workers: threads preparing batches (``PyDataset(workers=...)``).
        deterministic: read the batches in order, in the training thread
            (``workers`` is then ignored), so that a run resumed after an
            interruption repeats an uninterrupted one exactly.
        picture_images: indices of the test images drawn in the pictures.
    """

    epochs: int = hyperparameter(10, "total epochs", minimum=1)
    steps_per_epoch: int = hyperparameter(
        None,
        "training steps per epoch (default: the whole training set)",
        kind="int",
        minimum=1,
        optional=True,
    )
    batch_size: int = hyperparameter(32, "images per step", minimum=1)
    learning_rate: float = hyperparameter(
        1e-3, "Adam's learning rate", minimum=0, exclusive_minimum=True
    )
    clipnorm: float = hyperparameter(
        1.0, "gradient-norm clipping", minimum=0, exclusive_minimum=True
    )
    cooldown_epochs: int = hyperparameter(
        0,
        "last epochs over which the learning rate falls linearly (0: constant)",
        minimum=0,
    )
    n_patches: int = hyperparameter(10, "patches sampled per image", minimum=1)
    patch_size: tuple = hyperparameter((50, 50), "patch size HEIGHTxWIDTH")
    regularizer_strength: float = hyperparameter(
        1e-4, "weight of the attention's entropy regularizer", minimum=0
    )
    replace: bool = hyperparameter(False, "sample patches with replacement")
    seed: int = hyperparameter(
        0, "seed of initialisation, shuffling and sampling", minimum=0
    )
    workers: int = hyperparameter(1, "threads preparing batches", minimum=1)
    deterministic: bool = hyperparameter(
        False,
        "read batches in order in the training thread (workers ignored), so "
        "that a resumed run repeats an uninterrupted one",
    )
    picture_images: tuple = hyperparameter(
        (0, 1, 2), "test images drawn in the pictures", kind="indices"
    )

    def __post_init__(self):
        for field in hyperparameters(type(self)):
            value = _checked(field, getattr(self, field.name))
            object.__setattr__(self, field.name, value)

    def with_overrides(self, overrides):
        """A copy with the fields of ``overrides`` changed (None values are
        left out: "not given"); unknown names raise ``ValueError``."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown {type(self).__name__} fields {sorted(unknown)}")
        return dataclasses.replace(self, **overrides)

    @property
    def batch_workers(self):
        """The threads preparing batches: ``workers``, or 1 (batches in
        order, in the training thread) when ``deterministic``."""
        return 1 if self.deterministic else self.workers

    def to_dict(self):
        """The fields as a JSON-serialisable dict."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, fields):
        """The config of a ``to_dict`` (e.g. ``config.json``'s ``train``)."""
        return cls(**fields)

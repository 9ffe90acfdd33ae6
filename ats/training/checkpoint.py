"""Checkpoints: the whole state of a compiled model, in one ``.npz`` file.

A checkpoint holds every variable of the model (weights and the states of its
``SeedGenerator``s, so patch sampling continues where it stopped), every
variable of its optimizer (moments, iteration count) and a JSON document with
the training state (e.g. the epoch and the metrics so far). It is written
atomically (:func:`ats.training.run.atomic_write`) and read back without
pickle. Loading needs a model built and compiled the same way; mismatches
raise ``ValueError`` naming the first differing variable, and a file that is
not a whole checkpoint (truncated, corrupt, another file in its place)
:class:`ats.training.run.RunFileError` naming it.
"""

import json
import zipfile
import zlib

import numpy as np
from keras import ops

from .run import RunFileError, atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "saved_epoch"]

# What numpy raises on a truncated or corrupt archive or a missing array.
_UNREADABLE = (zipfile.BadZipFile, EOFError, KeyError, OSError, zlib.error, ValueError)


def _unreadable(path, error):
    problem = {
        KeyError: "an array is missing",
        EOFError: "it is truncated",
    }.get(type(error), "it is truncated or corrupt")
    return RunFileError(
        f"{path}: not a readable checkpoint ({problem}); the run "
        "directory is left as it is: restore the file, or start a new run"
    )


def _open(path):
    """The ``np.load`` of a checkpoint, refusing anything but an archive
    (numpy's own error for other files suggests unpickling: never that)."""
    if not zipfile.is_zipfile(path):
        raise RunFileError(
            f"{path}: not a checkpoint (not an .npz archive); the run directory "
            "is left as it is: restore the file, or start a new run"
        )
    try:
        return np.load(path, allow_pickle=False)
    except _UNREADABLE as error:
        raise _unreadable(path, error) from None


def saved_epoch(path):
    """The epoch of the checkpoint in ``path``, or None if there is none
    (or it cannot be read)."""
    try:
        with _open(path) as data:
            return int(json.loads(str(data["state"]))["epoch"])
    except (RunFileError, *_UNREADABLE, TypeError):
        return None


_GROUPS = ("model", "optimizer")


def _variables(model):
    if model.optimizer is None:
        raise ValueError(
            f"`model` ({model.name!r}) must be compiled (with an optimizer) "
            "to save or load a checkpoint"
        )
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return {
        "model": list(model.variables),
        "optimizer": list(model.optimizer.variables),
    }


def save_checkpoint(path, model, state):
    """Write the model's and its optimizer's variables and ``state``.

    Args:
        path: str or path-like, the ``.npz`` file (replaced atomically).
        model: a compiled ``keras.Model``.
        state: a JSON-serialisable dict, returned by :func:`load_checkpoint`.
    """
    arrays = {"state": np.array(json.dumps(state))}
    for group, variables in _variables(model).items():
        arrays[f"{group}_paths"] = np.array([v.path for v in variables])
        for i, v in enumerate(variables):
            # Through a tensor: numpy cannot convert a tf.distribute
            # MirroredVariable scalar (`v.value`) directly.
            arrays[f"{group}_{i}"] = ops.convert_to_numpy(ops.convert_to_tensor(v))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path, model):
    """Restore a checkpoint written by :func:`save_checkpoint` into ``model``.

    Args:
        path: str or path-like, the ``.npz`` file.
        model: a compiled ``keras.Model`` built like the saved one.

    Returns:
        The ``state`` dict that was saved.
    """
    groups = _variables(model)
    with _open(path) as data:
        try:
            return _restore(path, data, groups)
        except _Mismatch:
            raise
        except _UNREADABLE as error:
            raise _unreadable(path, error) from None


class _Mismatch(ValueError):
    """The checkpoint is whole but of another model."""


def _restore(path, data, groups):
    """Check every array of ``data`` against the variables, then assign."""
    values = []
    state = json.loads(str(data["state"]))
    for group, variables in groups.items():
        saved_paths = [str(p) for p in data[f"{group}_paths"]]
        if len(saved_paths) != len(variables):
            raise _Mismatch(
                f"checkpoint {str(path)!r} holds {len(saved_paths)} "
                f"{group} variables but the model has {len(variables)}: "
                "it was saved from a differently configured model"
            )
        for i, v in enumerate(variables):
            value = data[f"{group}_{i}"]
            if tuple(value.shape) != tuple(v.shape):
                raise _Mismatch(
                    f"checkpoint {str(path)!r}: {group} variable {i} "
                    f"({saved_paths[i]!r}) has shape {value.shape} but "
                    f"the model's ({v.path!r}) has {tuple(v.shape)}"
                )
            values.append((v, value))
    # Every array read and checked: a bad file leaves the model as it was.
    for v, value in values:
        v.assign(value)
    return state

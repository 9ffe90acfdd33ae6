"""Argument checks: every public function and layer validates through these.

One message style everywhere, naming the argument, what was expected and
what was given (with its type when the type is wrong)::

    SamplePatches: `n_patches` must be an int >= 1, got 0
    `patch_size` must be a tuple of 2 ints >= 1, got (50, 'a') of type tuple

A wrong type raises ``TypeError``, a value of the right type outside its
range ``ValueError``. numpy scalars are accepted where the Python type is
(``np.int64(3)`` is an int, ``np.float32(0.5)`` a real number, ``np.bool_``
a bool); ``bool`` is never an int.

Every check returns the value converted to the plain Python type, so callers
write ``self.n_patches = checks.integer("n_patches", n_patches, minimum=1)``.

Example:
    >>> from ats import checks
    >>> checks.integer("n_patches", 10, minimum=1)
    10
    >>> checks.int_tuple("patch_size", [50, 50], length=2)
    (50, 50)
"""

import math
import numbers

import keras
import numpy as np

__all__ = [
    "boolean",
    "choice",
    "data_format",
    "fail",
    "int_tuple",
    "integer",
    "real",
    "real_pair",
    "seed",
]


def fail(name, expected, value, where=None, error=ValueError):
    """Raise ``error`` with the message of this module's style.

    Args:
        name: str, the argument's name.
        expected: str, what it must be (``"an int >= 1"``).
        value: what was given.
        where: str or None, the function or layer that was called.
        error: the exception class, ``ValueError`` or ``TypeError``.
    """
    prefix = f"{where}: " if where else ""
    given = f"{value!r}"
    if error is TypeError:
        given += f" of type {type(value).__name__}"
    raise error(f"{prefix}`{name}` must be {expected}, got {given}")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not _is_bool(value)


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def _bounds(minimum, maximum):
    if minimum is not None and maximum is not None:
        return f"in [{minimum}, {maximum}]"
    if minimum is not None:
        return f">= {minimum}"
    if maximum is not None:
        return f"<= {maximum}"
    return ""


def integer(name, value, minimum=None, maximum=None, where=None):
    """``value`` as an ``int`` within ``[minimum, maximum]`` (either optional).

    Returns:
        int.
    """
    expected = " ".join(filter(None, ("an int", _bounds(minimum, maximum))))
    if not _is_int(value):
        fail(name, expected, value, where, TypeError)
    value = int(value)
    if (minimum is not None and value < minimum) or (
        maximum is not None and value > maximum
    ):
        fail(name, expected, value, where)
    return value


def real(
    name,
    value,
    minimum=None,
    maximum=None,
    *,
    exclusive_minimum=False,
    exclusive_maximum=False,
    where=None,
):
    """``value`` as a finite ``float`` within the given bounds.

    Args:
        name: str, the argument's name.
        value: what was given.
        minimum: optional lower bound, inclusive unless ``exclusive_minimum``.
        maximum: optional upper bound, inclusive unless ``exclusive_maximum``.
        exclusive_minimum: bool, whether ``minimum`` itself is refused.
        exclusive_maximum: bool, whether ``maximum`` itself is refused.
        where: str or None, the function or layer that was called.

    Returns:
        float.
    """
    low = "" if minimum is None else ("(" if exclusive_minimum else "[")
    high = "" if maximum is None else (")" if exclusive_maximum else "]")
    if minimum is None and maximum is None:
        expected = "a finite real number"
    elif maximum is None:
        expected = f"a real number {'>' if exclusive_minimum else '>='} {minimum}"
    elif minimum is None:
        expected = f"a real number {'<' if exclusive_maximum else '<='} {maximum}"
    else:
        expected = f"a real number in {low}{minimum}, {maximum}{high}"
    if not isinstance(value, numbers.Real) or _is_bool(value):
        fail(name, expected, value, where, TypeError)
    value = float(value)
    below = minimum is not None and (
        value < minimum or (exclusive_minimum and value == minimum)
    )
    above = maximum is not None and (
        value > maximum or (exclusive_maximum and value == maximum)
    )
    if not math.isfinite(value) or below or above:
        fail(name, expected, value, where)
    return value


def boolean(name, value, where=None):
    """``value`` as a ``bool``; anything else (``1``, ``"yes"``, a tuple) is
    refused, so that a positional argument bound to the wrong parameter
    fails instead of being taken as truthy.

    Returns:
        bool.
    """
    if not _is_bool(value):
        fail(name, "a bool", value, where, TypeError)
    return bool(value)


def choice(name, value, choices, where=None):
    """``value`` if it is one of ``choices``.

    Returns:
        ``value``.
    """
    if value not in choices:
        fail(name, f"one of {list(choices)}", value, where)
    return value


def data_format(name, value, where=None):
    """``value``, a Keras image data format, or Keras's default for None.

    Returns:
        ``"channels_last"`` or ``"channels_first"``.
    """
    if value is None:
        return keras.config.image_data_format()
    return choice(name, value, ("channels_last", "channels_first"), where)


def int_tuple(name, value, length=None, minimum=1, where=None):
    """``value`` as a non-empty tuple of ints >= ``minimum`` (any ints if
    ``minimum`` is None), of ``length`` entries if given (a shape, a patch
    size, axes).

    Returns:
        tuple of int.
    """
    count = f"{length} " if length is not None else ""
    bound = f" >= {minimum}" if minimum is not None else ""
    expected = f"a tuple of {count}ints{bound}"
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        fail(name, expected, value, where, TypeError)
    items = tuple(value)
    if not items or not all(_is_int(item) for item in items):
        fail(name, expected, value, where, TypeError if items else ValueError)
    items = tuple(int(item) for item in items)
    if (length is not None and len(items) != length) or (
        minimum is not None and min(items) < minimum
    ):
        fail(name, expected, value, where)
    return items


def real_pair(name, value, where=None):
    """``value`` as a pair ``(low, high)`` of finite reals with low <= high.

    Returns:
        tuple of two floats.
    """
    expected = "a pair (low, high) of real numbers with low <= high"
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        fail(name, expected, value, where, TypeError)
    if len(value) != 2:
        fail(name, expected, value, where)
    low = real(f"{name}[0]", value[0], where=where)
    high = real(f"{name}[1]", value[1], where=where)
    if low > high:
        fail(name, expected, value, where)
    return low, high


def seed(name, value, where=None):
    """``value`` as None or an ``int`` (a random seed).

    Returns:
        int or None.
    """
    if value is None:
        return None
    if not _is_int(value):
        fail(name, "None or an int", value, where, TypeError)
    return int(value)

"""Running an attention-sampling model step by step, to see what it looked at."""

import numpy as np

from ...core import SamplePatches
from ...core.inspection import inspect_step
from .networks import ATTENTION, CLASSIFIER, FEATURE

__all__ = ["inspect"]


def _sample_patches_layer(model):
    found = [layer for layer in model.layers if isinstance(layer, SamplePatches)]
    if len(found) != 1:
        raise ValueError(
            "`model` must be an attention-sampling model built by ats_model "
            f"(with one SamplePatches layer), got {len(found)} such layers "
            f"in {model.name!r}"
        )
    return found[0]


def inspect(model, x_low, x_high, deterministic=False, seed=None):
    """Run an ``ats_model`` step by step and return what it looked at.

    The steps are the model's own: its attention network, the sampling of
    ``ats.core.sample`` (or the top-``n_patches`` positions), the patch
    placement of ``SamplePatches.patch_corners``, its feature network, the unbiased
    expectation and its classifier, so the probabilities are the model's
    prediction from exactly the returned patches.

    Args:
        model: a model built by ``ats_model``.
        x_low: ``(B, h, w, C)`` low-resolution views.
        x_high: ``(B, H, W, C)`` high-resolution views.
        deterministic: bool, take the most attended positions in decreasing
            order instead of sampling.
        seed: int or None, the seed of the sampling.

    Returns:
        A dict of numpy arrays: ``attention`` ``(B, h, w)``, ``corners``
        ``(B, N, 2)`` top-left ``(row, col)`` of the patches in ``x_high``
        (may be negative near the border), ``patches`` ``(B, N, ph, pw, C)``,
        ``sampled_attention`` ``(B, N)`` and ``probabilities``
        ``(B, n_classes)``.

    Example:
        >>> import numpy as np
        >>> from ats.models.megapixel_mnist import ats_model, inspect
        >>> model = ats_model((16, 16, 1), (96, 96, 1), n_patches=3,
        ...                   patch_size=(30, 30), filters=4, seed=0)
        >>> x_low, x_high = np.ones((2, 16, 16, 1)), np.ones((2, 96, 96, 1))
        >>> seen = inspect(model, x_low, x_high, seed=1)
        >>> seen["corners"].shape, seen["patches"].shape
        ((2, 3, 2), (2, 3, 30, 30, 1))
    """
    seen = inspect_step(
        _sample_patches_layer(model),
        model.get_layer(ATTENTION),
        model.get_layer(FEATURE),
        model.get_layer(CLASSIFIER),
        np.asarray(x_low, dtype="float32"),
        np.asarray(x_high, dtype="float32"),
        deterministic,
        seed,
    )
    seen["probabilities"] = seen.pop("outputs")
    return seen

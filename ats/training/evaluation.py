"""Evaluation with sampled patches and with the top attention positions.

An attention-sampling model samples its patches at inference too, so its
predictions are random. :func:`evaluate` reports the test error both ways:
with sampled patches (what the model was trained with, the default) and with
the deterministic top-``n_patches`` positions of the attention
(``SamplePatches.deterministic``), side by side.
"""

import contextlib
import time

from ..core import SamplePatches

__all__ = ["deterministic_sampling", "has_sampling", "evaluate"]


def _sample_patches_layers(model):
    """Every ``SamplePatches`` layer of ``model``, nested models included."""
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, SamplePatches)]


def has_sampling(model):
    """Whether ``model`` holds a ``SamplePatches`` layer."""
    return bool(_sample_patches_layers(model))


def _reset_compiled_functions(model):
    # Compiled (jitted) functions capture `deterministic` when traced.
    model.test_function = None
    model.predict_function = None


@contextlib.contextmanager
def deterministic_sampling(model):
    """Within the block, ``model`` takes its most attended patches.

    Sets ``deterministic = True`` on every ``SamplePatches`` layer of
    ``model`` and drops its compiled test and predict functions so that
    ``evaluate``/``predict`` retrace with it (under ``jit`` the flag is read
    when the function is traced); restores both on exit.

    Args:
        model: a ``keras.Model``; without ``SamplePatches`` layers the block
            changes nothing.
    """
    layers = _sample_patches_layers(model)
    previous = [layer.deterministic for layer in layers]
    for layer in layers:
        layer.deterministic = True
    _reset_compiled_functions(model)
    try:
        yield model
    finally:
        for layer, value in zip(layers, previous):
            layer.deterministic = value
        _reset_compiled_functions(model)


def _evaluate_once(model, data, verbose):
    start = time.perf_counter()
    logs = model.evaluate(data, verbose=verbose, return_dict=True)
    if "accuracy" not in logs:
        raise ValueError("`model` must be compiled with metrics=['accuracy']")
    return {"loss": float(logs["loss"]), "error": 1.0 - float(logs["accuracy"]),
            "seconds": time.perf_counter() - start}


def evaluate(model, data, verbose=1):
    """Test loss and error, with sampled and with top-k patches.

    Args:
        model: a ``keras.Model`` compiled with an ``"accuracy"`` metric.
        data: a ``keras.utils.PyDataset`` of ``(x, y)`` batches.
        verbose: 0 (silent) or 1 (progress bars).

    Returns:
        ``{"sampled": {"loss", "error", "seconds"}, "top_k": {...}}``; for a
        model without ``SamplePatches`` layers ``"top_k"`` is None.
    """
    results = {"sampled": _evaluate_once(model, data, verbose), "top_k": None}
    if has_sampling(model):
        with deterministic_sampling(model):
            results["top_k"] = _evaluate_once(model, data, verbose)
    return results

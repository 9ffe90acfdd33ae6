"""Evaluation with sampled patches and with the top attention positions.

An attention-sampling model samples its patches at inference too, so its
predictions are random. :func:`evaluate` reports the test loss and metrics
both ways: with sampled patches (what the model was trained with, the
default) and with the deterministic top-``n_patches`` positions of the
attention (``SamplePatches.deterministic``), side by side. The sampled
figures are means over several passes over the test set, each with new
draws: the expected error of the random model, with less of one draw's luck
in it.
"""

import contextlib
import statistics
import time

from .. import checks
from ..backends.keras_internals import flatten_layers
from ..core import SamplePatches
from .trainer import named_metrics, progress_bars

__all__ = ["deterministic_sampling", "has_sampling", "evaluate"]


def _sample_patches_layers(model):
    """Every ``SamplePatches`` layer of ``model``, nested models included."""
    return [
        layer for layer in flatten_layers(model) if isinstance(layer, SamplePatches)
    ]


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
    logs = model.evaluate(data, verbose=progress_bars(verbose), return_dict=True)
    return {**named_metrics(logs), "seconds": time.perf_counter() - start}


def evaluate(model, data, verbose=1, draws=5):
    """Test loss and metrics, with sampled and with top-k patches.

    Args:
        model: a compiled ``keras.Model``; its metrics are reported as
            :func:`ats.training.trainer.named_metrics` names them (an
            ``accuracy`` metric as ``error``).
        data: a ``keras.utils.PyDataset`` of ``(x, y)`` batches.
        verbose: 0 (silent) or 1 (progress bars).
        draws: int >= 1, passes over ``data`` with sampled patches (new
            draws each time) for a model that samples.

    Returns:
        ``{"sampled": {"loss", <metrics>, "seconds", "draws"}, "top_k":
        {"loss", <metrics>, "seconds"}}``: the sampled loss and metrics are
        the means over the draws (``draws`` lists each pass's, ``seconds``
        is their total); for a model without ``SamplePatches`` layers, one
        pass and ``"top_k"`` None.
    """
    draws = checks.integer("draws", draws, minimum=1, where="evaluate")
    sampling = has_sampling(model)
    passes = [
        _evaluate_once(model, data, verbose) for _ in range(draws if sampling else 1)
    ]
    sampled = {
        name: statistics.fmean(p[name] for p in passes)
        for name in passes[0]
        if name != "seconds"
    }
    sampled["seconds"] = sum(p["seconds"] for p in passes)
    sampled["draws"] = [{k: v for k, v in p.items() if k != "seconds"} for p in passes]
    results = {"sampled": sampled, "top_k": None}
    if sampling:
        with deterministic_sampling(model):
            results["top_k"] = _evaluate_once(model, data, verbose)
    return results

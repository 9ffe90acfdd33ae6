"""Timing: wall-clock seconds of calls after warm-up, and their summary.

``time_calls`` runs a function a few times as warm-up (the first call
compiles), then ``repeats`` times; ``interleaved_times`` times several
functions in alternation, so that a change of the machine's load hits them
alike; ``summarize`` reports the median with the min and the max.
"""

import statistics
import time


def block(result):
    """Wait until ``result`` is computed (JAX dispatches asynchronously).

    Args:
        result: a tensor, a list, tuple or dict of tensors, or anything else.

    Returns:
        ``result`` itself.
    """
    if isinstance(result, dict):
        items = result.values()
    elif isinstance(result, (list, tuple)):
        items = result
    else:
        items = [result]
    for item in items:
        if hasattr(item, "block_until_ready"):
            item.block_until_ready()
    return result


def time_calls(fn, repeats, warmup=2, budget_s=None, min_repeats=3):
    """Seconds taken by each of ``repeats`` calls of ``fn`` after ``warmup``.

    ``fn`` must return only once its work is done (wrap results of
    asynchronous backends in ``block``).

    Args:
        fn: callable without arguments.
        repeats: int >= 0, the number of timed calls.
        warmup: int >= 0, untimed calls first (compilation, caches).
        budget_s: optional float: stop timing once ``min_repeats`` calls
            are done and the timed calls took more than this in all (for
            configurations whose calls take minutes).
        min_repeats: int, the calls timed at least when ``budget_s`` is set.

    Returns:
        list of floats, wall-clock seconds, one per timed call.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        over_budget = budget_s is not None and sum(times) > budget_s
        if over_budget and len(times) >= min_repeats:
            break
    return times


def interleaved_times(functions, repeats, warmup=2):
    """Time several functions in alternation, for ratios robust to drift.

    Every function is warmed up first; then each round times every function
    once, in turn, so a slow-down of the machine hits all of them alike.

    Args:
        functions: dict name -> callable without arguments.
        repeats: int, the number of rounds.
        warmup: int, untimed calls of each function first.

    Returns:
        dict name -> list of ``repeats`` seconds.
    """
    for fn in functions.values():
        time_calls(fn, 0, warmup)
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            times[name] += time_calls(fn, 1, warmup=0)
    return times


def summarize(values, scale=1.0):
    """Median, min and max of ``values`` multiplied by ``scale``.

    Args:
        values: non-empty sequence of numbers.
        scale: factor applied to every statistic (e.g. 1000 for s -> ms).

    Returns:
        ``{"median": ..., "min": ..., "max": ..., "n": len(values)}``.
    """
    return {
        "median": scale * statistics.median(values),
        "min": scale * min(values),
        "max": scale * max(values),
        "n": len(values),
    }


def ratio(numerator, denominator):
    """``numerator / denominator`` of two ``summarize`` medians."""
    return numerator["median"] / denominator["median"]

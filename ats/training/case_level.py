"""ROC AUC with bootstrap confidence intervals, per image and per case.

* :func:`bootstrap_roc_auc`: the ROC AUC of class probabilities (binary, or
  macro one-vs-rest: :func:`ats.training.classification.
  classification_metrics`'s definition) with a seeded, stratified,
  percentile bootstrap confidence interval.
* :func:`case_probabilities`: the images of a case (the manifest's
  ``group``, e.g. the slides of a patient) aggregated into one prediction:
  the mean of their class probabilities.
* :func:`auc_intervals`: both, per image and per case, ready for JSON;
  :func:`auc_markdown` a Markdown table of them.

The bootstrap resamples the units the AUC is about (images for the
per-image AUC, cases for the per-case one) with replacement, **within each
class** (stratified, as pROC's ``ci.auc`` does by default): every resample
has as many units of each class as the data, so its AUC is always defined
(a plain resample of few positives would often hold one class only, whose
AUC does not exist). The interval is the ``(1 - confidence) / 2`` and
``(1 + confidence) / 2`` quantiles of the resamples' AUCs (percentile
method). With fewer than two classes present the AUC and its interval are
``None``, never NaN.

Example:
    >>> from ats.training.case_level import bootstrap_roc_auc
    >>> result = bootstrap_roc_auc(
    ...     [0, 0, 0, 1, 1, 1],
    ...     [[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.4, 0.6],
    ...      [0.1, 0.9]], resamples=200, seed=0)
    >>> result["roc_auc"], result["interval"]
    (1.0, [1.0, 1.0])
"""

import numpy as np

from .. import checks
from .classification import _class_names, _labels, _probabilities, _roc_auc

__all__ = [
    "bootstrap_roc_auc",
    "case_probabilities",
    "auc_intervals",
    "auc_markdown",
    "CASE_AGGREGATION",
]

CASE_AGGREGATION = "mean of the images' class probabilities"
"""How a case's prediction is formed from its images' ones."""


def _checked(labels, probabilities):
    """``(labels (N,) int64, probabilities (N, K) float64)``, validated."""
    array = np.asarray(probabilities)
    if array.ndim != 2 or array.shape[1] < 2:
        checks.fail(
            "probabilities",
            "an array of shape (N, K) with K >= 2 classes",
            f"shape {array.shape}",
        )
    labels = _labels(labels, array.shape[1])
    return labels, _probabilities(array, len(labels), array.shape[1])


def bootstrap_roc_auc(labels, probabilities, resamples=1000, confidence=0.95, seed=0):
    """The ROC AUC and its stratified percentile bootstrap interval.

    Args:
        labels: ``(N,)`` class indices in ``[0, K)``.
        probabilities: ``(N, K)`` finite class probabilities (or scores).
        resamples: int >= 1, the number of bootstrap resamples.
        confidence: float in (0, 1), the interval's nominal coverage.
        seed: int >= 0, the seed of the resampling (same seed, same
            interval).

    Returns:
        A JSON-ready dict: ``units`` (``N``), ``roc_auc`` (with ``K == 2``
        the AUC of class 1's probability, else the macro one-vs-rest AUC
        over the classes present; ``None`` with fewer than two classes
        present), ``interval`` (``[low, high]``, ``None`` with the AUC),
        ``confidence``, ``resamples``, ``seed`` and ``method``.

    Raises:
        ValueError, TypeError: inputs of the wrong shape, type or range.
    """
    labels, probabilities = _checked(labels, probabilities)
    resamples = checks.integer("resamples", resamples, minimum=1)
    confidence = checks.real(
        "confidence",
        confidence,
        0,
        1,
        exclusive_minimum=True,
        exclusive_maximum=True,
    )
    seed = checks.integer("seed", seed, minimum=0)
    result = {
        "units": len(labels),
        "roc_auc": _roc_auc(labels, probabilities),
        "interval": None,
        "confidence": confidence,
        "resamples": resamples,
        "seed": seed,
        "method": "percentile bootstrap, resampled within each class",
    }
    if result["roc_auc"] is None:
        return result
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    draws = [m[rng.integers(0, len(m), (resamples, len(m)))] for m in members]
    aucs = np.empty(resamples)
    for r in range(resamples):
        index = np.concatenate([drawn[r] for drawn in draws])
        aucs[r] = _roc_auc(labels[index], probabilities[index])
    low, high = np.quantile(aucs, [(1 - confidence) / 2, (1 + confidence) / 2])
    result["interval"] = [float(low), float(high)]
    return result


def case_probabilities(groups, labels, probabilities):
    """Each case's label and prediction from those of its images.

    A case's probabilities are the mean of its images' ones
    (:data:`CASE_AGGREGATION`); its label is that of its images, which
    must agree.

    Args:
        groups: ``(N,)`` the case (str) of each image.
        labels: ``(N,)`` class indices.
        probabilities: ``(N, K)`` class probabilities.

    Returns:
        ``(cases, case_labels, case_probabilities)``: the ``G`` distinct
        cases (sorted), ``(G,)`` int64 labels and ``(G, K)`` float64 mean
        probabilities.

    Raises:
        ValueError: ``groups`` of another length than ``labels``, or a case
            whose images have different labels (named).

    Example:
        >>> from ats.training.case_level import case_probabilities
        >>> case_probabilities(["b", "a", "b"], [1, 0, 1],
        ...                    [[0.2, 0.8], [0.9, 0.1], [0.6, 0.4]])
        (['a', 'b'], array([0, 1]), array([[0.9, 0.1],
               [0.4, 0.6]]))
    """
    labels, probabilities = _checked(labels, probabilities)
    groups = _groups(groups, len(labels))
    mixed = _mixed_cases(groups, labels)
    if mixed:
        checks.fail("labels", "one label per case (group)", _mixed_text(mixed))
    cases, index = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
    case_labels = np.zeros(len(cases), np.int64)
    case_labels[index] = labels
    sums = np.zeros((len(cases), probabilities.shape[1]))
    np.add.at(sums, index, probabilities)
    counts = np.bincount(index, minlength=len(cases))
    return [str(c) for c in cases], case_labels, sums / counts[:, None]


def _groups(groups, n):
    """``groups`` as a list of ``n`` str."""
    groups = [str(group) for group in groups]
    if len(groups) != n:
        checks.fail("groups", f"{n} cases, one per label", f"{len(groups)} cases")
    return groups


def _mixed_cases(groups, labels):
    """The cases whose images have different labels (sorted)."""
    seen = {}
    for group, label in zip(groups, labels):
        seen.setdefault(str(group), set()).add(int(label))
    return sorted(group for group, found in seen.items() if len(found) > 1)


def _mixed_text(mixed):
    more = f" and {len(mixed) - 5} more" if len(mixed) > 5 else ""
    return f"images of different labels in case(s) {mixed[:5]}{more}"


def auc_intervals(
    labels, probabilities, groups=None, resamples=1000, confidence=0.95, seed=0
):
    """The ROC AUC with bootstrap intervals per image and per case.

    Args:
        labels: ``(N,)`` the images' class indices.
        probabilities: ``(N, K)`` their class probabilities.
        groups: ``(N,)`` their cases (the manifest's ``group``), or None
            (no per-case figures).
        resamples, confidence, seed: as :func:`bootstrap_roc_auc`'s.

    Returns:
        ``{"images": result, "cases": result or None}``, each a
        :func:`bootstrap_roc_auc` result (cases resampled for the per-case
        one), with ``aggregation`` (:data:`CASE_AGGREGATION`) for cases.
        When a case's images have different labels, ``cases`` is
        ``{"units": G, "roc_auc": None, "interval": None, "problem": ...}``
        naming those cases.

    Example:
        >>> from ats.training.case_level import auc_intervals
        >>> result = auc_intervals(
        ...     [0, 0, 1, 1], [[0.9, 0.1], [0.7, 0.3], [0.4, 0.6], [0.2, 0.8]],
        ...     groups=["p1", "p1", "p2", "p2"], resamples=100)
        >>> result["images"]["roc_auc"], result["cases"]["units"]
        (1.0, 2)
    """
    options = {"resamples": resamples, "confidence": confidence, "seed": seed}
    images = bootstrap_roc_auc(labels, probabilities, **options)
    if groups is None:
        return {"images": images, "cases": None}
    labels, probabilities = _checked(labels, probabilities)
    groups = _groups(groups, len(labels))
    mixed = _mixed_cases(groups, labels)
    if mixed:
        cases = {
            "units": len(set(groups)),
            "roc_auc": None,
            "interval": None,
            "problem": _mixed_text(mixed),
        }
        return {"images": images, "cases": cases}
    _, case_labels, case_probs = case_probabilities(groups, labels, probabilities)
    cases = bootstrap_roc_auc(case_labels, case_probs, **options)
    cases["aggregation"] = CASE_AGGREGATION
    return {"images": images, "cases": cases}


def _auc_text(result):
    if result is None:
        return "—"
    if result["roc_auc"] is None:
        return "— (" + result.get("problem", "fewer than two classes") + ")"
    text = f"{result['roc_auc']:.3f}"
    low, high = result["interval"]
    return f"{text} [{low:.3f}, {high:.3f}]"


def auc_markdown(intervals, class_names, heading="## ROC AUC per image and per case"):
    """A Markdown table of :func:`auc_intervals` results.

    Args:
        intervals: ``{title: auc_intervals result}``, one column each (e.g.
            ``{"sampled patches": ..., "most attended patches": ...}``).
        class_names: the class names (binary: the second is the positive
            class).
        heading: the section's heading line.

    Returns:
        str: the heading, a sentence on the method, and a table with a row
        per image and a row per case, ``AUC [low, high]`` per column.

    Example:
        >>> from ats.training.case_level import auc_intervals, auc_markdown
        >>> result = auc_intervals([0, 1], [[0.8, 0.2], [0.3, 0.7]],
        ...                        groups=["a", "b"], resamples=10)
        >>> print(auc_markdown({"sampled": result}, ["no", "yes"]).splitlines()[-1])
        | per case (2) | 1.000 [1.000, 1.000] |
    """
    names = _class_names(class_names)
    if not isinstance(intervals, dict) or not intervals:
        checks.fail("intervals", "a non-empty dict {title: auc_intervals}", intervals)
    first = next(iter(intervals.values()))
    details = first["images"]
    positive = (
        f"`{names[1]}` the positive class"
        if len(names) == 2
        else "macro one-vs-rest over the classes present"
    )
    lines = [
        heading,
        "",
        f"{positive}; {100 * details['confidence']:g}% intervals: "
        f"{details['method']}, {details['resamples']} resamples (seed "
        f"{details['seed']}); a case's prediction is the {CASE_AGGREGATION}.",
        "",
        "| unit | " + " | ".join(intervals) + " |",
        "|---" * (len(intervals) + 1) + "|",
        f"| per image ({details['units']}) | "
        + " | ".join(_auc_text(r["images"]) for r in intervals.values())
        + " |",
    ]
    if first["cases"] is not None:
        lines.append(
            f"| per case ({first['cases']['units']}) | "
            + " | ".join(_auc_text(r["cases"]) for r in intervals.values())
            + " |"
        )
    return "\n".join(lines) + "\n"

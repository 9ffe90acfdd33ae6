"""Classification metrics of a test set, in numpy, ready for JSON and Markdown.

* :func:`classification_metrics`: accuracy, balanced accuracy, per-class
  precision and recall, the confusion matrix and the ROC AUC (binary, or
  macro one-vs-rest) of predicted class probabilities.
* :func:`mean_metrics`: the mean of several passes' metrics (e.g. several
  draws of sampled patches over the same test set).
* :func:`metrics_markdown`: a Markdown section comparing the metrics with
  sampled patches and with the most attended patches.

Every value is a plain Python ``int``, ``float``, ``str``, ``list``,
``dict`` or ``None`` (never NaN), so the metrics go to JSON as they are. The
definitions are scikit-learn's (``accuracy_score``,
``balanced_accuracy_score``, ``precision_score`` and ``recall_score`` with
``zero_division=0``, ``confusion_matrix``, ``roc_auc_score``); the tests
check them against it, but the library does not depend on it.

Example:
    >>> from ats.training.classification import classification_metrics
    >>> metrics = classification_metrics(
    ...     [0, 0, 1, 1], [[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]],
    ...     ["cat", "dog"])
    >>> metrics["accuracy"], metrics["roc_auc"]
    (0.75, 1.0)
    >>> metrics["confusion_matrix"]
    [[1, 1], [0, 2]]
    >>> metrics["per_class"]["dog"]
    {'precision': 0.666..., 'recall': 1.0, 'support': 2}
"""

import math

import numpy as np

from .. import checks

__all__ = ["classification_metrics", "mean_metrics", "metrics_markdown"]


def _labels(labels, n_classes):
    """``labels`` as a 1-D int64 array of classes in ``[0, n_classes)``."""
    array = np.asarray(labels)
    if array.ndim != 1 or array.size == 0:
        checks.fail("labels", "a non-empty 1-D array of class indices", labels)
    whole = array.dtype.kind == "f" and np.all(np.isfinite(array))
    if whole and np.all(array == np.round(array)):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        checks.fail("labels", "class indices (integers)", labels, error=TypeError)
    array = array.astype(np.int64)
    if array.min() < 0 or array.max() >= n_classes:
        checks.fail(
            "labels",
            f"class indices in [0, {n_classes - 1}] ({n_classes} classes)",
            f"values from {array.min()} to {array.max()}",
        )
    return array


def _probabilities(probabilities, n, n_classes):
    """``probabilities`` as a finite float64 ``(n, n_classes)`` array."""
    array = np.asarray(probabilities)
    if array.dtype.kind not in "iuf" or array.shape != (n, n_classes):
        checks.fail(
            "probabilities",
            f"an array of numbers of shape ({n}, {n_classes}) (one row per "
            f"label, one column per class)",
            f"shape {array.shape} of dtype {array.dtype}",
        )
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        checks.fail(
            "probabilities",
            "finite",
            f"{int(np.sum(~np.isfinite(array)))} non-finite values",
        )
    return array


def _class_names(class_names):
    names = list(class_names) if not isinstance(class_names, str) else None
    if not names or not all(isinstance(name, str) for name in names):
        checks.fail(
            "class_names", "a non-empty list of str", class_names, error=TypeError
        )
    if len(set(names)) != len(names):
        checks.fail("class_names", "distinct names", class_names)
    return names


def _average_ranks(scores):
    """1-based ranks of ``scores``, tied values sharing their mean rank."""
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat((starts + 1 + ends) / 2, ends - starts)
    return ranks


def _auc(positive, scores):
    """The ROC AUC of ``scores`` for the ``positive`` (bool) examples.

    The Mann-Whitney statistic: the probability that a positive example
    scores higher than a negative one, a tie counting one half.
    """
    n_positive = int(positive.sum())
    n_negative = len(positive) - n_positive
    rank_sum = _average_ranks(scores)[positive].sum()
    return float(
        (rank_sum - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative)
    )


def _roc_auc(labels, probabilities):
    n_classes = probabilities.shape[1]
    present = np.unique(labels)
    if len(present) < 2:
        return None
    if n_classes == 2:
        return _auc(labels == 1, probabilities[:, 1])
    return float(np.mean([_auc(labels == k, probabilities[:, k]) for k in present]))


def _ratio(numerator, denominator):
    return float(numerator / denominator) if denominator else 0.0


def classification_metrics(labels, probabilities, class_names):
    """The metrics of predicted class probabilities against true classes.

    The predicted class of an example is its most probable one (the first
    of equally probable ones).

    Args:
        labels: ``(N,)`` true class indices in ``[0, K)``, ``N >= 1``.
        probabilities: ``(N, K)`` finite class probabilities (or any scores:
            only their order matters).
        class_names: the ``K`` distinct class names (str), in class order.

    Returns:
        A JSON-serialisable dict: ``examples`` (``N``); ``accuracy`` (the
        fraction of examples predicted right); ``balanced_accuracy`` (the
        mean recall of the classes present in ``labels``); ``per_class``
        (``{name: {"precision", "recall", "support"}}`` in class order,
        ``support`` the number of examples of the class; the precision of a
        class never predicted, and the recall of a class absent from
        ``labels``, are ``0.0``); ``confusion_matrix`` (``K`` rows, the true
        classes, of ``K`` ints, the predicted ones); ``roc_auc`` (with
        ``K == 2`` the AUC of class 1's probability, class 1 being the
        positive class; with ``K > 2`` the mean over the classes present in
        ``labels`` of each class's one-vs-rest AUC; ``None`` when fewer than
        two classes are present; ties count one half, the Mann-Whitney
        statistic).

    Raises:
        ValueError, TypeError: inputs of the wrong shape or type, labels out
            of range, non-finite probabilities.
    """
    names = _class_names(class_names)
    n_classes = len(names)
    labels = _labels(labels, n_classes)
    probabilities = _probabilities(probabilities, len(labels), n_classes)
    predicted = np.argmax(probabilities, axis=1)
    confusion = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    correct = np.diag(confusion)
    recall = [_ratio(correct[k], support[k]) for k in range(n_classes)]
    present = support > 0
    return {
        "examples": len(labels),
        "accuracy": float(correct.sum() / len(labels)),
        "balanced_accuracy": float(np.mean(np.asarray(recall)[present])),
        "per_class": {
            name: {
                "precision": _ratio(correct[k], predicted_count[k]),
                "recall": recall[k],
                "support": int(support[k]),
            }
            for k, name in enumerate(names)
        },
        "confusion_matrix": confusion.tolist(),
        "roc_auc": _roc_auc(labels, probabilities),
    }


def _mean(values, path, as_float=False):
    """The mean of the same entry ``path`` of several passes' metrics."""
    first = values[0]
    if isinstance(first, dict):
        if any(not isinstance(v, dict) or list(v) != list(first) for v in values):
            raise ValueError(
                f"`results_list`: the passes' metrics differ in their keys at "
                f"{path or 'the top level'}"
            )
        return {
            key: _mean(
                [v[key] for v in values],
                f"{path}.{key}" if path else key,
                as_float or key == "confusion_matrix",
            )
            for key in first
        }
    if isinstance(first, list):
        if any(not isinstance(v, list) or len(v) != len(first) for v in values):
            raise ValueError(
                f"`results_list`: the passes' metrics differ in shape at {path}"
            )
        return [
            _mean([v[i] for v in values], f"{path}[{i}]", as_float)
            for i in range(len(first))
        ]
    numbers = [v for v in values if v is not None]
    if not numbers:
        return None
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers):
        raise ValueError(
            f"`results_list`: {path} must hold numbers (or None), got {numbers!r}"
        )
    counts = not as_float and all(isinstance(v, int) for v in numbers)
    if counts and all(v == numbers[0] for v in numbers):
        return numbers[0]  # counts that do not change (supports)
    return math.fsum(numbers) / len(numbers)


def mean_metrics(results_list):
    """The mean of several passes' :func:`classification_metrics`.

    Args:
        results_list: non-empty list of metrics dicts of the same classes
            (e.g. one per draw of sampled patches on the same test set).

    Returns:
        A dict of the same structure where every number is the mean over the
        passes (``None`` entries are left out of the mean; ``None`` when all
        are); an int equal in every pass (a class's ``support``, the number
        of ``examples``) stays an int; confusion matrices are averaged as
        floats. ``passes`` gives the number of passes.

    Example:
        >>> from ats.training.classification import (
        ...     classification_metrics, mean_metrics)
        >>> names = ["x", "y"]
        >>> passes = [
        ...     classification_metrics([0, 1], [[0.9, 0.1], [0.2, 0.8]], names),
        ...     classification_metrics([0, 1], [[0.9, 0.1], [0.7, 0.3]], names),
        ... ]
        >>> mean = mean_metrics(passes)
        >>> mean["accuracy"], mean["passes"], mean["confusion_matrix"]
        (0.75, 2, [[1.0, 0.0], [0.5, 0.5]])
    """
    results_list = list(results_list)
    if not results_list or not all(isinstance(r, dict) for r in results_list):
        checks.fail("results_list", "a non-empty list of metrics dicts", results_list)
    mean = _mean(
        [{k: v for k, v in r.items() if k != "passes"} for r in results_list], ""
    )
    mean["passes"] = len(results_list)
    return mean


def _cell(text):
    """``text`` made safe for a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _percent(value):
    return "—" if value is None else f"{100 * value:.1f}%"


def _auc_cell(value):
    return "—" if value is None else f"{value:.3f}"


def _count(value):
    if isinstance(value, int):
        return str(value)
    return f"{value:.1f}"


def _confusion_table(matrix, names):
    return [
        "| true \\ predicted | " + " | ".join(_cell(n) for n in names) + " |",
        "|---" * (len(names) + 1) + "|",
        *(
            f"| {_cell(name)} | " + " | ".join(_count(v) for v in row) + " |"
            for name, row in zip(names, matrix)
        ),
        "",
    ]


def metrics_markdown(results, class_names, heading="## Classification metrics"):
    """A Markdown section of the metrics with sampled and most attended patches.

    Args:
        results: ``{"sampled": metrics, "top_k": metrics or None}``: the
            metrics with sampled patches (a :func:`mean_metrics` of several
            passes, with ``passes``, or one pass) and with the most attended
            patches (``None``: not measured).
        class_names: the class names, in class order (those of the metrics).
        heading: the section's heading line.

    Returns:
        str: the heading, a table of accuracy, balanced accuracy and ROC AUC
        (one column per way of choosing patches), a table of each class's
        support, precision and recall, and the confusion matrices (rows:
        true classes, columns: predicted classes; with sampled patches the
        mean counts over the passes).

    Example:
        >>> from ats.training.classification import (
        ...     classification_metrics, metrics_markdown)
        >>> top_k = classification_metrics([0, 1], [[0.9, 0.1], [0.2, 0.8]],
        ...                                ["a", "b"])
        >>> text = metrics_markdown({"sampled": top_k, "top_k": top_k},
        ...                         ["a", "b"])
        >>> print(text.splitlines()[4])
        | accuracy | 100.0% | 100.0% |
    """
    names = _class_names(class_names)
    if not isinstance(results, dict) or "sampled" not in results:
        checks.fail("results", 'a dict {"sampled": ..., "top_k": ...}', results)
    sampled, top_k = results["sampled"], results.get("top_k")
    columns = [("sampled", sampled)] + ([("top_k", top_k)] if top_k else [])
    for key, metrics in columns:
        if not isinstance(metrics, dict) or list(metrics.get("per_class", {})) != (
            names
        ):
            checks.fail(
                f"results[{key!r}]",
                f"metrics of the classes {names}",
                metrics if not isinstance(metrics, dict) else metrics.get("per_class"),
            )
    passes = sampled.get("passes", 1)
    sampled_title = "sampled patches" + (
        f" (mean of {passes} passes)" if passes > 1 else ""
    )
    titles = [sampled_title] + (["most attended patches"] if top_k else [])
    rows = [
        ("accuracy", "accuracy", _percent),
        ("balanced accuracy", "balanced_accuracy", _percent),
        ("ROC AUC", "roc_auc", _auc_cell),
    ]
    lines = [
        heading,
        "",
        "| metric | " + " | ".join(titles) + " |",
        "|---" * (len(titles) + 1) + "|",
        *(
            f"| {label} | " + " | ".join(cell(m[key]) for _, m in columns) + " |"
            for label, key, cell in rows
        ),
        "",
    ]
    per_class = ["class", "support"]
    for title in ("sampled", "most attended")[: len(columns)]:
        per_class += [f"precision ({title})", f"recall ({title})"]
    lines += [
        "| " + " | ".join(per_class) + " |",
        "|---" * len(per_class) + "|",
    ]
    for name in names:
        cells = [_cell(name), _count(sampled["per_class"][name]["support"])]
        for _, metrics in columns:
            of_class = metrics["per_class"][name]
            cells += [_percent(of_class["precision"]), _percent(of_class["recall"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for title, (_, metrics) in zip(titles, columns):
        lines += [f"Confusion matrix, {title}:", ""]
        lines += _confusion_table(metrics["confusion_matrix"], names)
    if top_k is None:
        lines += ["The most attended patches were not measured.", ""]
    return "\n".join(lines)

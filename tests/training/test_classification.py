"""The classification metrics agree with scikit-learn's and go to JSON as they are."""

import json
import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as sk

from ats.training.classification import (
    classification_metrics,
    mean_metrics,
    metrics_markdown,
)


def names(k):
    return [f"class {i}" for i in range(k)]


def expected(labels, probabilities):
    """The metrics computed by scikit-learn."""
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    k = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    classes = list(range(k))
    present = np.unique(labels)
    if len(present) < 2:
        auc = None
    elif k == 2:
        auc = sk.roc_auc_score(labels, probabilities[:, 1])
    else:
        # One-vs-rest over the classes present (scikit-learn needs them all).
        auc = np.mean(
            [sk.roc_auc_score(labels == c, probabilities[:, c]) for c in present]
        )
    if k > 2 and len(present) == k and np.allclose(probabilities.sum(axis=1), 1):
        # The same as scikit-learn's own macro one-vs-rest.
        assert auc == pytest.approx(
            sk.roc_auc_score(labels, probabilities, multi_class="ovr", average="macro"),
            abs=1e-12,
        )
    return {
        "accuracy": sk.accuracy_score(labels, predicted),
        "balanced_accuracy": sk.balanced_accuracy_score(labels, predicted),
        "precision": sk.precision_score(
            labels, predicted, labels=classes, average=None, zero_division=0
        ),
        "recall": sk.recall_score(
            labels, predicted, labels=classes, average=None, zero_division=0
        ),
        "confusion_matrix": sk.confusion_matrix(labels, predicted, labels=classes),
        "roc_auc": auc,
    }


def assert_agrees(labels, probabilities):
    k = np.shape(probabilities)[1]
    ours = classification_metrics(labels, probabilities, names(k))
    with warnings.catch_warnings():
        # scikit-learn warns of the edge cases tested (absent classes).
        warnings.simplefilter("ignore", UserWarning)
        theirs = expected(labels, probabilities)
    assert ours["examples"] == len(labels)
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"], abs=1e-12)
    assert ours["balanced_accuracy"] == pytest.approx(
        theirs["balanced_accuracy"], abs=1e-12
    )
    assert list(ours["per_class"]) == names(k)
    for c, name in enumerate(names(k)):
        of_class = ours["per_class"][name]
        assert of_class["precision"] == pytest.approx(theirs["precision"][c])
        assert of_class["recall"] == pytest.approx(theirs["recall"][c])
        assert of_class["support"] == int(np.sum(np.asarray(labels) == c))
    assert ours["confusion_matrix"] == theirs["confusion_matrix"].tolist()
    if theirs["roc_auc"] is None:
        assert ours["roc_auc"] is None
    else:
        assert ours["roc_auc"] == pytest.approx(theirs["roc_auc"], abs=1e-12)
    assert_json(ours)
    return ours


def assert_json(metrics):
    text = json.dumps(metrics, allow_nan=False)  # no NaN, no numpy types
    assert json.loads(text) == metrics


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("seed", range(5))
def test_random_predictions(k, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    labels = rng.integers(0, k, n)
    # Informative but imperfect scores.
    probabilities = softmax(rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels])
    assert_agrees(labels, probabilities.astype("float32"))


@pytest.mark.parametrize("k", [2, 4])
def test_ties(k):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, k, 300)
    # Few distinct values: many ties within each class's scores.
    probabilities = rng.integers(0, 4, (300, k)) / 4
    metrics = assert_agrees(labels, probabilities)
    # All scores equal: chance, and argmax predicts the first class.
    metrics = assert_agrees(labels, np.full((300, k), 1 / k))
    assert metrics["roc_auc"] == 0.5
    assert metrics["per_class"]["class 0"]["recall"] == 1.0


def test_auc_ties_count_one_half():
    # Positive scores 0.5, 0.5; negative 0.5, 0.2: pairs (win, win, tie, tie).
    metrics = classification_metrics(
        [1, 1, 0, 0], [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.8, 0.2]], ["a", "b"]
    )
    assert metrics["roc_auc"] == 0.75


def test_a_class_never_predicted():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 60)
    probabilities = rng.random((60, 3))
    probabilities[:, 2] = 0  # class 2 is never predicted
    metrics = assert_agrees(labels, probabilities)
    assert metrics["per_class"]["class 2"]["precision"] == 0.0
    assert metrics["per_class"]["class 2"]["recall"] == 0.0
    assert [row[2] for row in metrics["confusion_matrix"]] == [0, 0, 0]


def test_a_class_absent():
    rng = np.random.default_rng(3)
    labels = rng.choice([0, 2, 3], 80)  # class 1 has no example
    probabilities = softmax(rng.normal(size=(80, 4)))
    metrics = assert_agrees(labels, probabilities)
    assert metrics["per_class"]["class 1"]["support"] == 0
    assert metrics["per_class"]["class 1"]["recall"] == 0.0
    # The balanced accuracy averages the classes present only.
    recalls = [metrics["per_class"][f"class {c}"]["recall"] for c in (0, 2, 3)]
    assert metrics["balanced_accuracy"] == pytest.approx(np.mean(recalls))
    # Binary, the positive class absent: no AUC.
    binary = assert_agrees([0, 0, 0], [[0.2, 0.8], [0.6, 0.4], [0.9, 0.1]])
    assert binary["roc_auc"] is None
    assert binary["per_class"]["class 1"]["precision"] == 0.0
    # Multi-class with a single class present: no AUC either.
    assert assert_agrees([2, 2], softmax(rng.normal(size=(2, 3))))["roc_auc"] is None


@pytest.mark.parametrize("k", [2, 3])
def test_perfect_and_inverted_predictions(k):
    labels = np.arange(30) % k
    perfect = np.eye(k)[labels] * 0.8 + 0.1
    metrics = assert_agrees(labels, perfect)
    assert metrics["accuracy"] == metrics["balanced_accuracy"] == 1.0
    assert metrics["roc_auc"] == 1.0
    assert metrics["confusion_matrix"] == np.diag(np.bincount(labels)).tolist()
    inverted = 1 - perfect
    metrics = assert_agrees(labels, inverted)
    assert metrics["roc_auc"] == 0.0
    assert metrics["accuracy"] == 0.0


def test_a_single_example():
    metrics = assert_agrees([1], [[0.3, 0.7]])
    assert metrics["accuracy"] == 1.0 and metrics["roc_auc"] is None


def test_labels_as_whole_floats():
    as_ints = classification_metrics([0, 1, 1], [[1, 0], [0, 1], [1, 0]], ["a", "b"])
    as_floats = classification_metrics(
        np.array([0.0, 1.0, 1.0], "float32"), [[1, 0], [0, 1], [1, 0]], ["a", "b"]
    )
    assert as_ints == as_floats


@pytest.mark.parametrize(
    ("labels", "probabilities", "class_names", "error", "match"),
    [
        ([0, 1], [[0.5, 0.5]], ["a", "b"], ValueError, "probabilities.*shape"),
        ([0, 2], [[0.5, 0.5]] * 2, ["a", "b"], ValueError, "labels.*in \\[0, 1\\]"),
        ([0, -1], [[0.5, 0.5]] * 2, ["a", "b"], ValueError, "labels"),
        ([0, 0.5], [[0.5, 0.5]] * 2, ["a", "b"], TypeError, "labels"),
        ([], np.zeros((0, 2)), ["a", "b"], ValueError, "labels.*non-empty"),
        ([[0, 1]], [[0.5, 0.5]] * 2, ["a", "b"], ValueError, "labels.*1-D"),
        ([0, 1], [[0.5, np.nan]] * 2, ["a", "b"], ValueError, "finite"),
        ([0, 1], [[0.5, 0.5]] * 2, ["a", "a"], ValueError, "distinct"),
        ([0, 1], [[0.5, 0.5]] * 2, ["a", 1], TypeError, "class_names"),
        ([0, 1], [[0.5, 0.5]] * 2, [], TypeError, "class_names"),
    ],
)
def test_bad_inputs(labels, probabilities, class_names, error, match):
    with pytest.raises(error, match=match):
        classification_metrics(labels, probabilities, class_names)


def test_mean_over_passes():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 50)
    passes = [
        classification_metrics(labels, rng.random((50, 3)), names(3)) for _ in range(4)
    ]
    mean = mean_metrics(passes)
    assert mean["passes"] == 4
    for key in ("accuracy", "balanced_accuracy", "roc_auc"):
        assert mean[key] == pytest.approx(np.mean([p[key] for p in passes]))
    for name in names(3):
        for key in ("precision", "recall"):
            assert mean["per_class"][name][key] == pytest.approx(
                np.mean([p["per_class"][name][key] for p in passes])
            )
        # The same labels in every pass: the support stays a count.
        assert (
            mean["per_class"][name]["support"]
            == passes[0]["per_class"][name]["support"]
        )
        assert isinstance(mean["per_class"][name]["support"], int)
    np.testing.assert_allclose(
        mean["confusion_matrix"],
        np.mean([p["confusion_matrix"] for p in passes], axis=0),
    )
    assert all(isinstance(v, float) for row in mean["confusion_matrix"] for v in row)
    # The rows still sum to the supports.
    np.testing.assert_allclose(
        np.sum(mean["confusion_matrix"], axis=1), np.bincount(labels, minlength=3)
    )
    assert mean["examples"] == 50
    assert_json(mean)
    # One pass: its own metrics.
    single = mean_metrics(passes[:1])
    assert single["accuracy"] == passes[0]["accuracy"]
    assert single["passes"] == 1


def test_mean_keeps_undefined_auc_undefined():
    passes = [
        classification_metrics([0, 0], rng_probabilities, ["a", "b"])
        for rng_probabilities in ([[0.9, 0.1], [0.4, 0.6]], [[0.2, 0.8], [0.6, 0.4]])
    ]
    mean = mean_metrics(passes)
    assert mean["roc_auc"] is None
    assert mean["accuracy"] == 0.5
    assert_json(mean)


def test_mean_checks_its_passes():
    a = classification_metrics([0, 1], [[1, 0], [0, 1]], ["a", "b"])
    b = classification_metrics([0, 1], [[1, 0], [0, 1]], ["a", "c"])
    with pytest.raises(ValueError, match="results_list"):
        mean_metrics([])
    with pytest.raises(ValueError, match="differ in their keys at per_class"):
        mean_metrics([a, b])


def test_markdown():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 40)
    class_names = ["benign", "malignant | grade 2", "normal"]
    sampled = mean_metrics(
        [classification_metrics(labels, rng.random((40, 3)), class_names)] * 3
    )
    top_k = classification_metrics(labels, np.eye(3)[labels], class_names)
    text = metrics_markdown({"sampled": sampled, "top_k": top_k}, class_names)
    lines = text.splitlines()
    assert lines[0] == "## Classification metrics"
    assert (
        "| metric | sampled patches (mean of 3 passes) | most attended patches |"
        in (lines)
    )
    assert f"| accuracy | {100 * sampled['accuracy']:.1f}% | 100.0% |" in lines
    assert "| ROC AUC | " in text and "| 1.000 |" in text
    assert text.count("Confusion matrix") == 2
    # A "|" in a class name does not break the tables.
    assert "malignant \\| grade 2" in text
    for line in lines:
        if line.startswith("|"):
            cells = line.replace("\\|", "").count("|")
            assert cells in (4, 5, 7), line
    # The most attended patches' confusion matrix, as counts.
    counts = np.bincount(labels, minlength=3)
    assert f"| benign | {counts[0]} | 0 | 0 |" in lines
    # Without top-k, with an undefined AUC.
    alone = classification_metrics([0, 0], [[0.9, 0.1], [0.2, 0.8]], ["a", "b"])
    text = metrics_markdown({"sampled": alone, "top_k": None}, ["a", "b"])
    assert "| ROC AUC | — |" in text
    assert "most attended patches |" not in text
    assert text.count("Confusion matrix") == 1
    with pytest.raises(ValueError, match="sampled"):
        metrics_markdown({"sampled": alone, "top_k": None}, ["a", "c"])
    with pytest.raises(ValueError, match="results"):
        metrics_markdown({"top_k": alone}, ["a", "b"])


def test_no_nan_anywhere():
    # Degenerate inputs that make naive formulas divide by zero.
    for labels, probabilities in (
        ([0, 0, 0], [[1, 0, 0]] * 3),
        ([1], [[0, 0, 1]]),
        ([2, 2], [[0.2, 0.3, 0.5]] * 2),
    ):
        metrics = classification_metrics(labels, probabilities, names(3))
        assert_json(metrics)
        for value in json.loads(json.dumps(metrics))["per_class"].values():
            assert all(math.isfinite(v) for v in value.values())

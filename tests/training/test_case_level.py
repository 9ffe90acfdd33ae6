"""ROC AUC with bootstrap intervals, per image and per case: the AUC is
scikit-learn's, the interval is seeded, covers the true AUC about as often as
it says, and degenerate data give None or a finite interval, never NaN."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ats.training.case_level import (
    CASE_AGGREGATION,
    auc_intervals,
    auc_markdown,
    bootstrap_roc_auc,
    case_probabilities,
)


def binary(scores):
    """``(N, 2)`` probabilities of class 1 scores in [0, 1]."""
    scores = np.asarray(scores, dtype=float)
    return np.stack([1 - scores, scores], axis=1)


def normal_scores(rng, n_negative, n_positive, shift):
    """Labels and probabilities whose true AUC is ``Phi(shift / sqrt(2))``."""
    labels = np.r_[np.zeros(n_negative, int), np.ones(n_positive, int)]
    scores = rng.normal(size=len(labels)) + shift * labels
    return labels, binary(1 / (1 + np.exp(-scores)))


def test_the_auc_is_scikit_learns(rng):
    labels = rng.integers(0, 2, 60)
    probabilities = binary(rng.random(60).round(1))  # with ties
    result = bootstrap_roc_auc(labels, probabilities, resamples=10)
    assert result["roc_auc"] == pytest.approx(
        roc_auc_score(labels, probabilities[:, 1]), abs=1e-12
    )
    labels = np.r_[0, 1, 2, rng.integers(0, 3, 57)]
    probabilities = rng.dirichlet([1, 1, 1], 60)
    result = bootstrap_roc_auc(labels, probabilities, resamples=10)
    expected = roc_auc_score(labels, probabilities, multi_class="ovr", average="macro")
    assert result["roc_auc"] == pytest.approx(expected, abs=1e-12)


def test_the_interval_is_seeded_and_contains_the_estimate(rng):
    labels, probabilities = normal_scores(rng, 50, 50, 1.0)
    first = bootstrap_roc_auc(labels, probabilities, resamples=300, seed=3)
    again = bootstrap_roc_auc(labels, probabilities, resamples=300, seed=3)
    other = bootstrap_roc_auc(labels, probabilities, resamples=300, seed=4)
    assert first == again
    assert first["interval"] != other["interval"]
    low, high = first["interval"]
    assert 0 <= low < first["roc_auc"] < high <= 1
    wider = bootstrap_roc_auc(
        labels, probabilities, resamples=300, seed=3, confidence=0.99
    )
    assert wider["interval"][0] <= low and wider["interval"][1] >= high


def test_perfectly_separated_scores_give_the_interval_1_1():
    labels = [0, 0, 0, 0, 1, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.35, 0.6, 0.7, 0.9]
    result = bootstrap_roc_auc(labels, binary(scores), resamples=200)
    assert result["roc_auc"] == 1.0 and result["interval"] == [1.0, 1.0]
    reversed_scores = bootstrap_roc_auc(labels, binary(scores)[:, ::-1])
    assert reversed_scores["interval"] == [0.0, 0.0]


def test_coverage_of_the_true_auc():
    """Over 400 data sets of 40 + 40 normal scores (true AUC Phi(1 / sqrt 2)
    = 0.760), the 95% interval holds the true AUC in about 95% of them: the
    binomial standard error of the fraction is 1.1 points, and [90%, 98.5%]
    lies more than 3 of them from 95% on either side, while an interval
    that ignores the sampling noise covers about 0% and one too wide 100%."""
    rng = np.random.default_rng(11)
    true_auc = 0.5 * (1 + math.erf(1.0 / math.sqrt(2) / math.sqrt(2)))
    covered = 0
    for trial in range(400):
        labels, probabilities = normal_scores(rng, 40, 40, 1.0)
        low, high = bootstrap_roc_auc(labels, probabilities, resamples=300, seed=trial)[
            "interval"
        ]
        covered += low <= true_auc <= high
    assert 0.90 <= covered / 400 <= 0.985, covered


def test_the_width_shrinks_as_one_over_root_n():
    """Four times the data, half the width (mean over 20 data sets each;
    the ratio's Monte Carlo error is a few percent)."""
    rng = np.random.default_rng(12)

    def mean_width(n):
        widths = []
        for trial in range(20):
            labels, probabilities = normal_scores(rng, n, n, 1.0)
            low, high = bootstrap_roc_auc(
                labels, probabilities, resamples=300, seed=trial
            )["interval"]
            widths.append(high - low)
        return np.mean(widths)

    ratio = mean_width(160) / mean_width(40)
    assert 0.4 <= ratio <= 0.6, ratio


def test_a_rare_class_never_gives_nan():
    """One positive among 30: a plain resample would miss it a third of the
    time (no AUC); resampled within each class, every resample has it."""
    labels = np.r_[np.zeros(30, int), 1]
    scores = np.r_[np.linspace(0, 1, 30), 0.8]
    result = bootstrap_roc_auc(labels, binary(scores), resamples=500)
    low, high = result["interval"]
    assert np.isfinite([low, high]).all() and low <= result["roc_auc"] <= high


def test_one_class_only_gives_none():
    result = bootstrap_roc_auc([1, 1, 1], binary([0.2, 0.5, 0.9]))
    assert result["roc_auc"] is None and result["interval"] is None
    both = auc_intervals([1, 1], binary([0.2, 0.9]), groups=["a", "b"])
    assert both["cases"]["roc_auc"] is None


def test_case_probabilities_are_the_mean_of_their_images():
    groups = ["p2", "p1", "p2", "p3", "p1"]
    labels = [1, 0, 1, 0, 0]
    probabilities = binary([0.9, 0.2, 0.5, 0.4, 0.0])
    cases, case_labels, case_probs = case_probabilities(groups, labels, probabilities)
    assert cases == ["p1", "p2", "p3"]
    assert case_labels.tolist() == [0, 1, 0]
    np.testing.assert_allclose(case_probs[:, 1], [0.1, 0.7, 0.4])
    assert "mean" in CASE_AGGREGATION


def test_case_level_auc_resamples_cases(rng):
    n_cases = 40
    case_labels = rng.integers(0, 2, n_cases)
    case_labels[:2] = [0, 1]
    per_case = rng.integers(1, 4, n_cases)
    groups = np.repeat([f"case{i}" for i in range(n_cases)], per_case)
    labels = np.repeat(case_labels, per_case)
    scores = 1 / (1 + np.exp(-(rng.normal(size=len(labels)) + labels)))
    result = auc_intervals(labels, binary(scores), groups=groups, resamples=200)
    means = [scores[groups == f"case{i}"].mean() for i in range(n_cases)]
    assert result["cases"]["units"] == n_cases
    assert result["images"]["units"] == len(labels)
    assert result["cases"]["roc_auc"] == pytest.approx(
        roc_auc_score(case_labels, means), abs=1e-12
    )
    assert result["images"]["roc_auc"] == pytest.approx(
        roc_auc_score(labels, scores), abs=1e-12
    )
    assert result["cases"]["aggregation"] == CASE_AGGREGATION
    # Fewer units, a wider interval.
    case_width = np.diff(result["cases"]["interval"])[0]
    image_width = np.diff(result["images"]["interval"])[0]
    assert case_width > image_width


def test_a_case_of_mixed_labels_is_named_not_fatal():
    labels, scores = [0, 1, 1, 0], binary([0.1, 0.8, 0.7, 0.3])
    result = auc_intervals(labels, scores, groups=["a", "a", "b", "c"])
    assert result["images"]["roc_auc"] == 1.0
    assert result["cases"]["roc_auc"] is None
    assert "['a']" in result["cases"]["problem"]
    with pytest.raises(ValueError, match=r"different labels in case\(s\) \['a'\]"):
        case_probabilities(["a", "a", "b", "c"], labels, scores)


def test_bad_arguments_are_named():
    labels, scores = [0, 1], binary([0.2, 0.8])
    with pytest.raises(ValueError, match="`resamples`"):
        bootstrap_roc_auc(labels, scores, resamples=0)
    with pytest.raises(ValueError, match="`confidence`"):
        bootstrap_roc_auc(labels, scores, confidence=1.0)
    with pytest.raises(ValueError, match="`groups`"):
        auc_intervals(labels, scores, groups=["a"])
    with pytest.raises(ValueError, match="`probabilities`"):
        bootstrap_roc_auc(labels, [0.2, 0.8])
    with pytest.raises(ValueError, match="`labels`"):
        bootstrap_roc_auc([0, 2], scores)


def test_markdown_table():
    result = auc_intervals(
        [0, 0, 1, 1], binary([0.1, 0.6, 0.4, 0.9]), groups=["a", "b", "c", "d"]
    )
    text = auc_markdown({"sampled": result, "most attended": result}, ["no", "yes"])
    lines = text.splitlines()
    assert "`yes` the positive class" in text and "1000 resamples" in text
    assert lines[4] == "| unit | sampled | most attended |"
    assert lines[6].startswith("| per image (4) | 0.750 [")
    assert lines[7].startswith("| per case (4) | 0.750 [")
    no_cases = auc_intervals([0, 1], binary([0.1, 0.9]))
    assert "| per case" not in auc_markdown({"x": no_cases}, ["no", "yes"])

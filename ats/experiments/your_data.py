"""Attention sampling on your own images: a CSV of files and labels.

This is the library behind ``ats fit``, ``ats evaluate`` and ``ats predict``
(see ``docs/your_data.md``). The data set is a CSV manifest
(:mod:`ats.data.manifest`: a ``path`` and a ``label`` column, optional
``split``, ``group`` and ``mask``) of images of any format, size and aspect
ratio (:mod:`ats.data.files`); each image keeps its own low-resolution view
and its own scale, batches are formed within buckets of similar shapes
(:class:`ats.lazy.BucketedSequence`) and only the sampled patches are read
at full resolution. The model is :func:`ats.models.classifier.build_classifier`
with the feature network chosen by name (a small CNN or a
``keras.applications`` backbone).

Example::

    from ats.experiments import your_data

    your_data.train("images/manifest.csv", "runs/mine", epochs=5)
    your_data.evaluate_run("runs/mine")       # evaluation.json and .md
    your_data.predict("runs/mine", "new/manifest.csv", "predictions/")
"""

import contextlib
import csv
import dataclasses
import io
import os
from pathlib import Path

import numpy as np

from .. import checks, training
from ..data.files import open_image
from ..data.manifest import MASKS, check_manifest, read_manifest
from ..data.masks import otsu_mask, tissue_mask
from ..lazy import BucketedSequence, choose_buckets
from ..models import backbones, classifier
from ..training.case_level import auc_intervals, auc_markdown
from ..training.classification import (
    classification_metrics,
    mean_metrics,
    metrics_markdown,
)
from ..training.heatmaps import save_gallery, save_heatmap
from ..training.hyperparameters import hyperparameter
from ..training.qupath import attention_grid_features, patch_features, write_geojson
from ..training.run import RunDirectory, atomic_write, write_json
from ..training.slide_heatmap import attention_raster, write_heatmap_tiff
from ..training.trainer import progress_bars
from ..training.training_run import REQUIRED_KEYS, saved_config
from .megapixel_mnist import compile_classifier

__all__ = [
    "TrainConfig",
    "PRESETS",
    "DEFAULT_PRESET",
    "EXPERIMENT",
    "ManifestData",
    "train",
    "evaluate_run",
    "draw_pictures",
    "predict",
    "write_evaluation",
    "evaluate_classifier",
    "predict_items",
]


@dataclasses.dataclass(frozen=True)
class TrainConfig(training.TrainConfig):
    """The hyper-parameters of a run on your data (``config.json``).

    Those of :class:`ats.training.TrainConfig`, and:

    Attributes:
        feature: the feature network (:data:`ats.models.backbones.
            FEATURE_NETWORKS`, or ``"hub:<preset>"``: a ``keras_hub``
            backbone, extra ``hub``).
        feature_weights: ``imagenet`` (downloaded, online), ``none``
            (random) or a weights file of the feature network.
        freeze_feature: keep the feature network's weights fixed.
        mixed_precision: ``none``, ``bfloat16`` or ``float16``: the feature
            network computes in that 16-bit type (its features, the
            attention and the estimator stay float32); with ``float16``
            the loss is scaled dynamically so that small gradients do not
            underflow.
        low_scale: the side of the low-resolution view relative to the full
            resolution, or to ``patch_mpp`` when given (each image keeps
            its aspect ratio; ignored with ``low_mpp``).
        receptive_field: the attention network's receptive field (0: 'same'
            convolutions; an odd number >= 3: 'valid' ones).
        attention_filters: channels of the attention network.
        attention_prior: the weight of the attention's content prior
            (``ats.utils.layers.LocalContrast`` added to its logits), so
            that the first samples land on structures (0: none).
        mask: where attention may look (:data:`ats.data.manifest.MASKS`):
            everywhere, on an Otsu foreground of the low view, on the
            tissue of an H&E slide, or in the manifest's ``mask`` files
            (PNG, ``.npy`` or GeoJSON; a row's own file also takes
            precedence over ``otsu`` and ``tissue``).
        patch_mpp: the microns per pixel patches are read at (None: the
            full resolution); ``patch_size`` is then in pixels of that size,
            the same physical size on every slide.
        low_mpp: the microns per pixel of the low view (None:
            ``low_scale`` of the patches' resolution).
        val_fraction, test_fraction: the split of a manifest without a
            ``split`` column (stratified, groups kept together).
        skip_bad: train on the good rows of a manifest with bad ones
            (listed) instead of refusing it.
        bucket_growth: the ratio of consecutive bucket sides: images are
            padded by less than this factor per side, in return for fewer
            step shapes.
        max_shapes: the most bucket shapes (``ats.lazy.choose_buckets``
            merges ladder buckets down to it): each is a compiled step.
    """

    epochs: int = hyperparameter(10, "total epochs", minimum=1)
    batch_size: int = hyperparameter(8, "images per step", minimum=1)
    patch_size: tuple = hyperparameter((64, 64), "patch size HEIGHTxWIDTH")
    feature: str = hyperparameter(
        "small",
        "the feature network: "
        + ", ".join(backbones.FEATURE_NETWORKS)
        + f" or {backbones.HUB_PREFIX}<keras_hub preset>",
        kind="text",
    )
    feature_weights: str = hyperparameter(
        "none", "the feature network's weights: imagenet, none or a weights file"
    )
    freeze_feature: bool = hyperparameter(
        False, "keep the feature network's weights fixed"
    )
    mixed_precision: str = hyperparameter(
        "none",
        "the feature network in mixed precision (16-bit compute)",
        choices=("none", "bfloat16", "float16"),
    )
    low_scale: float = hyperparameter(
        0.125,
        "side of the low-resolution view relative to the image (at most 1)",
        minimum=0,
        exclusive_minimum=True,
    )
    receptive_field: int = hyperparameter(
        0, "the attention network's receptive field (0: 'same' padding)", minimum=0
    )
    attention_filters: int = hyperparameter(
        8, "channels of the attention network", minimum=1
    )
    attention_prior: float = hyperparameter(
        12.0,
        "weight of the attention's content prior (local contrast; 0: none)",
        minimum=0,
    )
    mask: str = hyperparameter("none", "where attention may look", choices=MASKS)
    patch_mpp: float = hyperparameter(
        None,
        "microns per pixel of the patches, from the slides' metadata "
        "(default: full resolution)",
        kind="real",
        minimum=0,
        exclusive_minimum=True,
        optional=True,
    )
    low_mpp: float = hyperparameter(
        None,
        "microns per pixel of the low view (default: --low-scale)",
        kind="real",
        minimum=0,
        exclusive_minimum=True,
        optional=True,
    )
    val_fraction: float = hyperparameter(
        0.1, "validation fraction of a manifest without a split column", minimum=0
    )
    test_fraction: float = hyperparameter(
        0.2, "test fraction of a manifest without a split column", minimum=0
    )
    skip_bad: bool = hyperparameter(
        False, "train on the good rows of a manifest with bad ones, listing them"
    )
    bucket_growth: float = hyperparameter(
        1.12,
        "ratio of consecutive bucket sides (images are padded by less)",
        minimum=1,
        exclusive_minimum=True,
    )
    max_shapes: int = hyperparameter(
        8, "the most step shapes (buckets of low-view shapes) compiled", minimum=1
    )


PRESETS = {
    "default": {
        "description": "a small CNN on patches of 64x64 at full resolution, "
        "low view at 1/8",
        "train": {},
    },
    "speed-limits": {
        "description": "the paper's speed-limit signs set-up: low view at 0.3, "
        "5 patches of 100x100, attention receptive field 9",
        "train": {
            "low_scale": 0.3,
            "n_patches": 5,
            "patch_size": (100, 100),
            "receptive_field": 9,
            "batch_size": 8,
        },
    },
    "colon-cancer": {
        "description": "the paper's colon cancer set-up: low view at 0.2, "
        "10 patches of 27x27",
        "train": {
            "low_scale": 0.2,
            "n_patches": 10,
            "patch_size": (27, 27),
            "batch_size": 8,
        },
    },
}
"""Sets of hyper-parameters (``--preset``) that the flags override."""

DEFAULT_PRESET = "default"

DATA_HELP = "the CSV manifest (path, label[, split, group, mask])"
"""What ``--data`` is, for ``ats fit --help``."""


class ManifestData:
    """A manifest and the images of its good rows, opened for one config.

    The manifest is read (and split) and every row checked on the first
    :meth:`prepare`, with the config's split fractions, patch size, low
    scale and mask; the sources stay open (referenced) while the data is.

    Args:
        path: the CSV manifest.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such manifest (CSV file)")
        self.directory = self.path.parent
        self._prepared = {}
        self.prepared = None
        """The split of the last :meth:`prepare` (None before)."""

    def cache_dir(self):
        """Where low views computed from files without a pyramid are kept."""
        return self.directory / ".ats-cache"

    def prepare(self, config):
        """The checked manifest for ``config`` (``check_manifest``'s result),
        read and checked once per set of relevant fields."""
        key = (
            config.val_fraction,
            config.test_fraction,
            config.seed,
            tuple(config.patch_size),
            config.low_scale,
            config.mask,
            config.patch_mpp,
            config.low_mpp,
            config.skip_bad,
            config.n_patches,
            config.replace,
            config.bucket_growth,
            config.max_shapes,
        )
        if key not in self._prepared:
            manifest = read_manifest(
                self.path, config.val_fraction, config.test_fraction, config.seed
            )
            checked = check_manifest(
                manifest,
                config.patch_size,
                config.low_scale,
                mask=config.mask,
                skip_bad=config.skip_bad,
                cache_dir=self.cache_dir(),
                min_positions=1 if config.replace else config.n_patches,
                patch_mpp=config.patch_mpp,
                low_mpp=config.low_mpp,
            )
            buckets = choose_buckets(
                checked.low_shapes, config.max_shapes, config.bucket_growth
            )
            self._prepared[key] = _Split(manifest, checked, buckets)
        self.prepared = self._prepared[key]
        return self.prepared


class _Split:
    """The good rows of a checked manifest by split, with their sources."""

    def __init__(self, manifest, checked, buckets):
        self.manifest = manifest
        self.checked = checked
        self.buckets = buckets
        self.classes = list(manifest.classes)
        self._opened = {}

    def rows(self, split):
        return [row for row in self.checked.rows if row.split == split]

    def opened(self, split):
        """``(rows, sources, supports, labels)`` of ``split``, opened once."""
        if split not in self._opened:
            rows = self.rows(split)
            sources = [self.checked.source(row) for row in rows]
            supports = [self.checked.support(row) for row in rows]
            labels = np.asarray([self.checked.label(row) for row in rows], "int32")
            self._opened[split] = (rows, sources, supports, labels)
        return self._opened[split]


def _feature_weights(config):
    weights = config.feature_weights
    return None if weights == "none" else weights


def _build(config, channels, n_classes, setup=None):
    precision = config.mixed_precision
    policy = None if precision == "none" else f"mixed_{precision}"
    with backbones.precision_scope(policy):
        model = _build_classifier(config, channels, n_classes)
    if setup is not None:
        model = setup.wrap(model)
    return compile_classifier(model, config, loss_scale=precision == "float16")


def _build_classifier(config, channels, n_classes):
    return classifier.build_classifier(
        channels,
        n_classes,
        feature=config.feature,
        patch_size=config.patch_size,
        n_patches=config.n_patches,
        attention_filters=config.attention_filters,
        receptive_field=config.receptive_field,
        regularizer_strength=config.regularizer_strength,
        feature_weights=_feature_weights(config),
        freeze_feature=config.freeze_feature,
        seed=config.seed,
        replace=config.replace,
        prior_strength=config.attention_prior,
    )


def _sequence(
    sources, labels, supports, config, buckets, shuffle, rows=slice(None), batch=None
):
    return BucketedSequence(
        sources[rows],
        None if labels is None else labels[rows],
        supports=supports[rows],
        batch_size=batch or config.batch_size,
        patch_size=config.patch_size,
        shuffle=shuffle,
        seed=config.seed,
        growth=config.bucket_growth,
        buckets=buckets,
        workers=config.batch_workers,
    )


def predict_items(model, sequence, deterministic=False, verbose=0):
    """The model's probabilities for every item of a ``BucketedSequence``,
    in the sequence's item order (fillers dropped).

    Args:
        model: a model of :func:`ats.models.classifier.build_classifier`.
        sequence: an unshuffled ``BucketedSequence``.
        deterministic: take the most attended patches instead of sampling.
        verbose: 0 or 1.

    Returns:
        ``(N, K)`` float32 probabilities, ``N`` the sequence's items.
    """
    context = (
        training.deterministic_sampling(model)
        if deterministic
        else contextlib.nullcontext()
    )
    with context:
        outputs = model.predict(sequence, verbose=progress_bars(verbose))
    items = np.concatenate([sequence.batch_items(i) for i in range(len(sequence))])
    probabilities = np.zeros((sequence.n_items, outputs.shape[-1]), "float32")
    real = items >= 0
    probabilities[items[real]] = outputs[real]
    return probabilities


def evaluate_classifier(
    model, sequence, labels, classes, draws=5, verbose=0, groups=None
):
    """Classification metrics with sampled and with most attended patches.

    Args:
        model: a compiled classifier.
        sequence: an unshuffled ``BucketedSequence`` of the test images.
        labels: ``(N,)`` their class indices.
        classes: the class names.
        draws: passes with sampled patches (their metrics are averaged).
        verbose: 0 or 1.
        groups: ``(N,)`` the images' cases (the manifest's ``group``), or
            None.

    Returns:
        ``{"sampled": metrics (mean over ``draws`` passes), "top_k":
        metrics}`` of :func:`ats.training.classification.
        classification_metrics`, and ``roc_auc_intervals``: ``{"sampled":
        ..., "top_k": ...}`` of :func:`ats.training.case_level.
        auc_intervals` (per image and per case; with sampled patches, of
        the mean probabilities over the passes).
    """
    draws = checks.integer("draws", draws, minimum=1, where="evaluate_classifier")
    probabilities = [
        predict_items(model, sequence, verbose=verbose) for _ in range(draws)
    ]
    passes = [classification_metrics(labels, p, classes) for p in probabilities]
    top_k = predict_items(model, sequence, deterministic=True, verbose=verbose)
    sampled = mean_metrics(passes)
    sampled["passes"] = draws
    return {
        "sampled": sampled,
        "top_k": classification_metrics(labels, top_k, classes),
        "roc_auc_intervals": {
            "sampled": auc_intervals(labels, np.mean(probabilities, axis=0), groups),
            "top_k": auc_intervals(labels, top_k, groups),
        },
    }


def _evaluation_markdown(results, classes):
    """``evaluation.md``: the metrics and the ROC AUC intervals."""
    intervals = results["roc_auc_intervals"]
    columns = {
        "sampled patches": intervals["sampled"],
        "most attended patches": intervals["top_k"],
    }
    return metrics_markdown(results, classes) + "\n" + auc_markdown(columns, classes)


class Experiment(training.Experiment):
    """Your data's pieces of a training run."""

    name = "your_data"
    title = "your data"
    command = "ats fit"
    config_class = TrainConfig
    default_preset = DEFAULT_PRESET

    def config(self, preset=None, **overrides):
        preset = checks.choice("preset", preset or DEFAULT_PRESET, PRESETS)
        return TrainConfig(**PRESETS[preset]["train"]).with_overrides(overrides)

    def load_data(self, data_dir):
        return ManifestData(data_dir)

    def check(self, config, data):
        if config.low_scale > 1:
            checks.fail("low_scale", "in (0, 1]", config.low_scale, "ats fit")
        backbones.feature_network_name(config.feature, "feature", "ats fit")
        split = data.prepare(config)
        for problem in split.checked.skipped:
            print(f"skipped: {problem}", flush=True)
        if not split.rows("train"):
            raise ValueError(f"{data.path}: the manifest has no training images")

    def describe_data(self, data):
        split = data.prepared
        counts = {name: len(split.rows(name)) for name in ("train", "val", "test")}
        fields = {
            "manifest": str(data.path.resolve()),
            "classes": split.classes,
            "images": counts,
            "skipped": [str(p) for p in split.checked.skipped],
            "buckets": [list(b) for b in split.buckets],
        }
        summary = (
            f"{data.path}: {counts['train']} training, {counts['val']} "
            f"validation and {counts['test']} test images of "
            f"{len(split.classes)} classes ({', '.join(split.classes)})"
        )
        return fields, summary

    def validation_split(self, data):
        return "val" if data.prepared.rows("val") else "test"

    def build_model(self, config, data, setup=None):
        split = data.prepare(config)
        sources = split.opened("train")[1]
        return _build(config, sources[0].shape[-1], len(split.classes), setup)

    def sequence(self, data, split, config, setup=None):
        """The batches of ``split`` this process feeds (its block of the
        images under a distribution ``setup``)."""
        _, sources, supports, labels = data.prepare(config).opened(split)
        if not sources:
            return None
        training_split = split == "train"
        rows, batch = slice(None), None
        if setup is not None:
            rows = setup.shard_slice(len(sources), training_split)
            batch = setup.local_batch_size(config.batch_size)
        sequence = _sequence(
            np.asarray(sources, dtype=object),
            labels,
            np.asarray(supports, dtype=object),
            config,
            data.prepare(config).buckets,
            training_split,
            rows,
            batch,
        )
        if training_split and (setup is None or setup.process_index == 0):
            print(f"training: {sequence.describe()}", flush=True)
        return sequence

    def train_images(self, config, data):
        return len(data.prepare(config).rows("train"))

    def model_name(self, config):
        return f"ats ({config.feature})"

    def pictures(self, run, model, data, config):
        split = data.prepare(config)
        rows, sources, supports, labels = split.opened("test")
        indices = [i for i in config.picture_images if i < len(sources)]
        if not indices:
            return None
        return HeatmapPictures(
            run,
            model,
            [sources[i] for i in indices],
            [supports[i] for i in indices],
            [split.classes[labels[i]] for i in indices],
            config,
            split.buckets,
        )

    def final_evaluation(self, run, model, data, config, verbose):
        """The classification metrics of :func:`write_evaluation`."""
        write_evaluation(run, model, data.prepare(config), config, verbose)


class HeatmapPictures:
    """The attention over a few test images after every epoch.

    ``pictures/epoch_NNN_image_I.png`` after every epoch and
    ``final_image_I.png`` (heatmap) with ``final_image_I_patches.png``
    (the most attended patches at full resolution) at the end.
    """

    def __init__(self, run, model, sources, supports, labels, config, buckets):
        self.run, self.model, self.config = run, model, config
        self.sources, self.supports, self.labels = sources, supports, labels
        self.buckets = buckets

    def draw(self, prefix, gallery):
        paths = []
        for i, (source, support, label) in enumerate(
            zip(self.sources, self.supports, self.labels)
        ):
            seen = look(self.model, source, support, self.config, self.buckets)
            title = f"{Path(source.name).name} ({label})"
            path = self.run.picture_path(f"{prefix}_image_{i}.png")
            paths.append(draw_heatmap(path, source, support, seen, title))
            if gallery:
                path = self.run.picture_path(f"{prefix}_image_{i}_patches.png")
                paths.append(
                    save_gallery(
                        path, seen["patches"], seen["sampled_attention"], title
                    )
                )
        return paths

    def epoch(self, epoch):
        return self.draw(f"epoch_{epoch:03d}", gallery=False)

    def final(self, epochs):
        return self.draw("final", gallery=True)


def look(model, source, support, config, buckets=None, deterministic=True):
    """What the model looks at in one image: :func:`ats.models.classifier.
    inspect` on a batch of that image alone, padded to its bucket.

    Args:
        model: a model of :func:`ats.models.classifier.build_classifier`.
        source: the image's ``PatchSource``.
        support: its support mask (low-view shape).
        config: the run's ``TrainConfig``.
        buckets: the run's bucket shapes (``choose_buckets``).
        deterministic: the most attended patches (else sampled ones).

    Returns:
        The dict of ``inspect`` for that image (no batch axis), its
        ``attention`` cropped to the cells over the image, and ``extent``:
        the ``[y0, x0, y1, x1]`` low-view pixels those cells cover, and
        ``cell``: the ``[y, x]`` side of a cell in low-view pixels (cell
        ``(i, j)`` starts at ``extent[:2] + (i, j) * cell``).
    """
    batch = BucketedSequence(
        [source],
        supports=[support],
        batch_size=1,
        patch_size=config.patch_size,
        growth=config.bucket_growth,
        buckets=buckets,
    )
    (x_low, x_high_ref, x_support), *_ = batch[0]
    seen = classifier.inspect(
        model, x_low, x_high_ref, x_support, deterministic, config.seed
    )
    seen = {key: value[0] for key, value in seen.items()}
    half = config.receptive_field / 2
    padded = np.asarray(x_low.shape[1:3], "float64")
    cells = np.asarray(seen["attention"].shape, "float64")
    own = np.asarray(source.low_shape[:-1], "float64")
    cell = (padded - config.receptive_field) / cells
    # Cells whose centre lies on the image (not on its padding).
    n = np.clip(np.ceil((own - half) / cell - 0.5), 1, cells).astype(int)
    seen["attention"] = seen["attention"][: n[0], : n[1]]
    end = np.minimum(half + n * cell, own)
    seen["extent"] = [half, half, float(end[0]), float(end[1])]
    seen["cell"] = cell.tolist()
    return seen


def draw_heatmap(path, source, support, seen, title):
    """The heatmap PNG of one image: its attention over the low view, with
    the patches of ``seen`` outlined (mapped to low-view pixels)."""
    thumbnail = np.asarray(source.low(), "float32")
    scale = np.asarray(source.low_shape[:-1]) / np.asarray(source.spatial_shape)
    corners = np.asarray(seen["corners"], "float64")
    size = np.asarray(seen["patches"].shape[1:3])
    boxes = np.concatenate([corners * scale, (corners + size) * scale], axis=-1)
    return save_heatmap(
        path,
        thumbnail,
        seen["attention"],
        boxes,
        title=title,
        mask=support,
        extent=seen["extent"],
    )


EXPERIMENT = Experiment()
"""The experiment, as :mod:`ats.training`'s functions take it."""

train = EXPERIMENT.train
"""``train(manifest, run_dir, preset=None, resume=False, verbose=1,
setup=None, **overrides)``: train on a manifest into a run directory
(:func:`ats.training.train`), with ``evaluation.json`` and
``evaluation.md`` (:func:`write_evaluation`) at the end."""

draw_pictures = EXPERIMENT.draw_pictures
"""Draw a run's pictures again (:func:`ats.training.draw_pictures`)."""

evaluate_run = EXPERIMENT.evaluate_run
"""Evaluate a run's checkpoint again (:func:`ats.training.evaluate_run`),
with the classification metrics of :func:`write_evaluation`."""


def _load(run_dir, data_dir=None):
    """A saved run's config, data, classes and model from its checkpoint."""
    run = RunDirectory(run_dir)
    saved = run.read_config(REQUIRED_KEYS)
    config = saved_config(EXPERIMENT, run, saved)
    if not run.has_checkpoint():
        raise FileNotFoundError(
            f"run {str(run.path)!r} has no checkpoint yet: train it first "
            "(or resume it) with `ats fit`"
        )
    classes = saved["data"]["classes"]
    return run, saved, config, classes


def write_evaluation(run, model, split, config, verbose=1, draws=5):
    """Classification metrics of a trained model on a run's test split.

    Writes ``evaluation.json`` and ``evaluation.md`` in the run directory
    (under its lock): the metrics of :func:`evaluate_classifier`, with the
    ROC AUC and its bootstrap interval per image and per case (the
    manifest's ``group``); ``ats fit`` and ``ats evaluate`` call it through
    ``Experiment.final_evaluation``.

    Args:
        run: the ``RunDirectory``.
        model: the trained classifier.
        split: the run's checked manifest (``ManifestData.prepare``).
        config: the run's ``TrainConfig``.
        verbose: 0 or 1.
        draws: passes with sampled patches.

    Returns:
        The metrics of :func:`evaluate_classifier` (None without test
        images).
    """
    rows, sources, supports, labels = split.opened("test")
    if not sources:
        return None
    sequence = _sequence(
        np.asarray(sources, dtype=object),
        labels,
        np.asarray(supports, dtype=object),
        config,
        split.buckets,
        shuffle=False,
    )
    classes = split.classes
    groups = [row.group for row in rows]
    results = evaluate_classifier(
        model, sequence, labels, classes, draws, verbose, groups
    )
    with run.lock():
        write_json(run.path / "evaluation.json", results)
        text = _evaluation_markdown(results, classes)
        atomic_write(run.path / "evaluation.md", lambda f: f.write(text.encode()))
    if verbose:
        sampled, top_k = results["sampled"], results["top_k"]
        print(
            f"test accuracy {sampled['accuracy']:.2%} (sampled, mean of "
            f"{draws}), {top_k['accuracy']:.2%} (most attended); "
            f"{run.path / 'evaluation.md'}",
            flush=True,
        )
    return results


def _inputs(data):
    """``[(line, path), ...]`` of the files to predict: a manifest's
    ``path`` column, a folder's files, or one file."""
    data = Path(data)
    if data.suffix.lower() == ".csv":
        with open(data, newline="") as f:
            reader = csv.DictReader(f)
            if "path" not in (reader.fieldnames or ()):
                raise ValueError(f"{data}: a manifest needs a `path` column")
            return [
                (line, data.parent / row["path"])
                for line, row in enumerate(reader, start=2)
            ]
    if data.is_dir():
        return [
            (None, path)
            for path in sorted(data.iterdir())
            if path.is_file() and not path.name.startswith(".")
        ]
    if data.is_file():
        return [(None, data)]
    raise FileNotFoundError(f"{data}: no such manifest, folder or image")


def predict(run_dir, data, out, draws=5, verbose=1):
    """Predict the class of every image of ``data`` with a trained run.

    Writes into ``out``: ``predictions.csv`` (per file: the predicted class
    and every class's probability, sampled (mean of ``draws`` passes) and
    with the most attended patches), ``heatmaps/<n>_<name>.png`` (the
    attention over the image with the most attended patches outlined),
    ``heatmaps/<n>_<name>_patches.png`` (those patches at full resolution),
    and for QuPath and other viewers ``overlays/<n>_<name>.geojson`` (the
    most attended patches and the attention map's cells in level-0 pixels,
    :mod:`ats.training.qupath`) and ``overlays/<n>_<name>_attention.tif``
    (the attention on the low view's pixel grid, tagged with its
    downsample, :mod:`ats.training.slide_heatmap`). With a manifest whose
    ``label`` column holds the run's classes, also ``evaluation.json`` and
    ``evaluation.md`` (metrics of the mean sampled probabilities and of
    the most attended patches, ROC AUC intervals per image and per case,
    the ``group`` column's). Files that cannot be read are listed in
    ``unreadable.csv`` and printed, not fatal.

    Args:
        run_dir: a run directory of ``ats fit``.
        data: a CSV manifest (its ``path`` column; ``label`` and ``group``
            optional), a folder of images or one image.
        out: the output folder (created).
        draws: passes with sampled patches.
        verbose: 0 or 1.

    Returns:
        The path of ``predictions.csv``.
    """
    run, saved, config, classes = _load(run_dir)
    out = Path(out)
    for folder in ("heatmaps", "overlays"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    cache = Path(saved["data_dir"]).parent / ".ats-cache"
    opened, unreadable = [], []
    for line, path in _inputs(data):
        try:
            source = _open(path, config, cache)
            source.check_patch_size(config.patch_size)
            support = _support(source, config)
        except Exception as error:  # listed, not fatal
            where = f"line {line}, " if line else ""
            unreadable.append((str(path), f"{where}{type(error).__name__}: {error}"))
            continue
        opened.append((path, source, support, line))
    _write_unreadable(out / "unreadable.csv", unreadable, verbose)
    header = ["path", "predicted", "predicted_top_k"]
    header += [f"p_{name}" for name in classes]
    header += [f"p_top_k_{name}" for name in classes]
    rows = []
    if opened:
        channels = {source.shape[-1] for _, source, _, _ in opened}
        model = _build(config, channels.pop(), len(classes))
        training.load_checkpoint(run.checkpoint_path, model)
        sources = np.asarray([s for _, s, _, _ in opened], dtype=object)
        supports = np.asarray([m for _, _, m, _ in opened], dtype=object)
        buckets = [tuple(b) for b in saved["data"]["buckets"]]
        sequence = _sequence(sources, None, supports, config, buckets, shuffle=False)
        sampled = np.mean(
            [predict_items(model, sequence, verbose=verbose) for _ in range(draws)],
            axis=0,
        )
        top_k = predict_items(model, sequence, deterministic=True, verbose=verbose)
        for n, ((path, source, support, _), p, q) in enumerate(
            zip(opened, sampled, top_k)
        ):
            rows.append(
                [str(path), classes[int(np.argmax(p))], classes[int(np.argmax(q))]]
                + [f"{v:.6f}" for v in p]
                + [f"{v:.6f}" for v in q]
            )
            seen = look(model, source, support, config, buckets)
            name = f"{n:04d}_{Path(path).stem}"
            title = f"{Path(path).name}: {classes[int(np.argmax(q))]}"
            draw_heatmap(out / "heatmaps" / f"{name}.png", source, support, seen, title)
            save_gallery(
                out / "heatmaps" / f"{name}_patches.png",
                seen["patches"],
                seen["sampled_attention"],
                title,
            )
            _write_overlays(out / "overlays", name, source, seen, config.patch_size)
        lines = [line for _, _, _, line in opened]
        _write_labelled_evaluation(out, data, lines, sampled, top_k, classes)
    path = out / "predictions.csv"
    _write_csv(path, header, rows)
    if verbose:
        print(f"{len(rows)} predictions: {path}", flush=True)
    return path


def _write_overlays(folder, name, source, seen, patch_size):
    """``<name>.geojson`` (QuPath objects) and ``<name>_attention.tif`` of
    one image's ``look``, in the level-0 pixels of its file."""
    downsample = np.asarray(source.downsample)  # level 0 per patch pixel
    low_shape = source.low_shape[:-1]
    low_to_level0 = downsample * np.asarray(source.spatial_shape) / low_shape
    origin = seen["extent"][:2]
    features = patch_features(
        seen["corners"], patch_size, seen["sampled_attention"], downsample
    )
    features += attention_grid_features(
        seen["attention"], origin, seen["cell"], low_to_level0, bounds=low_shape
    )
    write_geojson(folder / f"{name}.geojson", features)
    raster = attention_raster(seen["attention"], origin, seen["cell"], low_shape)
    mpp = None if source.mpp is None else np.asarray(source.mpp) / downsample
    write_heatmap_tiff(folder / f"{name}_attention.tif", raster, low_to_level0, mpp)


def _manifest_labels(data):
    """``{line: (label, group)}`` of a CSV manifest with a ``label`` column
    (the group is the path when the row has none); ``{}`` otherwise."""
    data = Path(data)
    if data.suffix.lower() != ".csv":
        return {}
    with open(data, newline="") as f:
        reader = csv.DictReader(f)
        if "label" not in (reader.fieldnames or ()):
            return {}
        return {
            line: (row["label"], row.get("group") or row["path"])
            for line, row in enumerate(reader, start=2)
        }


def _write_labelled_evaluation(out, data, lines, sampled, top_k, classes):
    """``evaluation.json`` and ``.md`` in ``out`` for the predicted files
    whose manifest label is one of ``classes`` (none: those of an earlier
    prediction into ``out`` are removed); ``unlabelled`` counts the
    predicted files left out."""
    known = _manifest_labels(data)
    kept = [
        (i, classes.index(known[line][0]), known[line][1])
        for i, line in enumerate(lines)
        if line in known and known[line][0] in classes
    ]
    if not kept:
        for name in ("evaluation.json", "evaluation.md"):
            (out / name).unlink(missing_ok=True)
        return
    index, labels, groups = (list(column) for column in zip(*kept))
    labels = np.asarray(labels)
    results = {
        "sampled": classification_metrics(labels, sampled[index], classes),
        "top_k": classification_metrics(labels, top_k[index], classes),
        "roc_auc_intervals": {
            "sampled": auc_intervals(labels, sampled[index], groups),
            "top_k": auc_intervals(labels, top_k[index], groups),
        },
        "unlabelled": len(lines) - len(kept),
    }
    write_json(out / "evaluation.json", results)
    text = _evaluation_markdown(results, classes)
    atomic_write(out / "evaluation.md", lambda f: f.write(text.encode()))


def _open(path, config, cache):
    """An image given to ``predict``, opened as the run's images were (its
    low scale, or the microns per pixel of its patches and low view)."""
    return open_image(path, config.low_scale, cache, config.patch_mpp, config.low_mpp)


def _support(source, config):
    """The support of an image given to ``predict``: the Otsu foreground
    or the tissue when the run used it, else the whole image (mask files
    are not known for new images)."""
    if config.mask == "otsu":
        return otsu_mask(source.low())
    if config.mask == "tissue":
        return tissue_mask(source.low())
    return np.ones(source.low_shape[:-1], bool)


def _write_csv(path, header, rows):
    def write(f):
        text = _csv_text(header, rows)
        f.write(text.encode())

    atomic_write(path, write)


def _csv_text(header, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _write_unreadable(path, unreadable, verbose):
    if not unreadable:
        if os.path.exists(path):
            os.remove(path)
        return
    _write_csv(path, ["path", "problem"], unreadable)
    if verbose:
        for file, problem in unreadable:
            print(f"cannot read {file}: {problem}", flush=True)

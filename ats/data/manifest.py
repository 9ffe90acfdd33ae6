"""A data set as a CSV manifest of files and labels, checked up front.

The manifest is a CSV file with a header: a ``path`` column (relative to the
CSV's folder, or absolute) and a ``label`` column; optional ``split``
(``train``, ``val`` or ``test``), ``group`` (e.g. a patient: the files of one
group are never in two splits) and ``mask`` (a mask file per image: a PNG,
``.npy`` or GeoJSON annotations; required by ``mask="file"``, and taking
precedence over the computed mask of ``"otsu"`` and ``"tissue"``).
``read_manifest`` reads it and, without a ``split`` column, splits it:
seeded, stratified by class and group-aware.
``check_manifest`` then checks every file before any training starts and
reports every problem of every row at once (``ManifestError``), or, with
``skip_bad=True``, keeps the good rows and lists the others.
"""

import collections
import csv
import os
from typing import NamedTuple

import numpy as np

from .. import checks
from .files import open_image, probe_image
from .masks import load_mask, otsu_mask, tissue_mask
from .resolution import checked_mpps
from .sources import SourceError

__all__ = [
    "SPLITS",
    "MASKS",
    "ManifestError",
    "ManifestRow",
    "Problem",
    "Manifest",
    "Checked",
    "read_manifest",
    "check_manifest",
]

SPLITS = ("train", "val", "test")
"""The values of a ``split`` column."""

MASKS = ("none", "otsu", "tissue", "file")
"""Where ``check_manifest`` takes the support masks from: everywhere, an
Otsu foreground (``otsu_mask``), the tissue of an H&E slide
(``tissue_mask``), or the manifest's ``mask`` files (which also take
precedence over ``otsu`` and ``tissue`` where a row has one)."""


class ManifestError(ValueError):
    """A manifest has problems; the message lists them all, one a line
    (``line N, PATH: problem``).

    Attributes:
        problems: list of ``Problem``.
    """

    def __init__(self, message, problems=()):
        super().__init__(message)
        self.problems = list(problems)


class Problem(NamedTuple):
    """One problem of one manifest row.

    Attributes:
        line: int, the CSV line number (the header is line 1).
        path: str, the row's file.
        problem: str, what is wrong.
    """

    line: int
    path: str
    problem: str

    def __str__(self):
        return f"line {self.line}, {self.path}: {self.problem}"


class ManifestRow(NamedTuple):
    """One row of a manifest.

    Attributes:
        line: int, the CSV line number (the header is line 1).
        path: str, the file, resolved against the CSV's folder.
        label: str, the class name.
        split: ``"train"``, ``"val"``, ``"test"``, or None for a row that
            cannot be used (see ``Manifest.problems``).
        group: str, the group (the path itself when there is none).
        mask: str or None, the mask file, resolved like ``path``.
    """

    line: int
    path: str
    label: str
    split: str
    group: str
    mask: str


class Manifest:
    """A read manifest.

    Attributes:
        path: str, the CSV file.
        rows: list of ``ManifestRow``, in file order.
        classes: sorted list of the distinct (non-empty) labels.
        columns: list of the CSV's column names.
        problems: list of ``Problem`` found while reading (empty label or
            path, bad split value); ``check_manifest`` reports them.
    """

    def __init__(self, path, rows, columns, problems):
        self.path = path
        self.rows = list(rows)
        self.columns = list(columns)
        self.problems = list(problems)
        self.classes = sorted({row.label for row in self.rows if row.label})

    def label_index(self, row):
        """The index of ``row.label`` in ``classes``."""
        return self.classes.index(row.label)

    def __len__(self):
        return len(self.rows)

    def __repr__(self):
        counts = collections.Counter(row.split for row in self.rows)
        return (
            f"Manifest({self.path!r}, {len(self.rows)} rows, classes="
            f"{self.classes}, splits={dict(counts)})"
        )


def _resolve(folder, value):
    return value if os.path.isabs(value) else os.path.join(folder, value)


def read_manifest(csv_path, val_fraction=0.1, test_fraction=0.2, seed=0):
    """Read a CSV manifest and split it into train, validation and test.

    Without a ``split`` column, the rows are split by a seeded, stratified
    and group-aware assignment: the groups (a row without a ``group`` is a
    group of its own) of each class (a group's most common label) are
    shuffled and each given to the split furthest below its share of that
    class's files, so the class proportions are about the same in every
    split and a group never straddles two.

    Args:
        csv_path: str or path-like, the CSV file (with a header).
        val_fraction: float in [0, 1), share of the validation split.
        test_fraction: float in [0, 1), share of the test split
            (``val_fraction + test_fraction < 1``).
        seed: int, the split's seed (same seed, same split).

    Returns:
        ``Manifest``.

    Raises:
        FileNotFoundError: no such CSV file.
        ManifestError: the CSV cannot be parsed, or has no ``path`` or
            ``label`` column (row problems are kept in
            ``Manifest.problems`` and raised by ``check_manifest``).

    Example:
        >>> import os, tempfile
        >>> from ats.data import read_manifest
        >>> folder = tempfile.mkdtemp()
        >>> with open(os.path.join(folder, "manifest.csv"), "w") as f:
        ...     _ = f.write("path,label\\n")
        ...     _ = f.writelines(f"img{i}.png,{'ab'[i % 2]}\\n" for i in range(20))
        >>> manifest = read_manifest(os.path.join(folder, "manifest.csv"))
        >>> manifest.classes, len(manifest.rows)
        (['a', 'b'], 20)
        >>> sorted(set(row.split for row in manifest.rows))
        ['test', 'train', 'val']
    """
    csv_path = os.fspath(csv_path)
    where = "read_manifest"
    val_fraction = checks.real("val_fraction", val_fraction, where=where)
    test_fraction = checks.real("test_fraction", test_fraction, where=where)
    seed = checks.integer("seed", seed, where=where)
    for name, value in (
        ("val_fraction", val_fraction),
        ("test_fraction", test_fraction),
    ):
        if not 0 <= value < 1:
            checks.fail(name, "a float in [0, 1)", value, where)
    if val_fraction + test_fraction >= 1:
        checks.fail(
            "val_fraction + test_fraction",
            "less than 1 (the rest is the training split)",
            val_fraction + test_fraction,
            where,
        )
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"{csv_path}: no such manifest file")
    folder = os.path.dirname(os.path.abspath(csv_path))
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            records = []
            for record in reader:
                values = {
                    (k or "").strip(): (v or "").strip()
                    for k, v in record.items()
                    if not isinstance(v, list)
                }
                records.append((reader.line_num, values))
    except (UnicodeDecodeError, csv.Error) as error:
        raise ManifestError(
            f"{csv_path}: not a readable CSV file: {type(error).__name__}: {error}"
        ) from error
    missing = [c for c in ("path", "label") if c not in columns]
    if missing:
        raise ManifestError(
            f"{csv_path}: the manifest must have the columns 'path' and 'label' "
            f"(optional: 'split', 'group', 'mask'); missing {missing}, found "
            f"{columns}"
        )
    rows, problems = [], []
    for line, values in records:
        if not any(values.values()):
            continue  # a blank line
        given = values.get("path", "")
        path = _resolve(folder, given) if given else ""
        label = values.get("label", "")
        split = values.get("split", "") if "split" in columns else None
        mask = values.get("mask", "")
        row_problems = []
        if not given:
            row_problems.append("empty path")
        if not label:
            row_problems.append("empty label")
        if split is not None and split not in SPLITS:
            row_problems.append(f"split must be one of {list(SPLITS)}, got {split!r}")
            split = None
        problems.extend(Problem(line, path or "(no path)", p) for p in row_problems)
        rows.append(
            ManifestRow(
                line=line,
                path=path,
                label=label,
                split=None if row_problems else split,
                group=values.get("group", "") or path,
                mask=_resolve(folder, mask) if mask else None,
            )
        )
    if "split" not in columns:
        rows = _split(rows, problems, val_fraction, test_fraction, seed)
    return Manifest(csv_path, rows, columns, problems)


def _split(rows, problems, val_fraction, test_fraction, seed):
    """Rows with a seeded, stratified, group-aware ``split``."""
    bad = {problem.line for problem in problems}
    members = collections.defaultdict(list)
    for index, row in enumerate(rows):
        if row.line not in bad:
            members[row.group].append(index)
    by_class = collections.defaultdict(list)
    for group in sorted(members):
        labels = collections.Counter(rows[i].label for i in members[group])
        top = max(sorted(labels), key=lambda label: labels[label])
        by_class[top].append(group)
    rng = np.random.default_rng(seed)
    shares = {"train": 1 - val_fraction - test_fraction, "val": val_fraction}
    shares["test"] = test_fraction
    splits = {}
    for label in sorted(by_class):
        groups = [by_class[label][i] for i in rng.permutation(len(by_class[label]))]
        # Large groups first (stable), so that small ones even out the shares.
        groups.sort(key=lambda group: -len(members[group]))
        total = sum(len(members[group]) for group in groups)
        counts = dict.fromkeys(SPLITS, 0)
        for group in groups:
            deficit = {s: shares[s] * total - counts[s] for s in SPLITS}
            split = max(("train", "test", "val"), key=lambda s: deficit[s])
            counts[split] += len(members[group])
            splits[group] = split
    return [
        row._replace(split=splits[row.group]) if row.line not in bad else row
        for row in rows
    ]


class Checked:
    """The good rows of a checked manifest, ready to open.

    Attributes:
        manifest: the ``Manifest``.
        rows: list of the good ``ManifestRow``.
        skipped: list of ``Problem`` of the rows left out (``skip_bad``).
        classes: the manifest's ``classes`` (sorted labels of all rows, so
            that indices do not depend on which rows were skipped).
        labels: ``(N,)`` int array, each good row's index in ``classes``.
        splits: list of each good row's split.
        channels: int, the images' channel count.
        shapes: list of each good row's ``(H, W, C)`` at full resolution
            (level 0; ``open`` gives the patches' shape, which differs with
            ``patch_mpp``).
        low_shapes: list of each good row's low view spatial shape.
        supports: list of each good row's support mask, bool, of its low
            view's spatial shape (all True for ``mask="none"``).
        low_scale, cache_dir, patch_size, mask, patch_mpp, low_mpp: as
            given to ``check_manifest``.
    """

    def __init__(self, manifest, rows, skipped, infos, supports, **settings):
        self.manifest = manifest
        self.rows = list(rows)
        self.skipped = list(skipped)
        self.classes = list(manifest.classes)
        self.labels = np.asarray(
            [self.classes.index(row.label) for row in self.rows], dtype=np.int64
        )
        self._index = {row.line: i for i, row in enumerate(self.rows)}
        self.splits = [row.split for row in self.rows]
        self.shapes = [tuple(info.shape) for info in infos]
        self.channels = self.shapes[0][-1] if self.shapes else None
        self.supports = list(supports)
        self.low_shapes = [tuple(s.shape) for s in self.supports]
        self.low_scale = settings["low_scale"]
        self.cache_dir = settings["cache_dir"]
        self.patch_size = settings["patch_size"]
        self.mask = settings["mask"]
        self.patch_mpp = settings["patch_mpp"]
        self.low_mpp = settings["low_mpp"]

    def __len__(self):
        return len(self.rows)

    def indices(self, split):
        """The indices (into ``rows``) of the rows of ``split``."""
        checks.choice("split", split, SPLITS, where="Checked.indices")
        return [i for i, s in enumerate(self.splits) if s == split]

    def index(self, row):
        """The index in ``rows`` of ``row`` (a ``ManifestRow`` or an int)."""
        if isinstance(row, ManifestRow):
            if row.line not in self._index:
                raise KeyError(f"line {row.line}, {row.path}: not a good row")
            return self._index[row.line]
        return checks.integer("row", row, 0, len(self.rows) - 1, "Checked")

    def open(self, row):
        """Open a good row's image: ``open_image(path, low_scale,
        cache_dir, patch_mpp, low_mpp)``, a new source of float32 values in
        [0, 1] (close it when done). ``row``: a ``ManifestRow`` of ``rows``
        or its index."""
        path = self.rows[self.index(row)].path
        return open_image(
            path, self.low_scale, self.cache_dir, self.patch_mpp, self.low_mpp
        )

    source = open

    def support(self, row):
        """A good row's support mask, bool, of its low view's spatial
        shape. ``row``: a ``ManifestRow`` of ``rows`` or its index."""
        return self.supports[self.index(row)]

    def label(self, row):
        """A good row's class index in ``classes``. ``row``: a
        ``ManifestRow`` of ``rows`` or its index."""
        return int(self.labels[self.index(row)])

    def __repr__(self):
        counts = collections.Counter(self.splits)
        return (
            f"Checked({len(self.rows)} good rows, {len(self.skipped)} skipped, "
            f"classes={self.classes}, splits={dict(counts)})"
        )


def _message(manifest, problems, skip_hint=True):
    lines = [f"{manifest.path}: {len(problems)} problem(s) in the manifest:"]
    lines += [f"  {problem}" for problem in problems]
    if skip_hint:
        lines.append("Fix them, or skip these rows (skip_bad=True / --skip-bad).")
    return "\n".join(lines)


def check_manifest(
    manifest,
    patch_size,
    low_scale,
    mask="none",
    skip_bad=False,
    cache_dir=None,
    min_positions=1,
    patch_mpp=None,
    low_mpp=None,
):
    """Check every row of a manifest before training; report all problems.

    Each row's file is opened (its low view computed, and cached in
    ``cache_dir``) and checked: it exists, its format is known, it reads,
    it is at least ``patch_size`` on each axis, it has the channel count of
    most files; its label (and split value) are not empty (wrong); with
    ``mask="file"`` its mask file exists and reads, and with a mask the mask
    is not empty; the positions attention may sample (the low view's pixels
    in its mask) are at least ``min_positions``.

    Args:
        manifest: ``Manifest`` (``read_manifest``).
        patch_size: int or ``(ph, pw)``, the patch size (in pixels of
            ``patch_mpp`` when given, else of the full resolution).
        low_scale: float in (0, 1], the low views' scale (``open_image``).
        mask: ``"none"`` (the whole image), ``"otsu"`` (``otsu_mask`` of the
            low view), ``"tissue"`` (``tissue_mask`` of the low view) or
            ``"file"`` (the ``mask`` column, ``load_mask``); with ``otsu``
            and ``tissue``, a row's own mask file takes precedence.
        skip_bad: bool; False raises on any problem, True keeps the good
            rows and lists the others in ``Checked.skipped``.
        cache_dir: str or None, where low views are cached.
        min_positions: int >= 1, the fewest positions an image may offer
            (a model sampling ``n_patches`` without replacement needs that
            many).
        patch_mpp: optional float, the microns per pixel of the patches
            (``open_image``); a file without resolution metadata is then a
            problem of its row.
        low_mpp: optional float, the microns per pixel of the low view
            (``open_image``).

    Returns:
        ``Checked``.

    Raises:
        ManifestError: some rows have problems (and not ``skip_bad``): the
            message lists every one as ``line N, PATH: problem``; or
            ``mask="file"`` without a ``mask`` column; or no good row is
            left.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from PIL import Image
        >>> from ats.data import check_manifest, read_manifest
        >>> folder = tempfile.mkdtemp()
        >>> for i in range(4):
        ...     Image.fromarray(np.zeros((100, 150), "uint8")).save(
        ...         os.path.join(folder, f"{i}.png"))
        >>> with open(os.path.join(folder, "manifest.csv"), "w") as f:
        ...     _ = f.write("path,label,split\\n0.png,a,train\\n1.png,b,train\\n"
        ...                 "2.png,a,test\\nmissing.png,b,test\\n")
        >>> manifest = read_manifest(os.path.join(folder, "manifest.csv"))
        >>> checked = check_manifest(manifest, (32, 32), 0.1, skip_bad=True)
        >>> len(checked.rows), checked.supports[0].shape
        (3, (10, 15))
        >>> print(checked.skipped[0].problem)
        file not found
    """
    where = "check_manifest"
    if not isinstance(manifest, Manifest):
        checks.fail(
            "manifest", "a Manifest (read_manifest)", manifest, where, TypeError
        )
    if isinstance(patch_size, (int, np.integer)) and not isinstance(patch_size, bool):
        patch_size = (int(patch_size),) * 2
    patch_size = checks.int_tuple("patch_size", patch_size, length=2, where=where)
    low_scale = checks.real("low_scale", low_scale, where=where)
    if not 0 < low_scale <= 1:
        checks.fail("low_scale", "a float in (0, 1]", low_scale, where)
    checks.choice("mask", mask, MASKS, where=where)
    skip_bad = checks.boolean("skip_bad", skip_bad, where=where)
    min_positions = checks.integer(
        "min_positions", min_positions, minimum=1, where=where
    )
    patch_mpp, low_mpp = checked_mpps(patch_mpp, low_mpp, where)
    opening = {"low_scale": low_scale, "cache_dir": cache_dir}
    opening.update(patch_mpp=patch_mpp, low_mpp=low_mpp)
    if mask == "file" and "mask" not in manifest.columns:
        raise ManifestError(
            f"{manifest.path}: mask='file' needs a 'mask' column (a mask file "
            f"per image); the columns are {manifest.columns}"
        )
    problems = collections.defaultdict(list)
    for problem in manifest.problems:
        problems[problem.line].append(problem)
    infos = {}
    for row in manifest.rows:
        if row.line in problems:
            continue
        try:
            info = probe_image(row.path)
        except FileNotFoundError:
            problems[row.line].append(Problem(row.line, row.path, "file not found"))
            continue
        except SourceError as error:
            text = str(error)
            prefix = f"{row.path}: "
            text = text[len(prefix) :] if text.startswith(prefix) else text
            problems[row.line].append(Problem(row.line, row.path, text))
            continue
        except Exception as error:
            problems[row.line].append(
                Problem(
                    row.line, row.path, f"unreadable: {type(error).__name__}: {error}"
                )
            )
            continue
        # With patch_mpp the patch level's shape is known once it is opened.
        small = patch_mpp is None and _too_small(info.shape[:2], patch_size)
        if small:
            problems[row.line].append(Problem(row.line, row.path, small))
        infos[row.line] = info
    counts = collections.Counter(info.shape[-1] for info in infos.values())
    channels = counts.most_common(1)[0][0] if counts else None
    supports = {}
    for row in manifest.rows:
        if row.line not in infos:
            continue
        info = infos[row.line]
        if info.shape[-1] != channels:
            problems[row.line].append(
                Problem(
                    row.line,
                    row.path,
                    f"has {info.shape[-1]} channel(s) but most files have {channels}",
                )
            )
        if problems[row.line]:
            continue
        support, problem = _support(row, info, mask, patch_size, opening)
        if not problem and support.sum() < min_positions:
            problem = (
                f"offers {int(support.sum())} position(s) to sample (its low view"
                f"{'' if mask == 'none' else ' in its mask'}), fewer than "
                f"{min_positions}: raise --low-scale or lower --n-patches"
            )
        if problem:
            problems[row.line].append(Problem(row.line, row.path, problem))
        else:
            supports[row.line] = support
    found = sorted(
        (p for line in problems.values() for p in line), key=lambda p: p.line
    )
    if found and not skip_bad:
        raise ManifestError(_message(manifest, found), found)
    good = [row for row in manifest.rows if row.line in supports]
    if not good:
        raise ManifestError(
            _message(manifest, found, skip_hint=False)
            + "\nNo usable row is left in the manifest.",
            found,
        )
    return Checked(
        manifest,
        good,
        found,
        [infos[row.line] for row in good],
        [supports[row.line] for row in good],
        patch_size=patch_size,
        mask=mask,
        **opening,
    )


def _too_small(spatial_shape, patch_size):
    """The problem of an image smaller than a patch on an axis, or None."""
    if any(p > s for p, s in zip(patch_size, spatial_shape)):
        return (
            f"the image {tuple(spatial_shape)} is smaller than the patch size "
            f"{patch_size} on an axis"
        )
    return None


def _support(row, info, mask, patch_size, opening):
    """``(support mask, None)`` or ``(None, problem)``: the image is opened
    with ``open_image(row.path, **opening)`` (which checks that it reads
    and, with ``patch_mpp``, that a patch fits) and the mask computed: the
    row's own mask file when it has one (required by ``mask="file"``),
    else the ``otsu`` or ``tissue`` mask of the low view."""
    try:
        source = open_image(row.path, **opening)
    except Exception as error:
        text = str(error)
        prefix = f"{row.path}: "
        text = text[len(prefix) :] if text.startswith(prefix) else text
        return None, f"unreadable: {text}"
    try:
        small = _too_small(source.spatial_shape, patch_size)
        if small:
            return None, f"{small} (at patch_mpp={opening['patch_mpp']})"
        low_shape = source.low_shape[:-1]
        if mask == "none":
            return np.ones(low_shape, bool), None
        if mask == "file" and not row.mask:
            return None, "no mask file in the 'mask' column"
        if row.mask:
            try:
                support = load_mask(row.mask, low_shape, info.levels[0])
            except FileNotFoundError:
                return None, f"mask file not found: {row.mask}"
            except SourceError as error:
                return None, f"unreadable mask: {error}"
        elif mask == "otsu":
            support = otsu_mask(source.low())
        else:
            try:
                support = tissue_mask(source.low())
            except ValueError as error:
                return None, str(error)
        if not support.any():
            kind = "file" if row.mask else mask
            return None, f"the {kind} mask is empty (no foreground)"
        return support, None
    finally:
        source.close()

"""CSV manifests: reading, the stratified group-aware split, and checks that
report every bad row at once (line number and path), or skip them."""

import collections
import os
import re

import numpy as np
import pytest

from ats.data import (
    Checked,
    ManifestError,
    check_manifest,
    read_manifest,
)

PIL = pytest.importorskip("PIL", reason="the manifest tests need Pillow")
from PIL import Image  # noqa: E402

PATCH = (16, 16)


def png(folder, name, shape=(40, 60, 3), value=128):
    path = os.path.join(folder, name)
    array = np.full(shape, value, np.uint8)
    Image.fromarray(array.squeeze(-1) if shape[-1] == 1 else array).save(path)
    return name


def write_csv(folder, header, rows, name="manifest.csv"):
    path = os.path.join(folder, name)
    with open(path, "w") as file:
        file.write(",".join(header) + "\n")
        for row in rows:
            file.write(",".join(row) + "\n")
    return path


def good_rows(folder, n=4):
    """``n`` good rows (RGB PNGs), labels a/b alternating, all train."""
    return [[png(folder, f"good{i}.png"), "ab"[i % 2], "train"] for i in range(n)]


def problems_of(folder, extra, mask="none", header=("path", "label", "split")):
    """The ManifestError of a manifest of good rows plus ``extra`` rows."""
    rows = good_rows(folder) + extra
    manifest = read_manifest(write_csv(folder, header, rows))
    with pytest.raises(ManifestError) as caught:
        check_manifest(manifest, PATCH, 0.25, mask=mask)
    return caught.value


def assert_one_problem(error, line, path_end, pattern):
    assert len(error.problems) == 1, error.problems
    (problem,) = error.problems
    assert problem.line == line and problem.path.endswith(path_end)
    assert re.search(pattern, problem.problem), problem.problem
    assert f"line {line}, " in str(error) and path_end in str(error)


# --- every bad case, one test each ------------------------------------------------


def test_missing_file(tmp_path):
    error = problems_of(str(tmp_path), [["absent.png", "a", "train"]])
    assert_one_problem(error, 6, "absent.png", "file not found")


def test_unreadable_file(tmp_path):
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG but not really")
    error = problems_of(str(tmp_path), [["corrupt.png", "a", "train"]])
    assert_one_problem(error, 6, "corrupt.png", "not a readable image")


def test_truncated_file_is_unreadable(tmp_path):
    name = png(str(tmp_path), "truncated.png", value=0)
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    error = problems_of(str(tmp_path), [[name, "a", "train"]])
    assert_one_problem(error, 6, "truncated.png", "unreadable")


def test_unknown_format(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    error = problems_of(str(tmp_path), [["notes.txt", "a", "train"]])
    assert_one_problem(error, 6, "notes.txt", "unknown image format '.txt'.*png")


def test_empty_label(tmp_path):
    name = png(str(tmp_path), "unlabelled.png")
    error = problems_of(str(tmp_path), [[name, "", "train"]])
    assert_one_problem(error, 6, "unlabelled.png", "empty label")


def test_image_smaller_than_the_patch(tmp_path):
    name = png(str(tmp_path), "tiny.png", shape=(40, 10, 3))
    error = problems_of(str(tmp_path), [[name, "a", "train"]])
    assert_one_problem(error, 6, "tiny.png", r"\(40, 10\) is smaller than the patch")


def test_channel_count_differing_from_most_files(tmp_path):
    name = png(str(tmp_path), "gray.png", shape=(40, 60, 1))
    error = problems_of(str(tmp_path), [[name, "a", "train"]])
    assert_one_problem(error, 6, "gray.png", "1 channel.*most files have 3")


def test_missing_mask_file(tmp_path):
    folder = str(tmp_path)
    masks = [[png(folder, f"m{i}.png", (40, 60, 1), 255)] for i in range(4)]
    rows = [row + mask for row, mask in zip(good_rows(folder), masks)]
    extra = [[png(folder, "x.png"), "a", "train", "absent_mask.png"]]
    manifest = read_manifest(
        write_csv(folder, ("path", "label", "split", "mask"), rows + extra)
    )
    with pytest.raises(ManifestError) as caught:
        check_manifest(manifest, PATCH, 0.25, mask="file")
    error = caught.value
    assert_one_problem(error, 6, "x.png", "mask file not found: .*absent_mask.png")


def test_mask_file_without_mask_column(tmp_path):
    folder = str(tmp_path)
    manifest = read_manifest(write_csv(folder, ("path", "label"), []))
    with pytest.raises(ManifestError, match="mask='file' needs a 'mask' column"):
        check_manifest(manifest, PATCH, 0.25, mask="file")


def test_empty_mask(tmp_path):
    folder = str(tmp_path)
    full = png(folder, "full.png", (40, 60, 1), 255)
    empty = png(folder, "empty.png", (40, 60, 1), 0)
    rows = [row + [full] for row in good_rows(folder)]
    rows.append([png(folder, "x.png"), "a", "train", empty])
    rows.append([png(folder, "y.png"), "a", "train", ""])
    manifest = read_manifest(
        write_csv(folder, ("path", "label", "split", "mask"), rows)
    )
    with pytest.raises(ManifestError) as caught:
        check_manifest(manifest, PATCH, 0.25, mask="file")
    problems = caught.value.problems
    assert [p.line for p in problems] == [6, 7]
    assert "mask is empty" in problems[0].problem
    assert "no mask file" in problems[1].problem


def test_bad_split_value(tmp_path):
    name = png(str(tmp_path), "x.png")
    error = problems_of(str(tmp_path), [[name, "a", "training"]])
    assert_one_problem(error, 6, "x.png", "split must be one of.*'training'")


@pytest.mark.parametrize("missing", ["path", "label"])
def test_missing_path_or_label_column(tmp_path, missing):
    header = [c for c in ("path", "label", "split") if c != missing]
    csv_path = write_csv(str(tmp_path), header, [["x"] * len(header)])
    with pytest.raises(ManifestError, match=f"manifest.csv.*missing \\['{missing}'\\]"):
        read_manifest(csv_path)


def test_missing_csv():
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        read_manifest("/nonexistent/nowhere.csv")


# --- all at once, or skipped ------------------------------------------------------


def bad_rows(folder):
    (open(os.path.join(folder, "notes.txt"), "w")).close()
    return [
        ["absent.png", "a", "train"],  # line 6
        [png(folder, "tiny.png", (8, 8, 3)), "b", "val"],  # line 7
        ["notes.txt", "a", "test"],  # line 8
        [png(folder, "nolabel.png"), "", "train"],  # line 9
    ]


def test_every_problem_is_reported_at_once(tmp_path):
    error = problems_of(str(tmp_path), bad_rows(str(tmp_path)))
    assert [p.line for p in error.problems] == [6, 7, 8, 9]
    message = str(error)
    for line, name in [
        (6, "absent.png"),
        (7, "tiny.png"),
        (8, "notes.txt"),
        (9, "nolabel.png"),
    ]:
        assert f"line {line}, " in message and name in message
    assert "skip_bad" in message


def test_skip_bad_keeps_the_good_rows_and_lists_the_rest(tmp_path):
    folder = str(tmp_path)
    manifest = read_manifest(
        write_csv(
            folder, ("path", "label", "split"), good_rows(folder) + bad_rows(folder)
        )
    )
    checked = check_manifest(manifest, PATCH, 0.25, skip_bad=True)
    assert isinstance(checked, Checked)
    assert [row.line for row in checked.rows] == [2, 3, 4, 5]
    assert [p.line for p in checked.skipped] == [6, 7, 8, 9]
    assert checked.classes == ["a", "b"]
    assert checked.labels.tolist() == [0, 1, 0, 1]
    assert checked.splits == ["train"] * 4
    assert checked.channels == 3


def test_class_indices_do_not_depend_on_skipped_rows(tmp_path):
    folder = str(tmp_path)
    rows = [[png(folder, "a.png"), "a", "train"], ["absent.png", "b", "train"]]
    rows.append([png(folder, "c.png"), "c", "test"])
    manifest = read_manifest(write_csv(folder, ("path", "label", "split"), rows))
    checked = check_manifest(manifest, PATCH, 0.25, skip_bad=True)
    assert checked.classes == ["a", "b", "c"]
    assert checked.labels.tolist() == [0, 2]


def test_nothing_left_is_an_error_even_with_skip_bad(tmp_path):
    csv_path = write_csv(str(tmp_path), ("path", "label"), [["absent.png", "a"]])
    with pytest.raises(ManifestError, match="No usable row"):
        check_manifest(read_manifest(csv_path), PATCH, 0.25, skip_bad=True)


# --- what Checked gives ------------------------------------------------------------


def test_checked_opens_sources_and_gives_supports(tmp_path):
    folder = str(tmp_path)
    image = np.full((40, 80, 3), 240, np.uint8)
    image[10:30, 20:60] = 60  # a dark object on a bright background
    Image.fromarray(image).save(os.path.join(folder, "object.png"))
    png(folder, "tall.png", (64, 32, 3))
    absolute = os.path.join(folder, "object.png")
    rows = [[absolute, "obj", "train"], ["tall.png", "other", "test"]]
    manifest = read_manifest(write_csv(folder, ("path", "label", "split"), rows))
    cache = str(tmp_path / "cache")
    plain = check_manifest(manifest, PATCH, 0.25, cache_dir=cache)
    assert plain.low_shapes == [(10, 20), (16, 8)]
    assert all(s.all() and s.dtype == bool for s in plain.supports)
    assert plain.indices("test") == [1]
    row = plain.rows[1]
    assert plain.label(row) == plain.label(1) == 1  # classes: obj, other
    assert plain.support(row) is plain.supports[1]
    source = plain.source(row)
    assert source.shape == (64, 32, 3) and source.low_shape == (16, 8, 3)
    assert source.low_from == "cache"  # computed (and cached) by the check
    assert source.read([[0, 0]], PATCH).dtype == np.float32
    otsu = check_manifest(manifest, PATCH, 0.25, mask="otsu", cache_dir=cache)
    support = otsu.supports[0]
    assert support.shape == (10, 20)
    # The object covers low rows 2.5 to 7.5 and columns 5 to 15.
    assert support[3:7, 5:15].all() and not support[:, :5].any()
    assert not support[:2].any() and not support[8:].any()
    assert not support[:, 15:].any()


def test_tissue_masks_and_own_masks_taking_precedence(tmp_path):
    import json

    folder = str(tmp_path)
    slide = np.full((80, 120, 3), 242, np.uint8)  # white glass
    slide[20:60, 20:60] = (230, 160, 205)  # pink tissue on the left
    slide[20:60, 90:96] = (40, 75, 190)  # a blue pen line on the right
    Image.fromarray(slide).save(os.path.join(folder, "slide.png"))
    annotation = {  # the right half, in level-0 pixels (x, y)
        "type": "Polygon",
        "coordinates": [[[60, 0], [120, 0], [120, 80], [60, 80], [60, 0]]],
    }
    with open(os.path.join(folder, "right.geojson"), "w") as file:
        json.dump(annotation, file)
    png(folder, "gray.png", (80, 120, 1))
    rows = [
        ["slide.png", "a", "train", ""],
        ["slide.png", "b", "train", "right.geojson"],
    ]
    path = write_csv(folder, ("path", "label", "split", "mask"), rows)
    checked = check_manifest(read_manifest(path), PATCH, 0.25, mask="tissue")
    tissue, own = checked.supports
    # The tissue (low pixels 5-15), not the glass nor the pen (columns 22-24).
    assert tissue[6:14, 6:14].all() and tissue.sum() == 100
    assert not tissue[:, 16:].any()
    # The row's own GeoJSON mask wins over the tissue mask.
    assert own[:, 15:].all() and not own[:, :15].any()
    # Gray images have no saturation: a problem of their row, not a crash.
    path = write_csv(folder, ("path", "label"), [["gray.png", "a"]], "gray.csv")
    with pytest.raises(ManifestError) as caught:
        check_manifest(read_manifest(path), PATCH, 0.25, mask="tissue")
    ((line, _, problem),) = caught.value.problems
    assert line == 2 and "RGB" in problem and "Otsu" in problem


# --- the split ---------------------------------------------------------------------


def split_manifest(folder, seed=0, n_groups=60):
    """Groups of 1 to 4 files, labels 30% 'rare', 70% 'common'."""
    rng = np.random.default_rng(123)
    rows = []
    for group in range(n_groups):
        label = "rare" if rng.random() < 0.3 else "common"
        for i in range(int(rng.integers(1, 5))):
            rows.append([f"g{group}_{i}.png", label, f"patient{group}"])
    path = write_csv(folder, ("path", "label", "group"), rows)
    return read_manifest(path, val_fraction=0.15, test_fraction=0.25, seed=seed)


def test_split_never_straddles_groups(tmp_path):
    manifest = split_manifest(str(tmp_path))
    splits_of = collections.defaultdict(set)
    for row in manifest.rows:
        splits_of[row.group].add(row.split)
    assert all(len(s) == 1 for s in splits_of.values())
    assert {row.split for row in manifest.rows} == {"train", "val", "test"}


def test_split_keeps_class_proportions_roughly(tmp_path):
    manifest = split_manifest(str(tmp_path))
    for label in manifest.classes:
        rows = [row for row in manifest.rows if row.label == label]
        counts = collections.Counter(row.split for row in rows)
        for split, share in (("train", 0.6), ("val", 0.15), ("test", 0.25)):
            # Within one group's worth of files (groups have <= 4 files).
            assert abs(counts[split] - share * len(rows)) <= 4, (label, counts)


def test_same_seed_same_split_other_seed_other_split(tmp_path):
    first = [row.split for row in split_manifest(str(tmp_path), seed=1).rows]
    again = [row.split for row in split_manifest(str(tmp_path), seed=1).rows]
    other = [row.split for row in split_manifest(str(tmp_path), seed=2).rows]
    assert first == again
    assert first != other


def test_rows_without_group_are_their_own_group_and_lines_count_the_header(tmp_path):
    rows = [[f"{i}.png", "ab"[i % 2]] for i in range(10)]
    manifest = read_manifest(write_csv(str(tmp_path), ("path", "label"), rows))
    assert [row.line for row in manifest.rows] == list(range(2, 12))
    assert manifest.rows[0].path == os.path.join(str(tmp_path), "0.png")
    assert len({row.group for row in manifest.rows}) == 10
    assert manifest.label_index(manifest.rows[1]) == 1


@pytest.mark.parametrize(
    "kwargs", [{"val_fraction": 0.6, "test_fraction": 0.5}, {"test_fraction": -0.1}]
)
def test_bad_fractions(tmp_path, kwargs):
    csv_path = write_csv(str(tmp_path), ("path", "label"), [])
    with pytest.raises(ValueError, match="fraction"):
        read_manifest(csv_path, **kwargs)

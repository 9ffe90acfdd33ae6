"""Speed Limits: the annotation parser, the original filtering, the manifest
and the checked download, on small files in the real formats (no network)."""

import csv
import hashlib
import io
import zipfile

import pytest

from ats.datasets import speed_limits
from ats.datasets.speed_limits import (
    LABELS,
    Sign,
    parse_annotations,
    parse_line,
    speed_limit_label,
    write_manifest,
)

PIL = pytest.importorskip("PIL.Image")

# Lines in the format of the real annotations.txt (a few typos included:
# the original parser strips trailing characters from a number).
SET1 = """\
1277381001Image000001.jpg:
1277381001Image000002.jpg:VISIBLE, 862.0, 447.6, 815.3, 400.3, PROHIBITORY, 70_SIGN;
1277381001Image000003.jpg:MISC_SIGNS;
1277381002Image000001.jpg:VISIBLE, 100.0, 100.0, 90.0, 90.0, PROHIBITORY, 50_SIGN;\
VISIBLE, 300.5, 300.0, 200.0, 200.0, PROHIBITORY, 80_SIGN;
1277381002Image000002.jpg:VISIBLE, 500.0, 500.0, 400.0, 400.0, MANDATORY, \
PASS_RIGHT_SIDE;
1277381002Image000003.jpg:BLURRED, 500.0, 500.0, 400.0, 400.0, PROHIBITORY, 50_SIGN;\
SIDE_ROAD, 900.0, 900.0, 100.0, 100.0, PROHIBITORY, 70_SIGN;
1277381003Image000001.jpg:OCCLUDED, 900.0, 900.0, 100.0, 100.0, PROHIBITORY, 80_SIGN;\
VISIBLE, 20.0l, 20.0, 10.0, 10.0, PROHIBITORY, 50_SIGN;

1277381003Image000002.jpg:VISIBLE, 20.0, 20.0, 10.0, 10.0, WARNING, GIVE_WAY;MISC_SIGNS;
"""
SET2 = """\
1277382001Image000001.jpg:
1277382001Image000002.jpg:VISIBLE, 30.0, 30.0, 10.0, 10.0, PROHIBITORY, 80_SIGN;
"""
# file -> expected class (None: dropped), by the original script's rules
EXPECTED1 = {
    "1277381001Image000001.jpg": 0,  # no sign
    "1277381001Image000002.jpg": 2,  # 70
    "1277381001Image000003.jpg": 0,  # only MISC_SIGNS: counts as no sign
    "1277381002Image000001.jpg": 3,  # the larger visible one: 80
    "1277381002Image000002.jpg": None,  # signs, none a speed limit
    "1277381002Image000003.jpg": None,  # most visible limit is BLURRED
    "1277381003Image000001.jpg": 1,  # VISIBLE ranks before OCCLUDED
    "1277381003Image000002.jpg": None,  # a give way sign only
}


def _dataset(root, extra_set1=""):
    for name, text in (("Set1", SET1 + extra_set1), ("Set2", SET2)):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "annotations.txt").write_text(text)
        for line in text.splitlines():
            if line.strip():
                image = PIL.new("RGB", (64, 48), (90, 90, 90))
                image.save(folder / line.split(":")[0])
    return root


def _rows(manifest):
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def test_parse_line_reads_the_fields():
    image, signs = parse_line(
        "x.jpg:VISIBLE, 862.0, 447.6, 815.3, 400.3, PROHIBITORY, 70_SIGN;MISC_SIGNS;"
    )
    assert image == "x.jpg"
    assert signs == [
        Sign("VISIBLE", (862.0, 447.6, 815.3, 400.3), "PROHIBITORY", "70_SIGN")
    ]
    assert signs[0].area == pytest.approx((862.0 - 815.3) * (447.6 - 400.3))
    assert parse_line("y.jpg:") == ("y.jpg", [])
    # a number with a trailing typo, as in the real files
    assert parse_line("z.jpg:VISIBLE, 20.0l, 2, 1, 1, A, 50_SIGN")[1][0].bbox[0] == 20.0


@pytest.mark.parametrize(
    "line, problem",
    [
        ("no colon here", "FILE:SIGN"),
        ("a.jpg:VISIBLE, 1, 2, 3", "visibility, x_max"),
        ("a.jpg:HIDDEN, 1, 2, 3, 4, A, 50_SIGN", "visibility must be one of"),
        ("a.jpg:VISIBLE, x, 2, 3, 4, A, 50_SIGN", "expected a number"),
    ],
)
def test_malformed_lines_name_the_file_and_line(tmp_path, line, problem):
    path = tmp_path / "annotations.txt"
    path.write_text("ok.jpg:\n" + line + "\n")
    with pytest.raises(ValueError, match=problem) as error:
        parse_annotations(path)
    assert f"{path}, line 2" in str(error.value)


def test_filter_follows_the_original_script(tmp_path):
    root = _dataset(tmp_path)
    parsed = dict(parse_annotations(root / "Set1" / "annotations.txt"))
    assert {f: speed_limit_label(s) for f, s in parsed.items()} == EXPECTED1


def test_manifest_labels_splits_and_groups(tmp_path):
    root = _dataset(tmp_path)
    manifest = write_manifest(root, val_fraction=0)
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "label", "split", "group"]
    expected = {f"Set1/{f}": LABELS[k] for f, k in EXPECTED1.items() if k is not None}
    expected.update({"Set2/1277382001Image000001.jpg": LABELS[0]})
    expected.update({"Set2/1277382001Image000002.jpg": LABELS[3]})
    assert {r["path"]: r["label"] for r in rows} == expected
    assert {r["path"].split("/")[0]: r["split"] for r in rows} == {
        "Set1": "train",
        "Set2": "test",
    }
    groups = {r["path"]: r["group"] for r in rows}
    assert groups["Set1/1277381001Image000001.jpg"] == "Set1-1277381001"
    assert sorted(LABELS) == list(LABELS)  # sorted labels = class order


def test_odd_seed_swaps_the_sets_and_validation_takes_whole_groups(tmp_path):
    root = _dataset(tmp_path)
    rows = _rows(write_manifest(root, seed=1, val_fraction=0))
    assert {r["split"] for r in rows if r["path"].startswith("Set2")} == {"train"}
    rows = _rows(write_manifest(root, seed=0, val_fraction=0.3))
    val = [r for r in rows if r["split"] == "val"]
    train = [r for r in rows if r["split"] == "train"]
    assert val and train
    assert not {r["group"] for r in val} & {r["group"] for r in train}
    assert all(r["path"].startswith("Set1") for r in val)


def test_images_in_a_subfolder_are_found_and_missing_ones_named(tmp_path):
    root = _dataset(tmp_path)
    moved = root / "Set2" / "Set2Part0"
    moved.mkdir()
    (root / "Set2" / "1277382001Image000002.jpg").rename(
        moved / "1277382001Image000002.jpg"
    )
    rows = _rows(write_manifest(root, val_fraction=0))
    assert "Set2/Set2Part0/1277382001Image000002.jpg" in {r["path"] for r in rows}
    (moved / "1277382001Image000002.jpg").unlink()
    with pytest.raises(ValueError, match="1 annotated photograph.*Image000002"):
        write_manifest(root)


def test_missing_annotations_say_how_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="ats datasets speed-limits"):
        write_manifest(tmp_path)


def _zip(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _fake_server(tmp_path, annotations):
    """file:// copies of the official URLs' files; returns the URL map."""
    served = tmp_path / "served"
    served.mkdir()
    urls = {}
    for name in speed_limits.SETS:
        archive = served / f"{name}Part0.zip"
        archive.write_bytes(_zip({f"{name}_a.jpg": b"jpeg"}))
        text = served / f"{name}_annotations.txt"
        text.write_bytes(annotations[name])
        urls[name] = {"archive": archive.as_uri(), "annotations": text.as_uri()}
    return urls


def test_download_checks_the_annotations_md5(tmp_path, monkeypatch):
    annotations = {"Set1": b"a.jpg:\n", "Set2": b"b.jpg:\n"}
    monkeypatch.setattr(speed_limits, "URLS", _fake_server(tmp_path, annotations))
    monkeypatch.setattr(
        speed_limits,
        "ANNOTATION_MD5",
        {k: hashlib.md5(v).hexdigest() for k, v in annotations.items()},
    )
    data = tmp_path / "data"
    digests = speed_limits.download(data)
    assert (data / "Set1" / "Set1_a.jpg").read_bytes() == b"jpeg"
    assert (data / "Set2" / "annotations.txt").read_bytes() == b"b.jpg:\n"
    sums = (data / "SHA256SUMS").read_text()
    assert digests["Set1Part0.zip"]["sha256"] in sums
    # again: nothing downloaded, same answer
    assert speed_limits.download(data) == digests

    # a changed annotation file on the server is an error naming the file
    monkeypatch.setattr(
        speed_limits, "ANNOTATION_MD5", {"Set1": "0" * 32, "Set2": "0" * 32}
    )
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError, match=r"annotations\.txt: the md5") as error:
        speed_limits.download(fresh)
    assert "0" * 32 in str(error.value)
    assert not (fresh / "Set1" / "annotations.txt").exists()
    assert not list(fresh.rglob("*.part"))


def test_download_uses_the_given_opener(tmp_path, monkeypatch):
    opened = []

    def opener(url):
        opened.append(url)
        if url.endswith(".zip"):
            return io.BytesIO(_zip({"x.jpg": b"x"}))
        return io.BytesIO(b"x.jpg:\n")

    monkeypatch.setattr(
        speed_limits,
        "ANNOTATION_MD5",
        {k: hashlib.md5(b"x.jpg:\n").hexdigest() for k in speed_limits.SETS},
    )
    speed_limits.download(tmp_path, opener=opener)
    assert opened == [
        speed_limits.URLS[s][kind]
        for s in speed_limits.SETS
        for kind in ("archive", "annotations")
    ]
    assert opened[0].startswith("http://www.isy.liu.se/cvl/research/trafficSigns/")

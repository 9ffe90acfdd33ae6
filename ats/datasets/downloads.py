"""Downloading data set files with checksums, and unpacking archives.

Used by :mod:`ats.datasets.speed_limits` and :mod:`ats.datasets.colon_cancer`.
A file is written to ``NAME.part`` while it arrives, hashed on the way, and
renamed to ``NAME`` only once its checksum (md5 or sha256, when one is
known) matches; a mismatch is an error naming the file, the URL, the
expected and the received digest, and the ``.part`` file is removed.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from ats.datasets.downloads import fetch
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("hello")
    >>> digest = fetch((folder / "a.txt").as_uri(), folder / "b.txt",
    ...                md5="5d41402abc4b2a76b9719d911017c592")
    >>> digest["sha256"][:12], (folder / "b.txt").read_text()
    ('2cf24dba5fb0', 'hello')
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
import zipfile
from pathlib import Path

__all__ = ["fetch", "file_digests", "unzip", "default_progress", "write_sums"]

_CHUNK = 1 << 20


def file_digests(path):
    """The md5 and sha256 hex digests of a file, as a dict."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            md5.update(chunk)
            sha256.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def _check(path, digests, expected, url):
    for kind, value in expected.items():
        if value is not None and digests[kind] != value.lower():
            raise ValueError(
                f"{path}: the {kind} of the file downloaded from {url} must be "
                f"{value}, got {digests[kind]} (a changed or damaged file; "
                f"delete it and download again)"
            )


def fetch(url, destination, md5=None, sha256=None, opener=None, progress=None):
    """Download ``url`` to ``destination`` and check its checksum.

    An existing ``destination`` whose checksums match is kept (not
    downloaded again); one that does not match is an error.

    Args:
        url: str, any URL ``urllib`` opens (``https://``, ``file://``).
        destination: the file to write.
        md5, sha256: optional hex digests the file must have.
        opener: optional function of the URL returning a file-like
            response (default ``urllib.request.urlopen``; tests pass their
            own).
        progress: optional text stream for "received N / M bytes" lines
            (default: none).

    Returns:
        dict ``{"md5": ..., "sha256": ...}``: the file's digests (record the
        sha256 of a file whose official checksum is unknown).

    Raises:
        ValueError: a checksum does not match (naming the file).
        OSError: the download failed.
    """
    destination = Path(destination)
    expected = {"md5": md5, "sha256": sha256}
    if destination.exists():
        digests = file_digests(destination)
        _check(destination, digests, expected, url)
        return digests
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    md5_hash, sha_hash = hashlib.md5(), hashlib.sha256()
    opener = opener or urllib.request.urlopen
    received = 0
    try:
        with opener(url) as response, open(part, "wb") as out:
            total = getattr(response, "headers", {}).get("Content-Length") or "?"
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                md5_hash.update(chunk)
                sha_hash.update(chunk)
                received += len(chunk)
                if progress is not None:
                    print(
                        f"\r{destination.name}: {received} / {total} bytes",
                        end="",
                        file=progress,
                        flush=True,
                    )
        if progress is not None:
            print(file=progress)
        digests = {"md5": md5_hash.hexdigest(), "sha256": sha_hash.hexdigest()}
        _check(destination, digests, expected, url)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, destination)
    return digests


def unzip(archive, directory, marker=None):
    """Extract a zip archive into ``directory`` once.

    Args:
        archive: the ``.zip`` file.
        directory: where to extract (created if needed).
        marker: optional file name written in ``directory`` when done; an
            archive whose marker exists is not extracted again.

    Returns:
        ``pathlib.Path`` of ``directory``.
    """
    directory = Path(directory)
    done = directory / marker if marker else None
    if done is not None and done.exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(directory)
    except zipfile.BadZipFile as error:
        raise ValueError(
            f"{archive}: not a readable zip archive ({error}); delete it and "
            f"download again, or put the archive there by hand"
        ) from None
    if done is not None:
        done.write_text(f"extracted from {Path(archive).name}\n")
    return directory


def default_progress():
    """``sys.stderr`` on a terminal, else None (no progress lines)."""
    return sys.stderr if sys.stderr.isatty() else None


def write_sums(path, digests):
    """Write ``{file name: digests}`` as a ``sha256sum``-style file.

    Args:
        path: the file to write (e.g. ``DIR/SHA256SUMS``).
        digests: dict of file names (relative to the file's folder) to the
            dicts :func:`fetch` returns.
    """
    lines = [f"{d['sha256']}  {name}\n" for name, d in sorted(digests.items())]
    Path(path).write_text("".join(lines))

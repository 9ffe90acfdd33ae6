"""The directory of a training run and atomic writes of its files.

A run directory holds:

* ``config.json``: the resolved configuration of the run;
* ``metrics.csv``: one row per finished epoch;
* ``checkpoint.npz``: model and optimizer state after the last finished
  epoch (see :mod:`ats.training.checkpoint`);
* ``results.json``: the final evaluation, timings and peak memory;
* ``report.md``: a short human-readable report;
* ``pictures/``: PNG figures.

Every file is written atomically: to a temporary file in the same directory,
flushed to disk, then renamed over the target with ``os.replace``. A process
killed at any moment (even by SIGKILL) leaves either the previous or the new
version of a file, never a torn one.

A process that trains into a run directory holds its lock
(:meth:`RunDirectory.lock`, an OS lock on ``.lock``): a second process
gets :class:`RunLockedError` instead of writing into the same run, and the
lock of a killed process is released by the OS with it, so it never blocks
``--resume``. Files that cannot be read (corrupt, truncated, not what they
should be) raise :class:`RunFileError` naming the file and the problem.
"""

import contextlib
import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no OS lock, runs are not protected.
    fcntl = None

__all__ = [
    "RunDirectory",
    "RunFileError",
    "RunLockedError",
    "atomic_write",
    "write_json",
]


class RunFileError(ValueError):
    """A file of a run (or of a data set) cannot be read or used: the
    message names the file and the problem, in one line."""


class RunLockedError(RuntimeError):
    """Another process is training into the run directory."""


def atomic_write(path, write):
    """Write a file atomically.

    Args:
        path: str or path-like, the file to (over)write.
        write: callable taking a binary file object and writing the content.

    A failing write (a full disk, a read-only directory) leaves the previous
    version in place, no temporary file, and raises ``OSError`` naming
    ``path`` (its ``filename``) rather than the temporary file.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno is not None:
            raise OSError(
                error.errno, f"cannot write {path}: {error.strerror}"
            ) from error
        raise


def _finite(value):
    """``value`` with every non-finite float replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path, value):
    """Write ``value`` as indented JSON, atomically; a non-finite float
    (which standard JSON cannot hold) is written as ``null``."""
    text = json.dumps(_finite(value), indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def read_json(path, what):
    """The JSON document in ``path``; :class:`RunFileError` naming the file
    if it is not one (``what``: what the file should be, for the message)."""
    try:
        return json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        problem = getattr(error, "msg", None) or "not UTF-8 text"
        raise RunFileError(
            f"{path}: not {what} (invalid JSON: {problem}); the file is "
            "corrupt or was replaced"
        ) from None


class RunDirectory:
    """The files of one training run, in ``path``.

    Args:
        path: str or path-like, the run directory (created on first write).

    Attributes:
        path: the directory, a ``pathlib.Path``.
        config_path: ``config.json``, the run's settings.
        metrics_path: ``metrics.csv``, one row per epoch.
        checkpoint_path: ``checkpoint.npz``, model and optimizer state.
        results_path: ``results.json``, the final evaluation.
        report_path: ``report.md``.
        pictures_dir: ``pictures/``.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.metrics_path = self.path / "metrics.csv"
        self.checkpoint_path = self.path / "checkpoint.npz"
        self.results_path = self.path / "results.json"
        self.report_path = self.path / "report.md"
        self.pictures_dir = self.path / "pictures"

    def __repr__(self):
        return f"RunDirectory({str(self.path)!r})"

    def has_checkpoint(self):
        """Whether a checkpoint has been written."""
        return self.checkpoint_path.is_file()

    def write_config(self, config):
        """Write the resolved configuration (a JSON-serialisable dict)."""
        write_json(self.config_path, config)

    def read_config(self, required=()):
        """The configuration dict.

        Raises ``FileNotFoundError`` naming the run if there is none, and
        :class:`RunFileError` if it is not valid JSON or lacks one of the
        ``required`` keys.
        """
        if not self.config_path.is_file():
            raise FileNotFoundError(
                f"run directory {str(self.path)!r} has no config.json: it is "
                "not a training run"
            )
        config = read_json(self.config_path, "a run's configuration")
        if not isinstance(config, dict):
            missing = "a JSON object"
        else:
            missing = ", ".join(repr(k) for k in required if k not in config)
        if missing:
            raise RunFileError(
                f"{self.config_path}: not a run's configuration (no "
                f"{missing}); the file is corrupt or was replaced"
            )
        return config

    def has_finished_epochs(self):
        """Whether the run has recorded a finished epoch or its results."""
        return self.results_path.is_file() or bool(self.read_metrics())

    @contextlib.contextmanager
    def lock(self):
        """Within the block, this process alone trains into the run.

        Creates the directory and takes an OS lock (``flock``) on its
        ``.lock`` file; the OS releases it when the process ends, even
        killed, so a stale ``.lock`` never blocks a new process.

        Raises:
            RunLockedError: another process holds the lock.
            OSError: the directory cannot be written (naming it).
        """
        lock_path = self.path / ".lock"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            handle = open(lock_path, "a")  # noqa: SIM115 (closed below)
        except OSError as error:
            raise OSError(
                error.errno,
                f"cannot write to run directory {self.path}: {error.strerror}",
            ) from error
        with handle:
            if fcntl is not None:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise RunLockedError(
                        f"run directory {str(self.path)!r} is in use by another "
                        "process (it holds the lock on .lock): wait for it to "
                        "finish or stop it, or choose another run directory"
                    ) from None
            try:
                yield self
            finally:
                if fcntl is not None:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def write_metrics(self, rows):
        """Write the per-epoch metrics, one dict per epoch, as CSV.

        Args:
            rows: list of dicts with the same keys, in epoch order.
        """
        text = io.StringIO()
        if rows:
            writer = csv.DictWriter(text, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        atomic_write(self.metrics_path, lambda f: f.write(text.getvalue().encode()))

    def read_metrics(self):
        """The per-epoch metrics: a list of dicts of floats (epoch as int)."""
        if not self.metrics_path.is_file():
            return []
        try:
            with open(self.metrics_path, newline="") as f:
                return [
                    {
                        key: int(value) if key == "epoch" else float(value)
                        for key, value in row.items()
                    }
                    for row in csv.DictReader(f)
                ]
        except (ValueError, TypeError, UnicodeDecodeError, csv.Error):
            raise RunFileError(
                f"{self.metrics_path}: not a table of per-epoch metrics (a "
                "value is missing or not a number); the file is corrupt"
            ) from None

    def write_results(self, results):
        """Write the final results (a JSON-serialisable dict)."""
        write_json(self.results_path, results)

    def read_results(self):
        """The final results dict, or None before the run has finished."""
        if not self.results_path.is_file():
            return None
        return read_json(self.results_path, "a run's results")

    def picture_path(self, name):
        """The path of picture ``name`` (e.g. ``"epoch_003.png"``)."""
        return self.pictures_dir / name

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
"""

import csv
import io
import json
import os
import tempfile
from pathlib import Path

__all__ = ["RunDirectory", "atomic_write", "write_json"]


def atomic_write(path, write):
    """Write a file atomically.

    Args:
        path: str or path-like, the file to (over)write.
        write: callable taking a binary file object and writing the content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path, value):
    """Write ``value`` as indented JSON, atomically."""
    text = json.dumps(value, indent=2, sort_keys=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


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

    def read_config(self):
        """The configuration dict; FileNotFoundError naming the run if none."""
        if not self.config_path.is_file():
            raise FileNotFoundError(
                f"run directory {str(self.path)!r} has no config.json: it is "
                "not a training run"
            )
        return json.loads(self.config_path.read_text())

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
        with open(self.metrics_path, newline="") as f:
            return [
                {
                    key: int(value) if key == "epoch" else float(value)
                    for key, value in row.items()
                }
                for row in csv.DictReader(f)
            ]

    def write_results(self, results):
        """Write the final results (a JSON-serialisable dict)."""
        write_json(self.results_path, results)

    def read_results(self):
        """The final results dict, or None before the run has finished."""
        if not self.results_path.is_file():
            return None
        return json.loads(self.results_path.read_text())

    def picture_path(self, name):
        """The path of picture ``name`` (e.g. ``"epoch_003.png"``)."""
        return self.pictures_dir / name

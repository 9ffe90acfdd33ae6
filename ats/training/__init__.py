"""Training runs: run directories, checkpoints, resume, evaluation, reports.

Generic parts (any compiled Keras classifier):

* :class:`RunDirectory`: the files of a run (config, metrics, checkpoint,
  results, report, pictures), all written atomically.
* :func:`save_checkpoint`, :func:`load_checkpoint`: model and optimizer
  state (and sampling seeds) in one ``.npz``.
* :func:`fit`: ``model.fit`` with per-epoch metrics, checkpoints and resume.
* :func:`evaluate`, :func:`deterministic_sampling`: test error with sampled
  patches and with the top attention positions.
* :func:`peak_memory_mb`, :func:`write_run_report`, :func:`compare_runs`.

Experiments:

* :mod:`ats.training.megapixel_mnist`: the Megapixel MNIST experiment behind
  ``ats mnist``.
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .evaluation import deterministic_sampling, evaluate, has_sampling
from .report import compare_runs, write_run_report
from .resources import peak_memory_mb
from .run import RunDirectory, atomic_write, write_json
from .trainer import fit, metrics_row

__all__ = [
    "RunDirectory",
    "atomic_write",
    "write_json",
    "save_checkpoint",
    "load_checkpoint",
    "fit",
    "metrics_row",
    "evaluate",
    "deterministic_sampling",
    "has_sampling",
    "peak_memory_mb",
    "write_run_report",
    "compare_runs",
]

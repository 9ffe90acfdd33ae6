"""Training runs of any attention-sampling experiment (no data set in here).

* :class:`RunDirectory`: the files of a run (config, metrics, checkpoint,
  results, report, pictures), all written atomically, under a lock; the
  errors :class:`RunFileError` (a file that cannot be read),
  :class:`RunLockedError` (a run in use), :class:`NonFiniteError` (a loss
  that became NaN), :class:`TrainingInterrupted` (Ctrl-C).
* :func:`save_checkpoint`, :func:`load_checkpoint`: model and optimizer
  state (and sampling seeds) in one ``.npz``.
* :func:`fit`: ``model.fit`` with per-epoch metrics, checkpoints and resume.
* :func:`evaluate`, :func:`deterministic_sampling`: test loss and metrics
  with sampled patches and with the top attention positions.
* :class:`TrainConfig`, :func:`hyperparameter`: hyper-parameters declared
  once (checks, presets and command-line flags read the declaration).
* :class:`Experiment`, :func:`train`, :func:`evaluate_run`,
  :func:`draw_pictures`: a whole run from an experiment's pieces.
* :func:`peak_memory_mb`, :func:`write_run_report`, :func:`compare_runs`,
  and the pictures (:mod:`ats.training.pictures`).

The experiments themselves, thin modules over this package, are in
:mod:`ats.experiments`.
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .classification import classification_metrics, mean_metrics, metrics_markdown
from .evaluation import deterministic_sampling, evaluate, has_sampling
from .experiment import Experiment
from .heatmaps import save_gallery, save_heatmap
from .hyperparameters import TrainConfig, hyperparameter
from .pictures import AttentionPictures, save_attention_figure, save_training_curves
from .report import compare_runs, write_run_report
from .resources import peak_memory_mb
from .run import RunDirectory, RunFileError, RunLockedError, atomic_write, write_json
from .saved_run import draw_pictures, evaluate_run
from .trainer import NonFiniteError, fit, metrics_row
from .training_run import TrainingInterrupted, train

__all__ = [
    "RunDirectory",
    "RunFileError",
    "RunLockedError",
    "NonFiniteError",
    "TrainingInterrupted",
    "atomic_write",
    "write_json",
    "save_checkpoint",
    "load_checkpoint",
    "fit",
    "metrics_row",
    "evaluate",
    "deterministic_sampling",
    "has_sampling",
    "TrainConfig",
    "hyperparameter",
    "Experiment",
    "train",
    "evaluate_run",
    "draw_pictures",
    "AttentionPictures",
    "save_attention_figure",
    "save_training_curves",
    "peak_memory_mb",
    "classification_metrics",
    "mean_metrics",
    "metrics_markdown",
    "save_heatmap",
    "save_gallery",
    "write_run_report",
    "compare_runs",
]

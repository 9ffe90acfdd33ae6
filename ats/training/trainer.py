"""Fit a compiled model epoch by epoch with checkpoints, metrics and resume.

:func:`fit` wraps ``model.fit``. After every epoch it appends a row to the
run's ``metrics.csv`` (train and test loss and metrics, seconds spent),
calls an optional per-epoch hook (e.g. to draw pictures) and writes a
checkpoint atomically. With ``resume=True`` it restores the last checkpoint
and continues with the next epoch, so a run killed at any moment loses at
most the epoch in progress. An epoch whose loss or metrics are not finite
stops the run (:class:`NonFiniteError`) before its checkpoint: the run
keeps its last finite epoch.
"""

import contextlib
import math
import signal
import sys
import threading
import time

import keras

from .. import checks
from .checkpoint import load_checkpoint, save_checkpoint
from .run import RunFileError

__all__ = [
    "progress_bars",
    "NonFiniteError",
    "check_resumable",
    "fit",
    "metrics_row",
    "named_metrics",
]


class NonFiniteError(ArithmeticError):
    """The loss (or a metric) of an epoch is NaN or infinite."""


def check_resumable(run):
    """Raise ``RunFileError`` if ``run`` cannot be resumed: it has finished
    epochs (or results) but no checkpoint, so resuming would start over and
    overwrite them."""
    if not run.has_checkpoint() and run.has_finished_epochs():
        done = len(run.read_metrics())
        raise RunFileError(
            f"{run.checkpoint_path}: missing, but {run.path} has "
            f"{'results' if run.results_path.is_file() else 'metrics'} of "
            f"{done} finished epoch(s): resuming would start over and "
            "overwrite them; restore the checkpoint, or start a new run in "
            "another directory"
        )


def progress_bars(verbose):
    """The ``verbose`` of Keras' ``fit``/``evaluate``/``predict`` for ours.

    Keras' progress bars are drawn on a terminal only: written to a file or
    a pipe they would fill a log with a line per step, so there the run
    prints its own line per epoch and Keras stays silent.

    Args:
        verbose: 0 (silent) or 1 (progress).

    Returns:
        1 when ``verbose`` and standard output is a terminal, else 0.
    """
    return 1 if verbose and sys.stdout.isatty() else 0


def named_metrics(logs, prefix=""):
    """The metrics of Keras logs under the names this package reports.

    An ``accuracy`` metric is reported as ``error`` (``1 - accuracy``), the
    others under their own names.

    Args:
        logs: dict of Keras logs (e.g. ``model.evaluate(return_dict=True)``).
        prefix: the prefix of the keys to read (``"val_"``: validation
            logs), dropped from the names.

    Returns:
        A dict of floats, ``loss`` first.
    """
    named = {}
    for key, value in logs.items():
        if not key.startswith(prefix) or (not prefix and key.startswith("val_")):
            continue
        name = key[len(prefix) :]
        if name == "accuracy":
            named["error"] = 1.0 - float(value)
        else:
            named[name] = float(value)
    return dict(sorted(named.items(), key=lambda item: item[0] != "loss"))


def metrics_row(epoch, logs, train_seconds, test_seconds):
    """One row of ``metrics.csv`` from Keras' epoch logs.

    Args:
        epoch: int, the 1-based number of the finished epoch.
        logs: dict of Keras' epoch logs: ``loss`` and the compiled metrics,
            and the same prefixed ``val_`` when fitted with validation data.
        train_seconds: float, wall time of the epoch's training steps.
        test_seconds: float, wall time of its evaluation on the test set.

    Returns:
        A dict ``epoch``, each training metric (see :func:`named_metrics`:
        ``loss``, ``error`` for an ``accuracy`` metric, ...), the same
        prefixed ``test_``, ``train_seconds`` and ``test_seconds``.
    """
    if "loss" not in logs:
        raise ValueError(f"epoch logs must hold a `loss`, got {sorted(logs)}")
    row = {"epoch": int(epoch), **named_metrics(logs)}
    row.update({f"test_{k}": v for k, v in named_metrics(logs, "val_").items()})
    row.update(train_seconds=float(train_seconds), test_seconds=float(test_seconds))
    return row


def _summary(row):
    """``loss 0.1234 error 5.00%`` of the train or test (``test_``) metrics."""
    parts = []
    for prefix, label in (("", "train"), ("test_", "test")):
        values = [
            f"{name} {row[prefix + name]:.2%}"
            if name == "error"
            else f"{name} {row[prefix + name]:.4f}"
            for name in row
            if name not in ("epoch", "train_seconds", "test_seconds")
            and not name.startswith("test_")
            and prefix + name in row
        ]
        if values:
            parts.append(f"{label} " + " ".join(values))
    return ", ".join(parts)


class _Interruption:
    """Ctrl-C (SIGINT) during ``model.fit``, raised between steps.

    Python's default handler raises ``KeyboardInterrupt`` wherever the main
    thread is, also in places that swallow it (a finalizer, a callback of
    the backend's runtime), and training then goes on. Within
    :meth:`handling`, a first SIGINT is only recorded, and raised as
    ``KeyboardInterrupt`` by :meth:`check` at the end of the step in
    progress; a second one interrupts at once.
    """

    def __init__(self):
        self.requested = False

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    @contextlib.contextmanager
    def handling(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)

    def check(self):
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt


class _EpochRecorder(keras.callbacks.Callback):
    """Records metrics, runs the hook and checkpoints after every epoch."""

    def __init__(self, run, history, epochs, on_epoch_end, verbose, writes):
        super().__init__()
        self.run, self.writes = run, writes
        self.history = history
        self.epochs = epochs
        self.hook = on_epoch_end
        self.verbose = verbose
        self._start = self._test_start = None
        self.interruption = _Interruption()

    def on_train_batch_end(self, batch, logs=None):
        self.interruption.check()

    def on_test_batch_end(self, batch, logs=None):
        self.interruption.check()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._test_start = None

    def on_test_begin(self, logs=None):
        if self._start is not None and self._test_start is None:
            self._test_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        end = time.perf_counter()
        test_start = self._test_start or end
        row = metrics_row(
            epoch + 1, logs or {}, test_start - self._start, end - test_start
        )
        bad = {k: v for k, v in row.items() if not math.isfinite(v)}
        if bad:
            kept = (
                f"the checkpoint of epoch {epoch}"
                if epoch and self.writes
                else "no checkpoint"
            )
            values = ", ".join(f"{k} is {v}" for k, v in bad.items())
            raise NonFiniteError(
                f"epoch {epoch + 1}: {values}: training stopped (the run "
                f"keeps {kept}); lower the learning rate or check the data"
            )
        self.history.append(row)
        if self.hook is not None:
            self.hook(epoch + 1)
        if self.writes:
            save_checkpoint(
                self.run.checkpoint_path,
                self.model,
                {"epoch": epoch + 1, "history": self.history},
            )
            self.run.write_metrics(self.history)
        if self.verbose:
            print(
                f"epoch {epoch + 1}/{self.epochs}: {_summary(row)} "
                f"({row['train_seconds']:.1f} s training, "
                f"{row['test_seconds']:.1f} s testing)",
                flush=True,
            )


def fit(
    model,
    train_data,
    test_data,
    run,
    epochs,
    resume=False,
    on_epoch_end=None,
    verbose=1,
    writes=True,
    steps_per_epoch=None,
    restored=None,
    learning_rate=None,
):
    """Train ``model`` for ``epochs`` epochs, checkpointing every epoch.

    Args:
        model: a compiled ``keras.Model``.
        train_data: a ``keras.utils.PyDataset`` of ``(x, y)`` batches.
        test_data: a ``keras.utils.PyDataset``, evaluated after every
            epoch, or None.
        run: the ``RunDirectory`` to write ``metrics.csv`` and
            ``checkpoint.npz`` to.
        epochs: int, the total number of epochs (including those done before
            a resume).
        resume: bool, continue from the run's checkpoint. The model's and
            optimizer's variables, the epoch and the metrics are restored, and
            ``train_data.on_epoch_end()`` is called once per finished epoch so
            that its shuffling continues as in an uninterrupted run. Without
            a checkpoint (a run interrupted in its first epoch) training
            starts from the first epoch; a run with finished epochs but no
            checkpoint is refused (``RunFileError``).
        on_epoch_end: optional callable ``(epoch) -> None`` called with the
            1-based number of every finished epoch, before its checkpoint.
        verbose: 0 (silent), 1 (progress bar and a line per epoch).
        writes: bool, write the checkpoints and metrics (False on every
            process but the first of a distributed run).
        steps_per_epoch: optional int, training steps per epoch (default:
            all of ``train_data``).
        restored: with ``resume``, the state :func:`load_checkpoint` has
            already restored into ``model`` (None: read the checkpoint).
        learning_rate: optional function ``epoch (0-based) -> float``, the
            optimizer's learning rate set at the start of every epoch (e.g.
            ``ats.training.schedule.cooldown_learning_rate``); None leaves
            the optimizer's own.

    Returns:
        The list of metrics rows of all epochs (see :func:`metrics_row`).

    Raises:
        NonFiniteError: an epoch's loss or metrics are not finite (its
            checkpoint and metrics are not written).
    """
    epochs = checks.integer("epochs", epochs, minimum=1, where="fit")
    history, initial_epoch = [], 0
    if resume:
        check_resumable(run)
    if resume and not run.has_checkpoint() and verbose:
        print(
            f"{run.path} has no checkpoint: starting from the first epoch", flush=True
        )
    if resume and run.has_checkpoint():
        state = restored or load_checkpoint(run.checkpoint_path, model)
        initial_epoch, history = state["epoch"], state["history"]
        # The checkpoint is the reference: drop rows of a later, lost epoch.
        if writes:
            run.write_metrics(history)
        for _ in range(initial_epoch):
            train_data.on_epoch_end()
        if verbose:
            print(f"resuming {run.path} after epoch {initial_epoch}", flush=True)
    if initial_epoch < epochs:
        recorder = _EpochRecorder(run, history, epochs, on_epoch_end, verbose, writes)
        callbacks = [recorder]
        if learning_rate is not None:
            callbacks.append(
                keras.callbacks.LearningRateScheduler(
                    lambda epoch, _: learning_rate(epoch)
                )
            )
        bars = progress_bars(verbose)
        if bars:
            # First, so that the bar of an epoch ends before its summary.
            callbacks.insert(0, keras.callbacks.ProgbarLogger())
        with recorder.interruption.handling():
            model.fit(
                train_data,
                validation_data=test_data,
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps_per_epoch,
                callbacks=callbacks,
                verbose=bars,
            )
        recorder.interruption.check()
    return history

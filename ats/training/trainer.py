"""Fit a compiled model epoch by epoch with checkpoints, metrics and resume.

:func:`fit` wraps ``model.fit``. After every epoch it appends a row to the
run's ``metrics.csv`` (train and test loss and error, seconds spent), calls
an optional per-epoch hook (e.g. to draw pictures) and writes a checkpoint
atomically. With ``resume=True`` it restores the last checkpoint and
continues with the next epoch, so a run killed at any moment loses at most
the epoch in progress.
"""

import time

import keras

from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["fit", "metrics_row"]


def metrics_row(epoch, logs, train_seconds, test_seconds):
    """One row of ``metrics.csv`` from Keras' epoch logs.

    Args:
        epoch: int, the 1-based number of the finished epoch.
        logs: dict with ``loss``, ``accuracy``, ``val_loss`` and
            ``val_accuracy`` (the model must be compiled with an
            ``"accuracy"`` metric).
        train_seconds: float, wall time of the epoch's training steps.
        test_seconds: float, wall time of its evaluation on the test set.

    Returns:
        A dict ``epoch, loss, error, test_loss, test_error, train_seconds,
        test_seconds`` (errors are ``1 - accuracy``).
    """
    missing = {"loss", "accuracy", "val_loss", "val_accuracy"} - set(logs)
    if missing:
        raise ValueError(
            f"epoch logs lack {sorted(missing)}: compile the model with "
            "metrics=['accuracy'] and fit it with validation data"
        )
    return {
        "epoch": int(epoch),
        "loss": float(logs["loss"]),
        "error": 1.0 - float(logs["accuracy"]),
        "test_loss": float(logs["val_loss"]),
        "test_error": 1.0 - float(logs["val_accuracy"]),
        "train_seconds": float(train_seconds),
        "test_seconds": float(test_seconds),
    }


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
                f"epoch {epoch + 1}/{self.epochs}: train loss "
                f"{row['loss']:.4f} error {row['error']:.2%}, test loss "
                f"{row['test_loss']:.4f} error {row['test_error']:.2%} "
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
):
    """Train ``model`` for ``epochs`` epochs, checkpointing every epoch.

    Args:
        model: a ``keras.Model`` compiled with an ``"accuracy"`` metric.
        train_data: a ``keras.utils.PyDataset`` of ``(x, y)`` batches.
        test_data: a ``keras.utils.PyDataset``, evaluated after every epoch.
        run: the ``RunDirectory`` to write ``metrics.csv`` and
            ``checkpoint.npz`` to.
        epochs: int, the total number of epochs (including those done before
            a resume).
        resume: bool, continue from the run's checkpoint. The model's and
            optimizer's variables, the epoch and the metrics are restored, and
            ``train_data.on_epoch_end()`` is called once per finished epoch so
            that its shuffling continues as in an uninterrupted run. Without
            a checkpoint (a run interrupted in its first epoch) training
            starts from the first epoch.
        on_epoch_end: optional callable ``(epoch) -> None`` called with the
            1-based number of every finished epoch, before its checkpoint.
        verbose: 0 (silent), 1 (progress bar and a line per epoch).
        writes: bool, write the checkpoints and metrics (False on every
            process but the first of a distributed run).

    Returns:
        The list of metrics rows of all epochs (see :func:`metrics_row`).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"`epochs` must be a positive int, got {epochs!r}")
    history, initial_epoch = [], 0
    if resume and not run.has_checkpoint() and verbose:
        print(
            f"{run.path} has no checkpoint: starting from the first epoch", flush=True
        )
    if resume and run.has_checkpoint():
        state = load_checkpoint(run.checkpoint_path, model)
        initial_epoch, history = state["epoch"], state["history"]
        # The checkpoint is the reference: drop rows of a later, lost epoch.
        if writes:
            run.write_metrics(history)
        for _ in range(initial_epoch):
            train_data.on_epoch_end()
        if verbose:
            print(f"resuming {run.path} after epoch {initial_epoch}", flush=True)
    if initial_epoch < epochs:
        callbacks = [
            _EpochRecorder(run, history, epochs, on_epoch_end, verbose, writes)
        ]
        if verbose:
            # First, so that the bar of an epoch ends before its summary.
            callbacks.insert(0, keras.callbacks.ProgbarLogger())
        model.fit(
            train_data,
            validation_data=test_data,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=verbose,
        )
    return history

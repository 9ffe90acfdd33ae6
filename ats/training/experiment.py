"""A training run of an experiment: the generic steps, the experiment's pieces.

An experiment (a data set and the models trained on it) subclasses
:class:`Experiment` and fills in its pieces: how to open its data, build and
compile a model, and batch a split. :func:`train`
(:mod:`ats.training.training_run`) then does what every run does, in this
order:

1. resolve the configuration (or read it back to ``resume``), open the
   data, check it (labels among the classes, a training set), build the
   model and the batches, run the model on a training image and read the
   checkpoint to resume, all before writing a file;
2. lock the run directory (:meth:`RunDirectory.lock`: a second process is
   refused), write ``config.json``; fit with a row of ``metrics.csv``, a checkpoint
   and (when the experiment draws them) ``pictures/epoch_NNN.png`` after
   every epoch (:func:`ats.training.fit`);
3. evaluate with sampled and with the most attended patches
   (:func:`ats.training.evaluate`), draw ``curves.png`` and the final
   pictures, write ``results.json`` and ``report.md``, then
   :meth:`Experiment.final_evaluation`.

:func:`evaluate_run` and :func:`draw_pictures`
(:mod:`ats.training.saved_run`) do step 3 again from a run's checkpoint.
:mod:`ats.experiments` holds the experiments.
"""

from .hyperparameters import TrainConfig
from .saved_run import draw_pictures, evaluate_run
from .training_run import train

__all__ = ["Experiment"]


class Experiment:
    """The pieces of an experiment that :func:`train` puts together.

    Subclass it, set the attributes and implement the methods that raise
    ``NotImplementedError``.

    Attributes:
        name: str, the experiment's identifier in ``config.json``.
        title: str, its name in reports and figures.
        command: str, the command that trains it, named in messages.
        config_class: its hyper-parameters, a :class:`TrainConfig` subclass.
        default_preset: the preset of a run without one (None: the
            experiment has no presets).
        n_classes: the number of classes of a classification experiment
            (its labels are checked to be in ``[0, n_classes)`` before
            training), or None.
    """

    name = "experiment"
    title = "Experiment"
    command = "train"
    config_class = TrainConfig
    default_preset = None
    n_classes = None

    def load_data(self, data_dir):
        """Open the data set in ``data_dir``."""
        raise NotImplementedError

    def describe_data(self, data):
        """``(fields, summary)``: a JSON-serialisable dict describing
        ``data`` (``config.json``'s ``data``) and a line for reports."""
        raise NotImplementedError

    def check(self, config, data):
        """Raise ``ValueError`` if ``config`` does not fit ``data``."""

    def build_model(self, config, data, setup=None):
        """The compiled model of a run: wrapped with ``setup.wrap`` (when a
        ``setup`` is given) before compiling; called in ``setup.scope()``."""
        raise NotImplementedError

    def sequence(self, data, split, config, setup=None):
        """The ``PyDataset`` of ``split`` (``"train"`` or ``"test"``) this
        process feeds, or None when the split is empty."""
        raise NotImplementedError

    def validation_split(self, data):
        """The split evaluated after every epoch (``metrics.csv``'s
        ``test_*`` columns): ``"test"``, or e.g. ``"val"`` for a data set
        that has a validation split (the test split is then evaluated once,
        at the end)."""
        return "test"

    def labels(self, data, split):
        """The labels of ``split`` (checked against ``n_classes``), or None."""
        return None

    def train_images(self, config, data):
        """The number of images in the training set a run uses (an epoch
        of ``config.steps_per_epoch`` steps may see fewer)."""
        raise NotImplementedError

    def model_name(self, config):
        """The name of the run's model in results and reports."""
        return getattr(config, "model", "ats")

    def pictures(self, run, model, data, config):
        """An :class:`ats.training.pictures.AttentionPictures` of the run, or
        None to draw only the training curves."""
        return None

    def final_evaluation(self, run, model, data, config, verbose):
        """More evaluation of a trained model, written to the run directory
        (e.g. per-class metrics): called by :func:`train` once the run's
        results are written and by :func:`evaluate_run`, with the model and
        the data they hold (on the process that writes). Default: nothing."""

    def config(self, preset=None, **overrides):
        """The configuration of a new run: ``config_class``'s defaults (or
        those of ``preset``, for an experiment that has presets) with
        ``overrides`` (None values ignored)."""
        if preset is not None:
            raise ValueError(f"{self.title} has no presets, got preset={preset!r}")
        return self.config_class().with_overrides(overrides)

    def train(self, data_dir, run_dir, preset=None, **options):
        """:func:`train` a run of this experiment."""
        return train(self, data_dir, run_dir, preset, **options)

    def evaluate_run(self, run_dir, data_dir=None, verbose=1, on_result=None):
        """:func:`evaluate_run` a run of this experiment."""
        return evaluate_run(self, run_dir, data_dir, verbose, on_result)

    def draw_pictures(self, run_dir, data_dir=None, images=None):
        """:func:`draw_pictures` of a run of this experiment."""
        return draw_pictures(self, run_dir, data_dir, images)

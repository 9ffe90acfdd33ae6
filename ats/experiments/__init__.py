"""The experiments of the paper, each a thin module over :mod:`ats.training`.

* :mod:`ats.experiments.megapixel_mnist`: Megapixel MNIST, attention
  sampling and two CNN baselines (``ats mnist ...``).
* :mod:`ats.experiments.gigapixel_mnist`: Megapixel MNIST scaled up into
  pyramidal TIFFs, trained on the lazy path (``ats gigapixel ...``).

An experiment subclasses :class:`ats.training.Experiment` (how to open its
data, build its model, batch a split) and declares its hyper-parameters as a
subclass of :class:`ats.training.TrainConfig`; the command line derives its
flags from that declaration (:mod:`ats.cli`).
"""

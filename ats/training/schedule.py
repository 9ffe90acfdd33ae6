"""The learning rate of each epoch: constant, then a linear cool-down."""

from .. import checks

__all__ = ["cooldown_learning_rate"]


def cooldown_learning_rate(learning_rate, epochs, cooldown_epochs):
    """The learning rate of an epoch: ``learning_rate`` until the last
    ``cooldown_epochs`` epochs, over which it falls linearly, to
    ``learning_rate / (cooldown_epochs + 1)`` in the last epoch.

    Attention sampling's per-step estimates are noisy, so at a constant rate
    the test error swings by a few points from epoch to epoch; a short
    cool-down at the end settles the weights without slowing the epochs
    before it, as a cosine decay over the whole run does (measured in
    ``docs/megapixel_mnist.md``).

    Args:
        learning_rate: float > 0, the rate before the cool-down.
        epochs: int >= 1, the run's total number of epochs.
        cooldown_epochs: int >= 0, the epochs of the cool-down (0: constant).

    Returns:
        A function ``epoch (0-based) -> learning rate``, e.g. for
        ``keras.callbacks.LearningRateScheduler``: it depends on the epoch
        alone, so a resumed run continues the schedule exactly.

    Example:
        >>> from ats.training.schedule import cooldown_learning_rate
        >>> rate = cooldown_learning_rate(0.3, epochs=5, cooldown_epochs=2)
        >>> [round(rate(epoch), 3) for epoch in range(5)]
        [0.3, 0.3, 0.3, 0.2, 0.1]
    """
    where = "cooldown_learning_rate"
    learning_rate = checks.real(
        "learning_rate", learning_rate, 0, exclusive_minimum=True, where=where
    )
    epochs = checks.integer("epochs", epochs, minimum=1, where=where)
    cooldown_epochs = checks.integer(
        "cooldown_epochs", cooldown_epochs, minimum=0, where=where
    )

    def rate(epoch):
        left = epochs - epoch
        if left > cooldown_epochs:
            return learning_rate
        return learning_rate * left / (cooldown_epochs + 1)

    return rate

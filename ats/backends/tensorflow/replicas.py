"""The replica running the current computation, under ``tf.distribute``."""

import tensorflow as tf

__all__ = ["replica_index"]


def replica_index():
    """The id of the replica in sync running the current function.

    Returns:
        A scalar int32 tensor inside a replica function of a strategy
        (global across workers), else 0.
    """
    if not tf.distribute.has_strategy():
        return 0
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context
        return 0
    return context.replica_id_in_sync_group

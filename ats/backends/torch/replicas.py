"""The replica running the current computation, under ``torch.distributed``."""

import torch.distributed as dist

__all__ = ["replica_index"]


def replica_index():
    """The rank of this process in the default process group.

    Returns:
        int, 0 when ``torch.distributed`` is not initialized.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return 0

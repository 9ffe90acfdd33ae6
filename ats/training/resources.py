"""Peak memory of the current process."""

import sys

__all__ = ["peak_memory_mb"]


def peak_memory_mb():
    """The peak resident set size of this process so far, in MiB.

    Read from ``resource.getrusage(RUSAGE_SELF).ru_maxrss``: the largest
    amount of physical memory the process has held at once, whatever held it
    (the Python heap, the backend's buffers, the data). To compare models,
    train each in a process of its own, as the ``ats`` CLI does.

    Returns:
        A float, or None where the ``resource`` module is missing (Windows).
    """
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10

"""The resident memory of this process: now, and its peak.

One reading of the peak serves the training reports (``peak_memory_mb`` of a
whole run) and the benchmarks (the peak of one phase of a process, after
``reset_peak_memory``).
"""

import sys

__all__ = ["current_memory_mb", "peak_memory_mb", "reset_peak_memory"]

MIB = 2**20


def _status_mb(field):
    """A ``kB`` field of Linux's ``/proc/self/status`` in MiB, or None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024 / MIB
    except OSError:
        pass
    return None


def current_memory_mb():
    """The resident set size (RSS) of this process now, in MiB.

    Returns:
        A float, or None off Linux (no ``/proc/self/status``).
    """
    return _status_mb("VmRSS")


def peak_memory_mb():
    """The peak resident set size (RSS) of this process, in MiB.

    The largest amount of physical memory the process has held at once,
    whatever held it (the Python heap, the backend's buffers, the data). On
    Linux it is the kernel's high-water mark ``VmHWM``: the peak since the
    process started, or since the last ``reset_peak_memory``. Elsewhere it
    is ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the peak over the whole
    process, which cannot be reset. To compare models, train each in a
    process of its own, as the ``ats`` CLI does.

    Returns:
        A float, or None where neither is available (Windows).

    Example:
        >>> from ats.training.resources import peak_memory_mb
        >>> peak_memory_mb() > 0
        True
    """
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # macOS reports bytes, other systems KiB.
    return peak / MIB if sys.platform == "darwin" else peak / 1024


def reset_peak_memory():
    """Reset the peak that ``peak_memory_mb`` reads to the current RSS.

    Writes ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0), so that the
    next ``peak_memory_mb`` is the peak of what ran in between.

    Returns:
        True if reset; False where the peak cannot be reset (then
        ``peak_memory_mb`` stays the whole process's).
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False

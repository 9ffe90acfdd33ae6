"""Memory: the peak resident set size (RSS) of one phase of a process.

``MemoryProbe`` reads ``ats.training.resources.peak_memory_mb`` (Linux's
``VmHWM``) after resetting it at the start of the phase;
``release_free_memory`` first hands the allocator's free pages back to the
system, so that the RSS counts memory in use. Meant for a process of its
own (``isolation.run_in_subprocess``): importing this module imports ``ats``
and Keras.
"""

import ctypes

from ats.training.resources import (
    current_memory_mb,
    peak_memory_mb,
    reset_peak_memory,
)


def release_free_memory():
    """Hand the C allocator's free heap pages back to the operating system.

    glibc keeps pages that were freed (the XLA compiler's working memory, a
    finished step's buffers) in the process, where they still count in its
    RSS; ``malloc_trim(0)`` releases them, so that RSS read afterwards is
    memory in use.

    Returns:
        True if done (glibc), False where there is no ``malloc_trim``.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim(0)
    return True


class MemoryProbe:
    """The peak resident set size (RSS) of one phase of this process.

    ``start()`` resets the kernel's peak-RSS mark (``VmHWM``) to the current
    RSS and records that RSS as the phase's baseline; ``stop()`` reads the
    peak reached since. Where the mark cannot be reset (not Linux), the peak
    is the whole process's ``ru_maxrss`` and ``method`` says so.

    Example::

        probe = MemoryProbe().start()
        train()
        probe.stop()  # {"baseline_mib": ..., "peak_mib": ..., "method": ...}
    """

    def start(self):
        """Reset the peak mark and record the baseline; returns ``self``."""
        self.reset = reset_peak_memory()
        self.baseline = current_memory_mb() or 0.0
        return self

    def stop(self):
        """The phase's memory, in MiB.

        Returns:
            dict with ``baseline_mib`` (RSS when the phase started),
            ``peak_mib`` (peak RSS during the phase) and ``method``.
        """
        return {
            "baseline_mib": self.baseline,
            "peak_mib": peak_memory_mb(),
            "method": "VmHWM reset at the start of the phase"
            if self.reset
            else "ru_maxrss of the whole process",
        }

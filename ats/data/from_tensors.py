"""The original library's module path of ``FromTensors``
(``from ats.data.from_tensors import FromTensors``): it lives in
``ats.core`` now, and ``ats.data`` exports it too."""

from ..core.from_tensors import FromTensors

__all__ = ["FromTensors"]

"""The original library's module path of ``MultiResolutionBatch``
(``from ats.data.base import MultiResolutionBatch``): it lives in
``ats.core`` now, and ``ats.data`` exports it too."""

from ..core.multi_resolution import MultiResolutionBatch

__all__ = ["MultiResolutionBatch"]

"""Tensor operations that the attention-sampling layers are built from."""

from .extract_patches import extract_patches
from .patch_offsets import patch_offsets

__all__ = ["extract_patches", "patch_offsets"]

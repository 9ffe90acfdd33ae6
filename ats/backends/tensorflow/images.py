"""Which of Keras's image operations XLA compiles on TensorFlow.

Two of TensorFlow's kernels that ``keras.ops.image`` uses have no XLA
implementation: ``ResizeBicubic`` (``resize(..., "bicubic")``) and
``ImageProjectiveTransformV3`` (``affine_transform``). A layer that uses
them sets ``supports_jit = False`` so that Keras does not jit-compile the
model (as ``keras.layers.RandomTranslation`` does).
"""

__all__ = ["supports_jit"]


def supports_jit(operation, interpolation):
    """Whether XLA compiles ``keras.ops.image.<operation>`` on TensorFlow.

    Args:
        operation: ``"resize"`` or ``"affine_transform"``.
        interpolation: str, the operation's interpolation.

    Returns:
        bool.
    """
    if operation == "affine_transform":
        return False
    return interpolation != "bicubic"

"""What the layers on batches of images share."""

from ... import checks
from ...backends import implementation

__all__ = ["check_image_batch", "image_op_supports_jit"]


def check_image_batch(layer, input_shape):
    """Raise unless ``input_shape`` is that of a batch of 2D images.

    Args:
        layer: the layer being built (named in the message).
        input_shape: its input shape, ``(B, H, W, C)`` or ``(B, C, H, W)``.
    """
    if len(input_shape) != 4:
        checks.fail(
            "inputs",
            "4D (a batch of images)",
            tuple(input_shape),
            type(layer).__name__,
        )


def image_op_supports_jit(operation, interpolation):
    """Whether ``keras.ops.image.<operation>`` can run in an XLA-compiled
    step on the active backend (``ats.backends.<backend>.images``; True
    where the backend says nothing).

    Args:
        operation: ``"resize"`` or ``"affine_transform"``.
        interpolation: str, the operation's interpolation.

    Returns:
        bool.
    """
    supports_jit = implementation("images", "supports_jit")
    return True if supports_jit is None else supports_jit(operation, interpolation)

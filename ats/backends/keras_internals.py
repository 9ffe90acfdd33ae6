"""The private Keras APIs ``ats`` relies on, each wrapped once here.

Keras 3 exports no public equivalent of these; if a Keras release moves
them, this is the only module to change.
"""

from keras.src.backend.common.symbolic_scope import (
    in_symbolic_scope as _in_symbolic_scope,
)

__all__ = ["flatten_layers", "in_symbolic_scope"]


def in_symbolic_scope():
    """Whether Keras is only inferring output shapes right now.

    On PyTorch Keras infers a layer's output shape by calling it on
    placeholder tensors; code with side effects on the host (reading
    patches from files) must not run then. Keras exposes this only as
    ``keras.src.backend.common.symbolic_scope.in_symbolic_scope``.

    Returns:
        bool.
    """
    return _in_symbolic_scope()


def flatten_layers(model, include_self=False):
    """Every layer nested in ``model`` (recursively), in Keras's order.

    ``model.layers`` lists only the direct children; the recursive walk that
    Keras uses itself (for ``model.weights``, for ``get_layer`` on nested
    models) is the private ``Layer._flatten_layers``.

    Args:
        model: a ``keras.layers.Layer`` (e.g. a ``keras.Model``).
        include_self: bool, whether to list ``model`` itself first.

    Returns:
        list of ``keras.layers.Layer``.
    """
    return list(model._flatten_layers(include_self=include_self, recursive=True))

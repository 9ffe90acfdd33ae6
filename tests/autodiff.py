"""Gradients of a scalar function of tensors with the active backend's autodiff.

Test helper only: the library itself never differentiates by hand.
"""

import keras
import numpy as np


def gradients(fn, *args):
    """Return ``(value, [d value / d arg for arg in args])`` as numpy.

    Args:
        fn: a function of the tensors ``args`` returning a scalar tensor.
        *args: numpy arrays (float32) to differentiate with respect to.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        value, grads = jax.jit(
            jax.value_and_grad(lambda *a: fn(*a), argnums=tuple(range(len(args))))
        )(*args)
        return np.asarray(value), [np.asarray(g) for g in grads]
    if backend == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in args]
        value = fn(*tensors)
        # A value that does not depend on the inputs has no graph at all.
        grads = (
            torch.autograd.grad(value, tensors, allow_unused=True)
            if value.requires_grad
            else [None] * len(tensors)
        )
        return value.detach().cpu().numpy(), [
            np.zeros_like(a) if g is None else g.detach().cpu().numpy()
            for a, g in zip(args, grads)
        ]
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.Variable(a) for a in args]
        with tf.GradientTape() as tape:
            value = fn(*[tf.identity(t) for t in tensors])
        grads = tape.gradient(value, tensors)
        return value.numpy(), [
            np.zeros_like(a) if g is None else tf.convert_to_tensor(g).numpy()
            for a, g in zip(args, grads)
        ]
    raise NotImplementedError(f"no autodiff helper for backend {backend!r}")

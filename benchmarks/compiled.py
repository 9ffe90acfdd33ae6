"""Each backend's compiled mode, in which the benchmarks run it.

JAX: ``jit``; TensorFlow: XLA (``jit_compile=True``); PyTorch: eager
(Keras's ``torch.compile`` path is experimental and slow to compile).
Keras and the backends are imported inside the functions, so that a driver
process importing this module loads none of them.
"""

BACKENDS = ("jax", "torch", "tensorflow")
MODES = {"jax": "jit (XLA)", "tensorflow": "jit_compile=True (XLA)", "torch": "eager"}


def backend():
    """The name of the active Keras backend."""
    import keras

    return keras.backend.backend()


def backend_and_mode():
    """``{"backend": ..., "mode": ...}``: what a measurement ran on."""
    name = backend()
    return {"backend": name, "mode": MODES[name]}


def jit_compile():
    """The ``jit_compile`` argument of ``Model.compile`` for this backend.

    True (XLA) on JAX and TensorFlow; False on PyTorch, which runs eagerly.
    """
    return backend() != "torch"


def compile_function(fn):
    """``fn`` in the active backend's compiled mode.

    JAX: ``jax.jit``; TensorFlow: ``tf.function(jit_compile=True)``;
    PyTorch: ``fn`` unchanged (eager).
    """
    name = backend()
    if name == "jax":
        import jax

        return jax.jit(fn)
    if name == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    return fn

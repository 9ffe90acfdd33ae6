"""The models and inputs the training benchmarks run, from the ``paper`` preset.

* ``"ats"``: ``ats.models.megapixel_mnist.ats_model`` with the hyper-parameters
  of the ``paper`` preset (``ats.experiments.megapixel_mnist``): 10 patches of
  50x50 sampled without replacement, attention on a view downscaled by 0.12,
  entropy regularizer 1e-4, Adam with learning rate 1e-3 and gradient
  clipping 1.0. Inputs ``[x_low, x_high]``.
* ``"cnn"``: ``full_image_cnn``, the same feature network applied to the whole
  ``x_high``, with the same optimizer.
* ``"pre-extracted"``: the attention and feature networks of ``"ats"`` with
  sampling, patch extraction and the expectation removed: it is fed the
  patches (``[x_low, patches]``), averages their features and classifies.
  The attention network still runs and trains through its entropy
  regularizer, so its cost is counted as in ``"ats"``.

Every model is compiled in the backend's compiled mode
(``compiled.jit_compile``). Inputs are uniform noise: the cost of these models
does not depend on the pixels' values.
"""

import compiled
import numpy as np

MODELS = ("ats", "cnn", "pre-extracted")


def paper_preset(side):
    """The ``paper`` preset's hyper-parameters and data shapes at ``side``.

    Returns:
        ``(train_config, data_config)``: the preset's ``TrainConfig`` of the
        ATS model and its ``MegapixelMNISTConfig`` with ``side`` x ``side``
        images (the preset's scale, so a ``round(0.12 * side)`` low view).
    """
    from ats.datasets.megapixel_mnist import MegapixelMNISTConfig
    from ats.experiments.megapixel_mnist import PRESETS, train_config

    data = MegapixelMNISTConfig(
        **{**PRESETS["paper"]["data"], "width": side, "height": side}
    )
    return train_config("paper", "ats"), data


def _mean_over_patches_layer():
    """A layer ``[features (B, N, D), attention] -> mean over N (B, D)``."""
    import keras
    from keras import ops

    class MeanOverPatches(keras.layers.Layer):
        """The plain average of the patch features.

        It takes the attention map as a second input only so that a
        functional model runs the attention network (whose regularizer then
        trains it), as the ATS model does.
        """

        def call(self, inputs):
            return ops.mean(inputs[0], axis=1)

        def compute_output_shape(self, input_shapes):
            shape = input_shapes[0]
            return (shape[0], *shape[2:])

    return MeanOverPatches()


def _pre_extracted_model(config, data):
    """``[x_low, patches (B, N, h, w, C)] -> probabilities``, no sampling."""
    import keras

    from ats.models.megapixel_mnist import attention_network, feature_network
    from ats.utils.layers import ActivityRegularizer, TotalReshape
    from ats.utils.regularizers import MultinomialEntropy

    channels = data.high_shape[-1]
    patch_shape = (*config.patch_size, channels)
    x_low = keras.Input(data.low_shape)
    patches = keras.Input((config.n_patches, *patch_shape))
    attention = attention_network(config.attention_filters)(x_low)
    attention = ActivityRegularizer(MultinomialEntropy(config.regularizer_strength))(
        attention
    )
    features = feature_network(config.patch_size, config.filters, channels)(
        TotalReshape((-1, *patch_shape))(patches)
    )
    features = TotalReshape((-1, config.n_patches, config.filters))(features)
    features = _mean_over_patches_layer()([features, attention])
    y = keras.layers.Dense(10, activation="softmax")(features)
    return keras.Model([x_low, patches], y, name="pre_extracted")


def build(model, side):
    """The compiled model ``model`` (one of ``MODELS``) for ``side`` images.

    Returns:
        ``(model, input_shapes)``: a compiled ``keras.Model`` and the shapes
        (without the batch axis) of its inputs, in order.
    """
    import keras

    from ats.models.megapixel_mnist import ats_model, full_image_cnn

    config, data = paper_preset(side)
    if model == "ats":
        network = ats_model(
            data.low_shape,
            data.high_shape,
            n_patches=config.n_patches,
            patch_size=config.patch_size,
            regularizer_strength=config.regularizer_strength,
            replace=config.replace,
            filters=config.filters,
            attention_filters=config.attention_filters,
            seed=config.seed,
        )
        shapes = [data.low_shape, data.high_shape]
    elif model == "cnn":
        network = full_image_cnn(data.high_shape, filters=config.filters)
        shapes = [data.high_shape]
    elif model == "pre-extracted":
        network = _pre_extracted_model(config, data)
        shapes = [
            data.low_shape,
            (config.n_patches, *config.patch_size, data.high_shape[-1]),
        ]
    else:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    network.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm),
        loss="sparse_categorical_crossentropy",
        jit_compile=compiled.jit_compile(),
    )
    return network, shapes


def random_batch(shapes, batch_size, seed=0):
    """Uniform float32 inputs of ``shapes`` and labels, as backend tensors.

    Returns:
        ``(inputs, labels)``: a tensor if there is one shape, else a list.
    """
    from keras import ops

    rng = np.random.default_rng(seed)
    inputs = [
        ops.convert_to_tensor(rng.random((batch_size, *shape), dtype=np.float32))
        for shape in shapes
    ]
    labels = ops.convert_to_tensor(
        rng.integers(0, 10, size=(batch_size,)).astype("int32")
    )
    return (inputs[0] if len(inputs) == 1 else inputs), labels


def training_step(model, side, batch_size, seed=0):
    """A function running one training step of ``model`` on a fixed batch.

    Builds the model (``build``) and its batch (``random_batch``); the
    returned function calls ``train_on_batch``, which returns once the step
    is done (its loss is fetched to the host).
    """
    import keras

    keras.utils.set_random_seed(seed)
    network, shapes = build(model, side)
    inputs, labels = random_batch(shapes, batch_size, seed)
    return lambda: network.train_on_batch(inputs, labels)

"""Images of different sizes in one batch: what a training step costs.

A batch of images of different sizes and aspect ratios, all of one bucket
(``ats.lazy.BucketedSequence``: low views zero-padded to the bucket's shape,
wide reference rows, supports, attention restricted to each image), against
a batch of same-size square images with the same total number of pixels at
both resolutions (``ats.lazy.SourceSequence``, the model without a support).
Both models are the paper's Megapixel MNIST networks (attention on the view
downscaled by 8, 10 patches of 50x50 sampled without replacement, entropy
regularizer 1e-4, Adam) on the lazy path (patches read from in-memory
``ArraySource`` s inside the step); their steps are timed in alternation in
one process, so a change of the machine's load hits both alike. The ratio
mixed / same-size is that of the median step times; the median (min-max) of
the per-round ratios is reported too. Goal: at most ``GOAL_RATIO``.

Compiled mode: Keras's default (``jit_compile="auto"``): JAX ``jit``,
TensorFlow ``tf.function`` (the host read of the patches cannot be
XLA-compiled), PyTorch eager.

    python benchmarks/mixed_sizes.py [--quick] [--backends jax,torch]
"""

import reporting
import timing
from command_line import RunOptions, main

NAME = "mixed_sizes"
TITLE = "Images of mixed sizes in one batch"
# Low views with sides in (LOW_SIDES), i.e. one bucket of the default ladder;
# the full resolution is SCALE times larger.
LOW_SIDES, BATCH_SIZE, REPEATS, WARMUP = (167, 186), 8, 30, 2
QUICK_LOW_SIDES, QUICK_BATCH_SIZE, QUICK_REPEATS, QUICK_WARMUP = (52, 58), 2, 3, 1
SCALE, N_PATCHES, PATCH = 8, 10, 50
GOAL_RATIO = 1.25
MODES = {"jax": "jit (XLA)", "tensorflow": "tf.function", "torch": "eager"}


def _model(mixed, seed=0):
    """The lazy model: ``[x_low, x_high_ref, support]`` (mixed) or
    ``[x_low, x_high_ref]`` (same size)."""
    import keras

    from ats.lazy import lazy_attention_sampling
    from ats.models.megapixel_mnist.networks import attention_network, feature_network
    from ats.utils.regularizers import MultinomialEntropy

    keras.utils.set_random_seed(seed)
    x_low = keras.Input((None, None, 1), name="x_low")
    width = 5 if mixed else 3
    x_high_ref = keras.Input((width,), dtype="int32", name="x_high_ref")
    inputs = [x_low, x_high_ref]
    if mixed:
        inputs.append(keras.Input((None, None), name="support"))
    features, _, _ = lazy_attention_sampling(
        attention_network(8),
        feature_network((PATCH, PATCH), 32, 1),
        (PATCH, PATCH),
        N_PATCHES,
        attention_regularizer=MultinomialEntropy(1e-4),
        seed=seed,
    )(inputs)
    y = keras.layers.Dense(10, activation="softmax")(features)
    model = keras.Model(inputs, y)
    model.compile(
        keras.optimizers.Adam(1e-3, clipnorm=1.0), "sparse_categorical_crossentropy"
    )
    return model


def _sources(low_shapes, rng):
    import numpy as np

    from ats.data import ArraySource

    sources = []
    for h, w in low_shapes:
        high = rng.random((h * SCALE, w * SCALE, 1), dtype=np.float32)
        low = high.reshape(h, SCALE, w, SCALE, 1).mean(axis=(1, 3))
        sources.append(ArraySource(high, low))
    return sources


def measure(low_sides, batch_size, repeats=REPEATS, warmup=WARMUP):
    """Step times of a mixed-size batch and a same-size one, in this process.

    Args:
        low_sides: ``(smallest, largest)`` sides of the low views, one bucket.
        batch_size: int.
        repeats: int, rounds of one timed step of each.
        warmup: int >= 1, untimed steps of each first.

    Returns:
        dict: the configuration, the shapes, ``mixed_ms`` and ``same_ms``
        (``timing.summarize`` of the step times, ms), ``ratio`` (of their
        medians) and ``round_ratios``.
    """
    import keras
    import numpy as np
    from keras import ops

    from ats.lazy import BucketedSequence, SourceSequence

    rng = np.random.default_rng(0)
    lo, hi = low_sides
    low_shapes = [
        tuple(int(s) for s in rng.integers(lo, hi + 1, 2)) for _ in range(batch_size)
    ]
    mixed_sources = _sources(low_shapes, rng)
    mixed = BucketedSequence(
        mixed_sources, y=np.zeros(batch_size), batch_size=batch_size
    )
    if len(mixed.bucket_shapes) != 1:
        raise ValueError(f"{low_sides} spans buckets {mixed.bucket_shapes}")
    side = round(float(np.sqrt(np.mean([h * w for h, w in low_shapes]))))
    same_sources = _sources([(side, side)] * batch_size, rng)
    same = SourceSequence(same_sources, np.zeros(batch_size), batch_size=batch_size)

    def tensors(batch):
        return keras.tree.map_structure(ops.convert_to_tensor, batch)

    (mixed_x, mixed_y, mixed_w), (same_x, same_y) = tensors(mixed[0]), tensors(same[0])
    models = {"mixed": _model(True), "same": _model(False)}
    steps = {
        "mixed": lambda: models["mixed"].train_on_batch(
            list(mixed_x), mixed_y, sample_weight=mixed_w
        ),
        "same": lambda: models["same"].train_on_batch(list(same_x), same_y),
    }
    times = timing.interleaved_times(steps, repeats, warmup)
    mixed_ms = timing.summarize(times["mixed"], 1000)
    same_ms = timing.summarize(times["same"], 1000)
    backend = keras.backend.backend()
    return {
        "backend": backend,
        "mode": MODES[backend],
        "batch_size": batch_size,
        "low_shapes": [list(s) for s in low_shapes],
        "bucket": list(mixed.bucket_shapes[0]),
        "same_low_side": side,
        "low_pixels": {
            "mixed": int(sum(h * w for h, w in low_shapes)),
            "same": batch_size * side * side,
        },
        "mixed_ms": mixed_ms,
        "same_ms": same_ms,
        "ratio": timing.ratio(mixed_ms, same_ms),
        "round_ratios": timing.summarize(
            [m / s for m, s in zip(times["mixed"], times["same"])]
        ),
    }


def run(options=None, low_sides=None, batch_size=None):
    """Measure every backend in its own process; write ``mixed_sizes.{json,md}``.

    Args:
        options: ``command_line.RunOptions`` (default: all backends, the
            reference configuration); ``options.quick`` means smaller images
            and batch and fewer rounds.
        low_sides, batch_size: the mode's default if None.

    Returns:
        The JSON payload written.
    """
    options = options or RunOptions()
    default_sides, default_batch, repeats, warmup = (
        (QUICK_LOW_SIDES, QUICK_BATCH_SIZE, QUICK_REPEATS, QUICK_WARMUP)
        if options.quick
        else (LOW_SIDES, BATCH_SIZE, REPEATS, WARMUP)
    )
    configuration = {
        "low_sides": list(low_sides or default_sides),
        "batch_size": batch_size or default_batch,
        "repeats": repeats,
        "warmup": warmup,
    }
    machine = reporting.machine_description()
    rows = []
    for backend in options.backends:
        row = options.runner(NAME, "measure", configuration, backend)
        options.log(f"  {backend}: mixed / same-size = {row['ratio']:.2f}")
        rows.append(row)
    settings = {
        **configuration,
        "scale": SCALE,
        "n_patches": N_PATCHES,
        "patch": PATCH,
        "goal_ratio": GOAL_RATIO,
    }
    payload = reporting.payload(NAME, options.quick, machine, settings, rows)
    reporting.write_results(NAME, payload, report(payload), options.output)
    return payload


def summary_table(payload):
    """The Markdown table of the step times and their ratio."""
    return reporting.markdown_table(
        [
            "backend",
            "batch",
            "low views (bucket)",
            "same-size low view",
            "mixed step ms",
            "same-size step ms",
            "ratio mixed/same",
            "per-round ratios",
        ],
        [
            [
                f"{r['backend']} ({r['mode']})",
                r["batch_size"],
                f"{len(r['low_shapes'])} shapes ({r['bucket'][0]}x{r['bucket'][1]})",
                f"{r['same_low_side']}x{r['same_low_side']}",
                reporting.format_stats(r["mixed_ms"]),
                reporting.format_stats(r["same_ms"]),
                f"**{r['ratio']:.2f}**"
                + ("" if r["ratio"] <= GOAL_RATIO else " (above goal)"),
                reporting.format_stats(r["round_ratios"], 2),
            ]
            for r in payload["rows"]
        ],
    )


def report(payload):
    """The Markdown report of a ``run`` payload."""
    settings = payload["settings"]
    lo, hi = settings["low_sides"]
    method = (
        f"One training step on a batch of images of mixed sizes (low views "
        f"{lo} to {hi} pixels a side, full resolution {settings['scale']} "
        "times larger, all in one bucket: padded to its shape, attention "
        "restricted to each image) against one on same-size square images "
        "with the same total number of pixels, timed in alternation in one "
        f"process: median (min-max) of {settings['repeats']} steps each after "
        f"{settings['warmup']} warm-up. Goal: ratio <= "
        f"{settings['goal_ratio']:.2f}."
    )
    return reporting.markdown_report(TITLE, payload, [method, summary_table(payload)])


if __name__ == "__main__":
    main(run, __doc__)

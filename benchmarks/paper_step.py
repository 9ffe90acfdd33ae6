"""A training step of the ``paper`` preset, part by part, per image.

Where does a training step of Megapixel MNIST at the paper's scale (1500x1500
images, 50 noise scribbles, low view at scale 0.12, 10 patches of 50x50) spend
its time? One process per backend (JAX by default) measures, on a batch of
real rendered images:

* ``data``: the batch produced on the host, as training reads it
  (``MegapixelMNISTSequence.__getitem__``: both views rendered from the data
  set's description); beside it, not counted in the total, each view alone
  (``render_batch`` with ``views=("high",)`` or ``("low",)``);
* ``copy``: the host -> device copy of the batch as training makes it
  (``jax.device_put`` on JAX, ``ops.convert_to_tensor`` elsewhere);
* inside the model, each part compiled alone (``compiled.compile_function``
  around the part's ``stateless_call``) on the tensors the part before it
  produced: ``attention`` (the attention network on ``x_low``), ``sampling``
  (``ats.core.sample`` of 10 positions without replacement and their
  corners, ``SamplePatches.patch_corners``), ``extraction``
  (``ats.ops.extract_patches``) and ``features`` (the feature network on the
  ``B * 10`` patches);
* ``forward``: the whole model's forward pass (``stateless_call``,
  ``training=True``) and ``step``: ``train_on_batch`` on device tensors, the
  model being the one training builds
  (``ats.experiments.megapixel_mnist.build_model``); beside them, not
  counted in the total, ``train_on_batch`` on the host's arrays (the copy
  included, as ``fit`` feeds them).

Every call is timed in alternation with the others (``timing.
interleaved_times``), so a change of the machine's load hits all parts alike.
The parts that are not timed alone are differences of medians: ``rest of the
forward`` = ``forward`` - (attention + sampling + extraction + features): the
expectation, the classifier, the regularizer, and what compiling the parts
together saves or costs; ``backward + optimizer`` = ``step`` - ``forward``.
The total of a step is ``data`` + ``copy`` + ``step``, done one after the
other (in training the batches are rendered by ``workers`` threads while the
model runs, on the same cores). Times are per image (divided by the batch
size); each part's share is of that total. The epoch estimate is 5,000
training images at the total per image and 1,000 test images at ``data`` +
``copy`` + ``forward`` per image.

    python benchmarks/paper_step.py [--quick] [--backends jax]
"""

import itertools

import compiled
import reporting
import timing
from command_line import RunOptions, argument_parser, run_options

NAME = "paper_step"
TITLE = "A training step of the paper preset, part by part"
SIDE, BATCH_SIZE, REPEATS, WARMUP = 1500, 32, 15, 2
# A canvas that 10 patches of 50x50 sampled without replacement fit (a 15x15
# attention map at scale 0.12), a batch of 2: PyTorch fails to train the
# attention network on a batch of one so small map.
QUICK_SIDE, QUICK_BATCH_SIZE, QUICK_REPEATS, QUICK_WARMUP = 128, 2, 2, 1
DEFAULT_BACKENDS = ("jax",)
# Distinct batches rendered in turn, so that no timing reuses a batch.
N_BATCHES = 4
EPOCH_IMAGES = {"train": 5000, "test": 1000}
# The parts of a step, in order, and what they are called in the report.
PARTS = {
    "data": "data: render the batch (host)",
    "copy": "copy host -> device",
    "attention": "attention network forward",
    "sampling": "sampling (positions and corners)",
    "extraction": "patch extraction",
    "features": "feature network forward",
    "forward_rest": "rest of the forward",
    "backward": "backward + optimizer",
}
# Timed calls reported beside the parts, not counted in the total.
BESIDE = {
    "data_high": "high view alone",
    "data_low": "low view alone",
    "forward": "forward, whole model",
    "step": "step: train_on_batch",
    "step_host": "step: train_on_batch on the host's arrays",
}


def _data(side, batch_size):
    """The preset's data set at ``side`` (``N_BATCHES`` batches of training
    images) and its ``MegapixelMNISTSequence``."""
    from ats.datasets.megapixel_mnist import (
        MegapixelMNIST,
        MegapixelMNISTConfig,
        MegapixelMNISTSequence,
    )
    from ats.experiments.megapixel_mnist import PRESETS

    config = MegapixelMNISTConfig(
        **{
            **PRESETS["paper"]["data"],
            "width": side,
            "height": side,
            "n_train": N_BATCHES * batch_size,
            "n_test": 1,
        }
    )
    split = MegapixelMNIST.generate(config, progress=False).split("train")
    return split, MegapixelMNISTSequence(split, batch_size)


def _compiled_forward(layer):
    """``x -> layer(x, training=True)`` compiled, the layer's variables
    passed as arguments (``stateless_call``), not baked in as constants.
    Their current values are read at every call: a training step replaces
    them (on JAX it donates the old buffers)."""
    function = compiled.compile_function(
        lambda trainable, non_trainable, x: layer.stateless_call(
            trainable, non_trainable, x, training=True
        )[0]
    )
    return lambda x: function(
        [v.value for v in layer.trainable_variables],
        [v.value for v in layer.non_trainable_variables],
        x,
    )


def _model_calls(sequence):
    """The timed calls inside the model, on the first batch of ``sequence``.

    Returns:
        dict name -> callable without arguments that returns once done:
        ``attention``, ``sampling``, ``extraction``, ``features``,
        ``forward``, ``step`` and ``step_host``.
    """
    import keras
    from keras import ops

    from ats.core import SamplePatches, sample
    from ats.experiments.megapixel_mnist import build_model, train_config
    from ats.models.megapixel_mnist.networks import ATTENTION, FEATURE
    from ats.ops import extract_patches

    config = train_config("paper", "ats")
    keras.utils.set_random_seed(config.seed or 0)
    model = build_model(config, sequence.split.config)
    [sampler] = [layer for layer in model.layers if isinstance(layer, SamplePatches)]
    (x_low_host, x_high_host), y_host = sequence[0]
    x_low, x_high, y = (
        ops.convert_to_tensor(a) for a in (x_low_host, x_high_host, y_host)
    )

    attention = _compiled_forward(model.get_layer(ATTENTION))
    attention_map = attention(x_low)

    def sample_corners(x_low, x_high, attention_map):
        positions, _ = sample(
            config.n_patches, attention_map, replace=config.replace, seed=0
        )
        return sampler.patch_corners(
            x_low, x_high, tuple(attention_map.shape[1:]), positions
        )

    sampling = compiled.compile_function(sample_corners)
    corners = sampling(x_low, x_high, attention_map)
    extraction = compiled.compile_function(
        lambda x_high, corners: extract_patches(x_high, corners, config.patch_size)
    )
    patches = extraction(x_high, corners)
    patches = ops.reshape(patches, (-1, *tuple(patches.shape[2:])))
    features = _compiled_forward(model.get_layer(FEATURE))
    forward = _compiled_forward(model)
    return {
        "attention": lambda: timing.block(attention(x_low)),
        "sampling": lambda: timing.block(sampling(x_low, x_high, attention_map)),
        "extraction": lambda: timing.block(extraction(x_high, corners)),
        "features": lambda: timing.block(features(patches)),
        "forward": lambda: timing.block(forward([x_low, x_high])),
        "step": lambda: model.train_on_batch([x_low, x_high], y),
        "step_host": lambda: model.train_on_batch([x_low_host, x_high_host], y_host),
    }


def _host_calls(sequence):
    """The timed calls on the host: ``data`` (a batch of both views, the
    batches taken in turn), ``data_high`` and ``data_low`` (one view alone)
    and ``copy`` (the first batch to the device, ``_to_device``)."""
    batches = itertools.cycle(range(len(sequence)))
    indices = itertools.cycle([sequence.batch_indices(b) for b in range(len(sequence))])
    (x_low, x_high), y = sequence[0]

    return {
        "data": lambda: sequence[next(batches)],
        "data_high": lambda: sequence.split.render_batch(next(indices), ("high",)),
        "data_low": lambda: sequence.split.render_batch(next(indices), ("low",)),
        "copy": lambda: timing.block(_to_device([x_low, x_high, y])),
    }


def _to_device(arrays):
    """``arrays`` on the device as training puts them there: ``jax.device_put``
    on JAX (what Keras's JAX trainer and ``jit`` do to numpy inputs; on a CPU
    it takes a 64-byte aligned array without a copy), ``convert_to_tensor``
    elsewhere."""
    if compiled.backend() == "jax":
        import jax

        return jax.device_put(arrays)
    from keras import ops

    return [ops.convert_to_tensor(a) for a in arrays]


def measure(side, batch_size, repeats=REPEATS, warmup=WARMUP):
    """Time the parts of a training step in this process's backend.

    Args:
        side: int, the images' side in pixels (the preset's other data
            parameters unchanged).
        batch_size: int.
        repeats: int, rounds of one timed call of each part.
        warmup: int >= 1, untimed calls of each first (the first compiles).

    Returns:
        dict: the configuration, ``timed`` (name -> ``timing.summarize`` in
        ms per image, for ``data``, ``data_high``, ``data_low``, ``copy``,
        ``attention``, ``sampling``, ``extraction``, ``features``,
        ``forward``, ``step`` and ``step_host``), ``parts`` (``PARTS``
        name -> ms per image, medians, differences for ``forward_rest`` and
        ``backward``), ``shares`` (name -> fraction of ``total_ms``), ``total_ms`` and
        ``epoch_s`` (the estimated seconds of an epoch).
    """
    split, sequence = _data(side, batch_size)
    calls = {**_host_calls(sequence), **_model_calls(sequence)}
    times = timing.interleaved_times(calls, repeats, warmup)
    timed = {
        name: timing.summarize(values, 1000 / batch_size)
        for name, values in times.items()
    }
    median = {name: stats["median"] for name, stats in timed.items()}
    inside = ("attention", "sampling", "extraction", "features")
    parts = {
        **{name: median[name] for name in ("data", "copy", *inside)},
        "forward_rest": median["forward"] - sum(median[name] for name in inside),
        "backward": median["step"] - median["forward"],
    }
    total = median["data"] + median["copy"] + median["step"]
    test = median["data"] + median["copy"] + median["forward"]
    epoch_s = (EPOCH_IMAGES["train"] * total + EPOCH_IMAGES["test"] * test) / 1000
    return {
        **compiled.backend_and_mode(),
        "side": side,
        "low_side": split.config.low_shape[0],
        "batch_size": batch_size,
        "timed": timed,
        "parts": parts,
        "shares": {name: value / total for name, value in parts.items()},
        "total_ms": total,
        "test_ms": test,
        "epoch_s": epoch_s,
    }


def run(options=None, side=None, batch_size=None):
    """Measure every backend in its own process; write ``paper_step.{json,md}``.

    Args:
        options: ``command_line.RunOptions`` (default: JAX, the reference
            configuration); ``options.quick`` means a small image and batch
            and few rounds.
        side, batch_size: int or None (the mode's default).

    Returns:
        The JSON payload written.

    Example::

        python benchmarks/paper_step.py --quick
    """
    options = options or RunOptions(backends=DEFAULT_BACKENDS)
    default_side, default_batch, repeats, warmup = (
        (QUICK_SIDE, QUICK_BATCH_SIZE, QUICK_REPEATS, QUICK_WARMUP)
        if options.quick
        else (SIDE, BATCH_SIZE, REPEATS, WARMUP)
    )
    settings = {
        "side": side or default_side,
        "batch_size": batch_size or default_batch,
        "repeats": repeats,
        "warmup": warmup,
    }
    machine = reporting.machine_description()
    rows = []
    for backend in options.backends:
        row = options.runner(NAME, "measure", settings, backend)
        options.log(
            f"  {backend}: {row['total_ms']:.1f} ms per image, data "
            f"{100 * row['shares']['data']:.0f}%"
        )
        rows.append(row)
    payload = reporting.payload(
        NAME, options.quick, machine, {**settings, "epoch_images": EPOCH_IMAGES}, rows
    )
    reporting.write_results(NAME, payload, report(payload), options.output)
    return payload


def summary_table(payload):
    """The Markdown table of the parts: ms per image and share, per backend."""
    rows = payload["rows"]
    headers = ["part"]
    for r in rows:
        headers += [f"{r['backend']} ms per image", "share"]
    lines = []
    for name, label in PARTS.items():
        line = [label]
        for r in rows:
            timed = r["timed"].get(name)
            value = (
                reporting.format_stats(timed)
                if timed
                else f"{r['parts'][name]:.1f} (difference)"
            )
            line += [value, f"{100 * r['shares'][name]:.0f}%"]
        lines.append(line)
    for name, label in BESIDE.items():
        line = [f"({label}, not in the total)"]
        for r in rows:
            line += [reporting.format_stats(r["timed"][name]), ""]
        lines.append(line)
    total = ["**total (data + copy + step)**"]
    epoch = ["**estimated epoch, 5,000 + 1,000 test images**"]
    for r in rows:
        total += [f"**{r['total_ms']:.1f}**", "100%"]
        epoch += [f"**{r['epoch_s'] / 60:.1f} min**", ""]
    lines += [total, epoch]
    return reporting.markdown_table(headers, lines)


def report(payload):
    """The Markdown report of a ``run`` payload."""
    settings = payload["settings"]
    row = payload["rows"][0]
    method = (
        f"The `paper` preset's data at {settings['side']}x{settings['side']} "
        f"(low view {row['low_side']}x{row['low_side']}) and ATS model, a "
        f"batch of {settings['batch_size']} rendered images. Every part timed "
        f"alone and in alternation with the others: median (min-max) of "
        f"{settings['repeats']} calls after {settings['warmup']} warm-up, in "
        "ms per image. *Rest of the forward* = whole forward - (attention + "
        "sampling + extraction + features); *backward + optimizer* = "
        "train_on_batch - whole forward (differences of medians). Shares are "
        "of the total, data + copy + train_on_batch done one after the "
        "other. Epoch: 5,000 training images at the total and 1,000 test "
        "images at data + copy + forward."
    )
    return reporting.markdown_report(TITLE, payload, [method, summary_table(payload)])


if __name__ == "__main__":
    parser = argument_parser(__doc__)
    parser.set_defaults(backends=",".join(DEFAULT_BACKENDS))
    run(run_options(parser.parse_args()))

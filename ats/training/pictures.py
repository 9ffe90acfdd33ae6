"""Pictures of attention-sampling models: where they look, how they learn.

* :func:`save_attention_figure`: for a few images, the image with the
  attention map overlaid and the sampled patches outlined, next to a grid of
  the extracted patches.
* :func:`save_training_curves`: loss and every metric per epoch, train and
  test (the columns of ``metrics.csv``).
* :class:`AttentionPictures`: the attention figures of a run, after every
  epoch and at the end, from an experiment's ``inspect`` function.

Figures are drawn with matplotlib's non-interactive ``Agg`` backend and
written as PNG files atomically.

Example::

    seen = inspect(model, x_low, x_high)  # an experiment's model inspector
    save_attention_figure("attention.png", x_high, seen, labels=y,
                          title="epoch 3")
"""

import io
import math

import numpy as np

from .run import atomic_write

__all__ = ["AttentionPictures", "save_attention_figure", "save_training_curves"]

_PATCH_COLOUR = "#00e5ff"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, plt):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    plt.close(fig)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def _patch_grid(patches):
    """Tile ``(N, h, w, C)`` patches into one image with 2 px gaps."""
    n, h, w = patches.shape[:3]
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    gap = 2
    grid = np.ones(((h + gap) * rows - gap, (w + gap) * columns - gap))
    for i, patch in enumerate(patches):
        r, c = divmod(i, columns)
        grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = (
            patch[..., 0]
        )
    return grid


def save_attention_figure(
    path, x_high, inspected, labels=None, title=None, extent=None
):
    """Draw where an attention-sampling model looks, one row per image.

    Left: the high-resolution image in grey, the attention map overlaid in
    colour (stretched over the image, square-root scale, brightest where the
    attention is highest) and the patches outlined and numbered in sampling
    order. Right: the extracted patches in sampling order. The row title
    gives the label, the prediction and its probability.

    Args:
        path: str or path-like, the PNG file to write.
        x_high: ``(B, H, W, C)`` high-resolution images (values in [0, 1];
            the first channel is drawn).
        inspected: what the model looked at on these images, a dict of
            numpy arrays (as an experiment's model inspector returns it):
            ``attention`` ``(B, h, w)``, ``corners`` ``(B, N, 2)`` top-left
            ``(row, col)`` of the patches in ``x_high``, ``patches``
            ``(B, N, ph, pw, C)`` and ``probabilities`` ``(B, classes)``.
        labels: optional ``(B,)`` true classes.
        title: optional figure title.
        extent: optional ``(H, W)``: the pixels of ``corners`` when the
            images drawn are a smaller view of them (e.g. the low-resolution
            view of an image too large to draw), stretched over them.
    """
    plt = _pyplot()
    from matplotlib.colors import PowerNorm
    from matplotlib.patches import Rectangle

    x_high = np.asarray(x_high)
    if x_high.ndim != 4:
        raise ValueError(f"`x_high` must have shape (B, H, W, C), got {x_high.shape}")
    attention, corners = inspected["attention"], inspected["corners"]
    patches, probabilities = inspected["patches"], inspected["probabilities"]
    if not len(x_high) == len(attention) == len(patches):
        raise ValueError(
            f"`x_high` ({len(x_high)} images) and `inspected` "
            f"({len(attention)}) must describe the same images"
        )
    height, width = extent or x_high.shape[1:3]
    patch_h, patch_w = patches.shape[2:4]
    fig, axes = plt.subplots(
        len(x_high), 2, squeeze=False, dpi=100, figsize=(9, 4.4 * len(x_high))
    )
    for b, (left, right) in enumerate(axes):
        left.imshow(
            x_high[b, :, :, 0],
            cmap="gray",
            vmin=0,
            vmax=1,
            extent=(0, width, height, 0),
            interpolation="antialiased",
        )
        # Square-root colour scale: a peaked attention stays visible.
        left.imshow(
            attention[b],
            cmap="inferno",
            alpha=0.5,
            norm=PowerNorm(0.5, vmin=0, vmax=attention[b].max()),
            extent=(0, width, height, 0),
            interpolation="nearest",
        )
        for i, (row, col) in enumerate(corners[b]):
            left.add_patch(
                Rectangle(
                    (col, row),
                    patch_w,
                    patch_h,
                    fill=False,
                    edgecolor=_PATCH_COLOUR,
                    linewidth=1.2,
                )
            )
            left.text(
                col + 2, row + 2, str(i + 1), color=_PATCH_COLOUR, fontsize=7, va="top"
            )
        left.set_xlim(0, width)
        left.set_ylim(height, 0)
        predicted = int(np.argmax(probabilities[b]))
        text = f"predicted {predicted} (p={probabilities[b, predicted]:.2f})"
        if labels is not None:
            text = f"label {int(labels[b])}, " + text
        left.set_title(text, fontsize=10)
        left.axis("off")
        right.imshow(
            _patch_grid(patches[b]),
            cmap="gray",
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        right.set_title(
            f"{len(patches[b])} patches of {patch_h}x{patch_w}", fontsize=10
        )
        right.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path, plt)


def _curve_metrics(history):
    """The metrics of ``history`` with a train and a test column."""
    return [
        key
        for key in history[0]
        if key != "epoch"
        and not key.startswith("test_")
        and f"test_{key}" in history[0]
    ]


def save_training_curves(path, history, title=None):
    """Plot the loss and every metric per epoch, train and test.

    Args:
        path: str or path-like, the PNG file to write.
        history: list of per-epoch dicts with ``epoch`` and, for each metric
            ``m`` (``loss``, ``error``, ...), ``m`` and ``test_m``
            (``metrics.csv``); errors are drawn in percent.
        title: optional figure title.
    """
    if not history:
        raise ValueError("`history` must hold at least one epoch")
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    metrics = _curve_metrics(history)
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(5 * len(metrics), 4), dpi=100, squeeze=False
    )
    for ax, key in zip(axes[0], metrics):
        scale = 100 if key == "error" else 1
        for prefix, style in (("", "o-"), ("test_", "s--")):
            values = [row[prefix + key] * scale for row in history]
            ax.plot(epochs, values, style, label="train" if not prefix else "test")
        ax.set_xlabel("epoch")
        ax.set_ylabel("error (%)" if key == "error" else key)
        ax.grid(alpha=0.3)
        ax.legend()
        if key == "error":
            ax.set_ylim(bottom=0)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path, plt)


class AttentionPictures:
    """The attention figures of a run on a few fixed test images.

    Args:
        run: the ``RunDirectory`` whose ``pictures/`` they go to.
        inspect: callable ``(deterministic) -> dict`` returning what the
            model looked at on the images (as
            an experiment's model inspector: ``attention``,
            ``corners``, ``patches``, ``probabilities``), with sampled or
            with the most attended patches.
        images: ``(B, H, W, C)`` the images drawn (values in [0, 1]), in
            the pixels of ``inspected["corners"]``.
        labels: ``(B,)`` their classes.
        extent: optional ``(H, W)`` of the pixels of the corners, when the
            images are a smaller view (see :func:`save_attention_figure`).
    """

    def __init__(self, run, inspect, images, labels, extent=None):
        self.run, self.inspect = run, inspect
        self.images, self.labels, self.extent = images, labels, extent

    def draw(self, name, title, deterministic=False):
        """Draw ``pictures/name``; returns its path (None without images)."""
        if not len(self.labels):
            return None
        path = self.run.picture_path(name)
        save_attention_figure(
            path,
            self.images,
            self.inspect(deterministic),
            labels=self.labels,
            title=title,
            extent=self.extent,
        )
        return path

    def epoch(self, epoch):
        """Draw ``epoch_NNN.png`` with sampled patches."""
        self.draw(f"epoch_{epoch:03d}.png", f"after epoch {epoch}: sampled patches")

    def final(self, epochs):
        """Draw ``final_sampled.png`` and ``final_top_k.png``; their paths."""
        return [
            self.draw("final_sampled.png", f"after {epochs} epochs: sampled patches"),
            self.draw(
                "final_top_k.png",
                f"after {epochs} epochs: the most attended patches",
                deterministic=True,
            ),
        ]

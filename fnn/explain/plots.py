"""Pictures of attributions: over images, as bars for tabular features, as a strip over a sequence.

Needs matplotlib (the ``examples`` extra). Each function returns the
matplotlib Figure; save it with ``fig.savefig("attributions.png")``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def _pyplot(where: str) -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(f'{where} needs matplotlib: pip install "fnn[examples]"') from error
    return plt


def _limit(values: np.ndarray) -> float:
    high = float(np.max(np.abs(values))) if values.size else 0.0
    return high if high > 0 else 1.0


def plot_image_attributions(images: Any, attributions: Any, *,
                            titles: Sequence[str] | None = None, cmap: str = "RdBu_r") -> Any:
    """Each image beside its attribution map (channels summed), on a symmetric colour scale.

    Red is evidence for the explained class, blue against it (with the
    default ``cmap``); a non-negative map (Grad-CAM) is drawn on its own scale
    over the image.

    Args:
      images: ``(n, h, w)`` or ``(n, h, w, c)`` images.
      attributions: ``(n, h, w)`` or ``(n, h, w, c)`` (summed over ``c``); a
        Grad-CAM map at a smaller size is stretched over the image.
      titles: one title per image (e.g. the explained class).
      cmap: the colour map of the attributions.

    Returns:
      The Figure (two columns, one row per image).

    Raises:
      ValueError: shapes that do not match.
    """
    plt = _pyplot("plot_image_attributions")
    images, maps = np.asarray(images, np.float64), np.asarray(attributions, np.float64)
    if maps.ndim == images.ndim == 4:
        maps = maps.sum(axis=-1)
    if images.ndim not in (3, 4) or maps.ndim != 3 or maps.shape[0] != images.shape[0]:
        raise ValueError(f"plot_image_attributions: expected images (n, h, w[, c]) and "
                         f"attributions (n, h, w[, c]) for the same n, got {images.shape} and "
                         f"{np.shape(attributions)}")
    n = images.shape[0]
    fig, axes = plt.subplots(n, 2, figsize=(4.4, 2.2 * n), squeeze=False)
    for i in range(n):
        image = images[i] if images.ndim == 3 or images.shape[-1] != 1 else images[i, ..., 0]
        axes[i, 0].imshow(image, cmap="gray" if image.ndim == 2 else None)
        extent = (-0.5, images.shape[2] - 0.5, images.shape[1] - 0.5, -0.5)
        signed = maps[i].min() < 0
        limit = _limit(maps[i])
        axes[i, 1].imshow(image, cmap="gray" if image.ndim == 2 else None, alpha=0.35)
        shown = axes[i, 1].imshow(maps[i], cmap=cmap if signed else "inferno", alpha=0.75,
                                  vmin=-limit if signed else 0, vmax=limit, extent=extent)
        fig.colorbar(shown, ax=axes[i, 1], fraction=0.046)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
        if titles is not None:
            axes[i, 0].set_title(str(titles[i]), fontsize=9)
    axes[0, 1].set_title("attribution", fontsize=9)
    fig.tight_layout()
    return fig


def plot_feature_importance(importance: Any, names: Sequence[str] | None = None, *,
                            top: int | None = None, title: str | None = None) -> Any:
    """Horizontal bars of one value per tabular feature, largest at the top.

    Args:
      importance: an `fnn.explain.permutation.Importances` (bars with
        the standard deviation as error bars), or ``(features,)`` values (e.g.
        the mean attribution of each feature over a batch).
      names: the features' names (default: the result's or ``0 .. features-1``).
      top: show only the ``top`` largest (by absolute value).
      title: the plot's title.

    Returns:
      The Figure.
    """
    plt = _pyplot("plot_feature_importance")
    errors = None
    if hasattr(importance, "ranked"):           # an Importances
        values, errors = np.asarray(importance.mean), np.asarray(importance.std)
        names = importance.names if names is None else names
        title = title or f"drop in {importance.metric} when shuffled"
    else:
        values = np.asarray(importance, np.float64)
    if values.ndim != 1:
        raise ValueError(f"plot_feature_importance: expected one value per feature, got "
                         f"shape {values.shape}")
    names = [str(j) for j in range(len(values))] if names is None else [str(n) for n in names]
    order = np.argsort(-np.abs(values), kind="stable")[:top]
    fig, ax = plt.subplots(figsize=(5, 0.6 + 0.28 * len(order)))
    ax.barh(range(len(order)), values[order][::-1],
            xerr=None if errors is None else errors[order][::-1],
            color=["tab:red" if v >= 0 else "tab:blue" for v in values[order][::-1]])
    ax.set_yticks(range(len(order)), [names[j] for j in order][::-1])
    ax.axvline(0, color="black", linewidth=0.8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_sequence_attributions(tokens: Sequence[Sequence[str]], attributions: Any, *,
                               cmap: str = "RdBu_r") -> Any:
    """A heat strip per sequence: each token on a cell coloured by its attribution.

    Args:
      tokens: ``n`` sequences of token strings (``(n, T)``; shorter ones are padded).
      attributions: ``(n, T)`` one value per token, or ``(n, T, features)``
        (summed over the features, e.g. attributions of an embedding's output).
      cmap: the colour map (symmetric around zero).

    Returns:
      The Figure.
    """
    plt = _pyplot("plot_sequence_attributions")
    values = np.asarray(attributions, np.float64)
    if values.ndim == 3:
        values = values.sum(axis=-1)
    if values.ndim != 2 or len(tokens) != values.shape[0]:
        raise ValueError(f"plot_sequence_attributions: expected (n, T) attributions for n "
                         f"sequences, got {np.shape(attributions)} for {len(tokens)}")
    limit = _limit(values)
    n, length = values.shape
    fig, ax = plt.subplots(figsize=(0.6 + 0.55 * length, 0.4 + 0.45 * n))
    ax.imshow(values, cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    for i, sequence in enumerate(tokens):
        for t, token in enumerate(list(sequence)[:length]):
            ax.text(t, i, str(token), ha="center", va="center", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks(range(n))
    fig.tight_layout()
    return fig

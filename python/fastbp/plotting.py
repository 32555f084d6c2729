"""Training curves: :func:`plot_history` (matplotlib is optional and imported lazily)."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["plot_history"]


def _history_dict(history: Any) -> Dict[str, List[Any]]:
    if hasattr(history, "history") and isinstance(history.history, dict):
        return history.history
    if isinstance(history, dict):
        return history
    raise TypeError(f"history must be a fastbp History or a dict of lists, got "
                    f"{type(history).__name__}")


def _layer_norms(grad_norm: Sequence[Sequence[float]], names: Sequence[str]):
    """Combine per-parameter gradient norms into one norm per layer (sqrt of the sum of
    squares of the layer's parameters), in layer order."""
    g = np.asarray(grad_norm, dtype=np.float64)
    if not names or len(names) != g.shape[1]:
        names = [f"param{i}" for i in range(g.shape[1])]
    layers: List[str] = []
    for nm in names:
        layer = nm.split(".")[0]
        if layer not in layers:
            layers.append(layer)
    out = np.zeros((g.shape[0], len(layers)))
    for j, nm in enumerate(names):
        out[:, layers.index(nm.split(".")[0])] += g[:, j] ** 2
    return layers, np.sqrt(out)


def plot_history(history: Any, path: Optional[Any] = None, title: Optional[str] = None,
                 figsize: Optional[tuple] = None, dpi: int = 110):
    """Plot a training history: loss (and val_loss), accuracy (if recorded), the gradient
    norm of each layer on a log scale, and the learning rate.

    Parameters
    ----------
    history : History or dict
        ``model.fit``'s return value (or ``history.history``).
    path : str or os.PathLike, optional
        Save the figure there (PNG, SVG, PDF — by the suffix).
    title : str, optional
        Figure title.
    figsize : tuple, optional
        Figure size in inches (default: 5 inches per panel, side by side up to 2 per row).
    dpi : int
        Resolution when saving.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (not attached to pyplot: no window opens; display it in a notebook by
        evaluating it, or with ``fig.savefig``).

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install matplotlib``).
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plot_history needs matplotlib: pip install matplotlib") from e
    h = _history_dict(history)
    loss = h.get("loss") or []
    if not loss:
        raise ValueError("history has no epochs to plot (history['loss'] is empty)")
    epochs = [e + 1 for e in (list(getattr(history, "epoch", []) or range(len(loss))))]
    names = list(getattr(history, "param_names", []) or [])
    panels, lr_note = _panels(h)
    ncols = 2 if len(panels) > 1 else 1
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=figsize or (6.0 * ncols, 3.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    marker = "o" if len(loss) <= 30 else None  # 1-based epochs, as printed during training
    for ax, panel in zip(axes, panels):
        if panel == "loss":
            _plot_loss(ax, h, epochs, marker, lr_note)
        elif panel == "grad_norm":
            _plot_grad_norm(ax, h, epochs, names, marker)
        elif panel == "lr":
            _plot_lr(ax, h, epochs, marker)
        else:
            _plot_metric(ax, h, epochs, panel, marker)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if panel not in ("grad_norm", "lr"):
            ax.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(os.fspath(path), dpi=dpi)
    return fig


def _panels(h: Dict[str, Any]) -> Tuple[List[str], str]:
    """The panels a history fills, and a note for the loss title when the rate is constant
    (a flat learning-rate panel would say nothing)."""
    panels: List[str] = ["loss"]
    for metric in ("accuracy", "mse", "mae"):
        if h.get(metric) or h.get("val_" + metric):
            panels.append(metric)
    if h.get("grad_norm"):
        panels.append("grad_norm")
    lr_note = ""
    if h.get("lr"):
        lrs = np.asarray(h["lr"], dtype=float)
        if np.all(lrs == lrs[0]):
            lr_note = f" (constant lr {lrs[0]:.3g})"
        else:
            panels.append("lr")
    return panels, lr_note


def _log_if_wide(ax: Any, values: Sequence[float], ratio: float = 20.0) -> None:
    """A log y-axis when the positive finite values span more than ``ratio``."""
    vals = np.asarray(values, dtype=float)
    vals = vals[np.isfinite(vals)]
    if vals.size and vals.min() > 0 and vals.max() / vals.min() > ratio:
        ax.set_yscale("log")


def _plot_loss(ax: Any, h: Dict[str, Any], epochs: List[int], marker: Any,
               lr_note: str) -> None:
    loss = h["loss"]
    ax.plot(epochs, loss, marker=marker, ms=3, label="loss (train)")
    if h.get("val_loss"):
        ax.plot(epochs, h["val_loss"], marker=marker, ms=3, label="val_loss")
        vl = np.asarray(h["val_loss"], dtype=float)
        if np.isfinite(vl).any() and len(vl) > 1:
            b = int(np.nanargmin(np.where(np.isfinite(vl), vl, np.nan)))
            ax.axvline(epochs[b], color="gray", ls="--", lw=0.8,
                       label=f"best val_loss (epoch {epochs[b]})")
    _log_if_wide(ax, list(loss) + list(h.get("val_loss") or []))
    ax.set_title("Loss" + lr_note)
    ax.set_ylabel("loss")


def _plot_metric(ax: Any, h: Dict[str, Any], epochs: List[int], panel: str,
                 marker: Any) -> None:
    for k in (panel, "val_" + panel):
        if h.get(k):
            ax.plot(epochs[-len(h[k]):], h[k], marker=marker, ms=3,
                    label=f"{panel} (train)" if k == panel else k)
    ax.set_title({"accuracy": "Accuracy", "mse": "Mean squared error",
                  "mae": "Mean absolute error"}[panel])
    ax.set_ylabel(panel)
    if panel != "accuracy":
        _log_if_wide(ax, [v for k in (panel, "val_" + panel) for v in (h.get(k) or [])])


def _plot_grad_norm(ax: Any, h: Dict[str, Any], epochs: List[int], names: List[str],
                    marker: Any) -> None:
    import matplotlib as mpl

    gepochs = epochs[-len(h["grad_norm"]):]
    layers, norms = _layer_norms(h["grad_norm"], names)
    cmap = mpl.colormaps["viridis"]
    n = len(layers)
    for j, layer in enumerate(layers):
        col = cmap(0.9 * j / max(1, n - 1))
        y = np.where(norms[:, j] > 0, norms[:, j], np.nan)
        ax.plot(gepochs, y, color=col, marker=marker, ms=2.5, lw=1.3, label=layer)
    ax.set_yscale("log")
    ax.set_title("Gradient L2 norm per layer (log scale)")
    ax.set_ylabel("||grad||")
    ax.legend(fontsize=7, ncol=2 if n > 12 else 1, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, title="layer", title_fontsize=7)


def _plot_lr(ax: Any, h: Dict[str, Any], epochs: List[int], marker: Any) -> None:
    ax.plot(epochs, h["lr"], marker=marker, ms=3, color="tab:red", drawstyle="steps-post")
    lr = np.asarray(h["lr"], dtype=float)
    pos = lr[lr > 0]
    if pos.size and pos.max() / pos.min() > 50:
        ax.set_yscale("log")
    ax.set_title("Learning rate (first step of each epoch)")
    ax.set_ylabel("lr")

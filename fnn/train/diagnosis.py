"""Reading a run's history for the problems the notes list, and drawing the monitor's numbers.

`diagnose` looks at a fit's history (with `fnn.train.Monitor`'s
numbers where the run had one) and returns `Finding` s, each with the
remedy the notes give:

- ``"vanishing_gradients"``: the first layer's gradient norm is under
  ``1e-3`` of the last layer's (mean over the last epochs) and the loss
  barely moves; remedies: ReLU instead of sigmoid/tanh, He/Xavier
  initialisation, batch normalisation, residual connections;
- ``"exploding_gradients"``: a gradient norm that grows by ``10x`` or more
  over the run, or exceeds ``1e3``; remedies: gradient clipping, a lower
  learning rate, He/Xavier initialisation, batch normalisation;
- ``"dead_units"``: ReLU units never active over a whole epoch (more than
  ``10%`` of a layer at the last epoch); remedies: a lower learning rate,
  He initialisation, LeakyReLU/ELU, batch normalisation;
- ``"saturation"``: more than ``30%`` of a sigmoid/tanh layer's outputs in
  the flat tails; remedies: Xavier initialisation, normalised inputs, ReLU,
  batch normalisation;
- ``"overfitting"``: the validation loss rose for the last epochs while the
  training loss kept falling, ending more than ``20%`` above its best;
  remedies: L2/L1 regularisation, dropout, early stopping, data augmentation,
  more data;
- ``"nonfinite"``: steps skipped because the loss or gradients were NaN/inf,
  or a non-finite monitored norm; remedies: a lower learning rate, gradient
  clipping, checking the data for NaN/inf.

The thresholds are heuristics, written in each finding's evidence so that
a reader can judge them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

REMEDIES = {
    "vanishing_gradients": "use ReLU instead of sigmoid/tanh in hidden layers, He (ReLU) or "
                           "Xavier (tanh) initialisation, batch normalisation, or residual "
                           "connections",
    "exploding_gradients": "clip the gradients (fnn.optim.clip_by_global_norm), lower the "
                           "learning rate, use He/Xavier initialisation or batch normalisation",
    "dead_units": "lower the learning rate, use He initialisation, LeakyReLU/ELU instead of "
                  "ReLU, or batch normalisation",
    "saturation": "use Xavier initialisation, normalise the inputs, ReLU in hidden layers, or "
                  "batch normalisation",
    "overfitting": "add L2/L1 regularisation (penalty=fnn.regularizers.l2(...)), dropout, early "
                   "stopping (fnn.EarlyStopping(restore_best=True)), data augmentation, or "
                   "more data",
    "nonfinite": "lower the learning rate, clip the gradients, check x and y for NaN/inf, or "
                 "use fnn.optim.skip_nonfinite",
}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem `diagnose` sees.

    Attributes:
      kind: ``"vanishing_gradients"``, ``"exploding_gradients"``, ``"dead_units"``,
        ``"saturation"``, ``"overfitting"`` or ``"nonfinite"``.
      layers: the layer paths where it is seen (empty for the whole model).
      evidence: the numbers that show it, in words.
      remedy: what the notes suggest.
    """

    kind: str
    layers: tuple[str, ...]
    evidence: str
    remedy: str

    def __str__(self) -> str:
        where = f" in {', '.join(self.layers)}" if self.layers else ""
        return f"{self.kind}{where}: {self.evidence}. Try: {self.remedy}."


class Diagnosis(list):
    """The findings of `diagnose` (a list of `Finding`) that prints as a report."""

    def kinds(self) -> list[str]:
        """The kinds found, in order."""
        return [finding.kind for finding in self]

    def __str__(self) -> str:
        if not self:
            return "diagnose: no problem found in the history"
        return "\n".join(["diagnose:"] + [f"- {finding}" for finding in self])


def _history(result: Any) -> dict:
    history = getattr(result, "history", result)
    if not isinstance(history, dict):
        raise TypeError(f"diagnose: expected a fit result or its history dict, got "
                        f"{type(result).__name__}")
    return history


def _family(history: dict, prefix: str) -> dict[str, np.ndarray]:
    return {name[len(prefix):]: np.asarray(values, np.float64)
            for name, values in history.items() if name.startswith(prefix)}


def _tail(values: np.ndarray, epochs: int = 3) -> float:
    return float(np.mean(values[-epochs:]))


def diagnose(result: Any, *, window: int = 3) -> Diagnosis:
    """The problems a run's history shows, each with the notes' remedy.

    Args:
      result: a `fnn.train.FitResult` (or its ``history``); the gradient,
        dead-unit and saturation checks need ``fit(..., monitor=fnn.train.Monitor())``,
        the overfitting check ``validation_data`` (or ``validation_split``).
      window: the last epochs averaged for the gradient checks and compared for
        overfitting.

    Returns:
      A `Diagnosis`: a list of `Finding`; ``print`` gives a report.

    Examples:
      >>> history = {"loss": [1.0, 0.5, 0.3, 0.2, 0.1], "val_loss": [1.0, 0.6, 0.7, 0.9, 1.2]}
      >>> print(fnn.train.diagnose(history))
      diagnose:
      - overfitting: val_loss rose from its best 0.6 (epoch 2) to 1.2 at the last epoch (+100%) while loss fell from 0.5 to 0.1. Try: ...
    """
    history = _history(result)
    findings = Diagnosis()
    grads = _family(history, "grad_norm/")
    if grads:
        layers = list(grads)
        first, last = grads[layers[0]], grads[layers[-1]]
        finite = all(np.all(np.isfinite(v)) for v in grads.values())
        if not finite:
            bad = tuple(name for name, v in grads.items() if not np.all(np.isfinite(v)))
            findings.append(Finding("nonfinite", bad, "gradient norms became NaN or infinite",
                                    REMEDIES["nonfinite"]))
        elif len(layers) > 1 and _tail(first, window) < 1e-3 * _tail(last, window):
            ratio = _tail(first, window) / max(_tail(last, window), 1e-30)
            weak = tuple(name for name in layers[:-1]
                         if _tail(grads[name], window) < 1e-2 * _tail(last, window))
            findings.append(Finding(
                "vanishing_gradients", weak,
                f"the first layer's gradient norm ({_tail(first, window):.2g}) is {ratio:.1e} "
                f"of the last layer's ({_tail(last, window):.2g}), mean of the last "
                f"{min(window, len(first))} epochs", REMEDIES["vanishing_gradients"]))
        grown = tuple(name for name, v in grads.items()
                      if finite and (v.max() > 1e3 or (len(v) > 1 and v[0] > 0
                                                       and v[-1] > 10 * v[0])))
        if grown:
            worst = max(grown, key=lambda n: grads[n].max())
            findings.append(Finding(
                "exploding_gradients", grown,
                f"{worst}'s gradient norm went from {grads[worst][0]:.3g} to "
                f"{grads[worst][-1]:.3g} (max {grads[worst].max():.3g})",
                REMEDIES["exploding_gradients"]))
    dead = _family(history, "dead_fraction/")
    bad = {name: float(v[-1]) for name, v in dead.items() if v[-1] > 0.1}
    if bad:
        counts = _family(history, "dead_units/")
        text = ", ".join(f"{name}: {int(counts[name][-1]) if name in counts else '?'} units "
                         f"({fraction:.0%})" for name, fraction in bad.items())
        findings.append(Finding("dead_units", tuple(bad),
                                f"units never active over the last epoch: {text}",
                                REMEDIES["dead_units"]))
    saturated = _family(history, "saturated_fraction/")
    bad = {name: float(v[-1]) for name, v in saturated.items() if v[-1] > 0.3}
    if bad:
        text = ", ".join(f"{name}: {fraction:.0%}" for name, fraction in bad.items())
        findings.append(Finding("saturation", tuple(bad),
                                f"outputs in the flat tails at the last epoch: {text}",
                                REMEDIES["saturation"]))
    finding = _overfitting(history, window)
    if finding is not None:
        findings.append(finding)
    skipped = history.get("skipped")
    if skipped and sum(skipped) > 0:
        findings.append(Finding("nonfinite", (), f"{int(sum(skipped))} steps skipped with a "
                                "non-finite loss or gradients", REMEDIES["nonfinite"]))
    return findings


def _overfitting(history: dict, window: int) -> Finding | None:
    loss, val = history.get("loss"), history.get("val_loss")
    if not loss or not val or len(val) < window + 1:
        return None
    loss, val = np.asarray(loss, np.float64), np.asarray(val, np.float64)
    best = int(np.argmin(val))
    rising = best < len(val) - 1 and np.all(np.diff(val[-window:]) > 0)
    worse = val[-1] > 1.2 * val[best] and val[-1] - val[best] > 1e-8
    if not (rising and worse and loss[-1] < loss[best]):
        return None
    return Finding(
        "overfitting", (),
        f"val_loss rose from its best {val[best]:.3g} (epoch {best + 1}) to {val[-1]:.3g} at "
        f"the last epoch ({val[-1] / val[best] - 1:+.0%}) while loss fell from "
        f"{loss[best]:.3g} to {loss[-1]:.3g}", REMEDIES["overfitting"])


def plot_monitor(result: Any, *, families: Sequence[str] = ("grad_norm", "update_ratio",
                                                             "dead_fraction",
                                                             "saturated_fraction")) -> Any:
    """Draw the monitor's numbers over the epochs: one panel per family, one line per layer.

    Norms and ratios are drawn on a log scale (a vanishing gradient shows as
    lines orders of magnitude apart); fractions on a linear one. Needs
    matplotlib (the ``examples`` extra).

    Args:
      result: a `fnn.train.FitResult` of a fit with a monitor, or its history.
      families: the panels, among ``grad_norm``, ``param_norm``, ``update_ratio``,
        ``activation_mean``, ``activation_std``, ``dead_fraction``, ``dead_units``,
        ``saturated_fraction`` (those the history lacks are left out).

    Returns:
      The matplotlib Figure.

    Raises:
      ValueError: the history has none of the families (train with ``monitor=``).
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError('plot_monitor needs matplotlib: pip install "fnn[examples]"') from error
    history = _history(result)
    panels = [(family, _family(history, family + "/")) for family in families]
    panels = [(family, lines) for family, lines in panels if lines]
    if not panels:
        raise ValueError("plot_monitor: the history has no monitor numbers; train with "
                         "fit(..., monitor=fnn.train.Monitor())")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (family, lines) in zip(axes[0], panels):
        for name, values in lines.items():
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, marker="o" if len(values) < 20 else None, markersize=3,
                    label=name)
        log = family in ("grad_norm", "param_norm", "update_ratio") and all(
            np.all(values > 0) for values in lines.values())
        if log:
            ax.set_yscale("log")
        ax.set_title(family.replace("_", " "), fontsize=10)
        ax.set_xlabel("epoch")
        if len(lines) <= 12:
            ax.legend(fontsize=7, title="layer", title_fontsize=7)
    fig.tight_layout()
    return fig

"""Calibration of the learned layer: fitting its softmax temperature, and measuring how well
its confidence matches its accuracy (expected calibration error, reliability table)."""

from __future__ import annotations

import statistics

import numpy as np
import numpy.typing as npt


def fit_temperature(logits: npt.NDArray[np.float32], labels: npt.NDArray[np.int64]) -> float:
    """The softmax temperature that minimises the negative log-likelihood of held-out logits
    (temperature scaling): confidence then matches accuracy on requests the fit never saw."""
    best_t, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.25), np.log(8.0), 121)):
        scaled = logits / t
        scaled = scaled - scaled.max(1, keepdims=True)
        log_p = scaled - np.log(np.exp(scaled).sum(1, keepdims=True))
        nll = float(-log_p[np.arange(len(labels)), labels].mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def reliability(outcomes: list[tuple[float, bool]], bins: int = 10) -> tuple[float, str]:
    """Expected calibration error over equal-width confidence bins, and the table behind it."""
    lines = ["| confidence | requests | mean confidence | accuracy |", "|---|---|---|---|"]
    ece = 0.0
    for k in range(bins):
        low, high = k / bins, (k + 1) / bins
        inside = [(c, ok) for c, ok in outcomes if low <= c < high or (k == bins - 1 and c == 1)]
        if not inside:
            continue
        confidence = statistics.fmean(c for c, _ in inside)
        accuracy = sum(ok for _, ok in inside) / len(inside)
        ece += len(inside) / len(outcomes) * abs(confidence - accuracy)
        lines.append(
            f"| {low:.1f}-{high:.1f} | {len(inside)} | {confidence:.3f} | {accuracy:.3f} |"
        )
    return ece, "\n".join(lines)

"""Temperature scaling of the learned layer, and the reliability figures the benchmark prints."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from routing.learned import LABELS, LearnedModel
from training.calibration import fit_temperature, reliability


def overconfident(n: int = 600, right: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """Logits that put ~99.9 % on their top class while only `right` of them are right."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(LABELS), n)
    top = np.where(rng.random(n) < right, labels, (labels + 1) % len(LABELS))
    logits = np.zeros((n, len(LABELS)), dtype=np.float32)
    logits[np.arange(n), top] = 9.0
    return logits, labels


def top_confidence(logits: np.ndarray, temperature: float) -> list[float]:
    scaled = logits / temperature
    p = np.exp(scaled - scaled.max(1, keepdims=True))
    return list((p / p.sum(1, keepdims=True)).max(1))


def test_overconfident_logits_are_cooled_until_confidence_matches_accuracy() -> None:
    logits, labels = overconfident()
    right = list(logits.argmax(1) == labels)
    t = fit_temperature(logits, labels)
    assert t > 1.5
    before, _ = reliability(list(zip(top_confidence(logits, 1.0), right, strict=True)))
    after, table = reliability(list(zip(top_confidence(logits, t), right, strict=True)))
    assert before > 0.25 and after < 0.05
    assert table.startswith("| confidence | requests |")


def test_the_temperature_is_saved_with_the_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    model = LearnedModel(
        weights=rng.standard_normal((8, len(LABELS))).astype(np.float32),
        bias=np.zeros(len(LABELS), dtype=np.float32),
        train_embeddings=np.zeros((1, 384), dtype=np.float32),
        train_labels=np.zeros(1, dtype=np.int64),
        train_ids=["t-0"],
        training_sha256="0" * 64,
        temperature=2.5,
    )
    model.save(tmp_path / "m.npz")
    loaded = LearnedModel.load(tmp_path / "m.npz")
    assert loaded.temperature == 2.5
    x = rng.standard_normal(8).astype(np.float32)
    cooled = loaded.probabilities(x)
    raw = np.exp(x @ model.weights) / np.exp(x @ model.weights).sum()
    assert cooled.max() < raw.max() and cooled.argmax() == raw.argmax()

"""A softmax classifier over sentence embeddings and rule votes, trained on the repository's
own labelled examples; also finds the nearest training examples to explain a decision."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from policies.types import TaskType

Array = npt.NDArray[np.float32]
LABELS = list(TaskType)


@dataclass(frozen=True)
class LearnedModel:
    """Weights of the softmax layer, and the training set's embeddings for nearest examples."""

    weights: Array
    """(features, classes)."""
    bias: Array
    """(classes,)."""
    train_embeddings: Array
    """(examples, 384), float16 on disk."""
    train_labels: npt.NDArray[np.int64]
    train_ids: list[str]
    training_sha256: str
    """SHA-256 of the training file the model was fitted on."""
    temperature: float = 1.0
    """Logits are divided by it, so that confidence matches accuracy on held-out folds."""

    def probabilities(self, features: Array) -> Array:
        logits = (features @ self.weights + self.bias) / self.temperature
        logits -= logits.max()
        exp = np.exp(logits)
        out: Array = exp / exp.sum()
        return out

    def nearest(self, embedding: Array, k: int = 3) -> list[tuple[str, TaskType, float]]:
        """The k training examples closest in meaning: (id, label, cosine)."""
        sims = self.train_embeddings @ embedding
        top = np.argsort(-sims)[:k]
        return [(self.train_ids[i], LABELS[int(self.train_labels[i])], float(sims[i])) for i in top]

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            weights=self.weights,
            bias=self.bias,
            train_embeddings=self.train_embeddings.astype(np.float16),
            train_labels=self.train_labels,
            train_ids=np.asarray(self.train_ids),
            training_sha256=np.asarray(self.training_sha256),
            temperature=np.asarray(self.temperature),
        )

    @classmethod
    def load(cls, path: Path) -> LearnedModel:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                weights=data["weights"].astype(np.float32),
                bias=data["bias"].astype(np.float32),
                train_embeddings=data["train_embeddings"].astype(np.float32),
                train_labels=data["train_labels"].astype(np.int64),
                train_ids=[str(x) for x in data["train_ids"]],
                training_sha256=str(data["training_sha256"]),
                temperature=float(data["temperature"]) if "temperature" in data else 1.0,
            )


def fit_softmax(
    features: Array,
    labels: npt.NDArray[np.int64],
    *,
    l2: float = 1e-3,
    steps: int = 1500,
    lr: float = 0.1,
    seed: int = 0,
) -> tuple[Array, Array]:
    """Multinomial logistic regression by full-batch Adam; returns (weights, bias)."""
    rng = np.random.default_rng(seed)
    n, d = features.shape
    k = len(LABELS)
    w = (rng.standard_normal((d, k)) * 0.01).astype(np.float32)
    b = np.zeros(k, dtype=np.float32)
    onehot = np.eye(k, dtype=np.float32)[labels]
    m_w, v_w = np.zeros_like(w), np.zeros_like(w)
    m_b, v_b = np.zeros_like(b), np.zeros_like(b)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        logits = features @ w + b
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        grad = (p - onehot) / n
        g_w = features.T @ grad + l2 * w
        g_b = grad.sum(0)
        for param, g, m, v in ((w, g_w, m_w, v_w), (b, g_b, m_b, v_b)):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            param -= lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    return w, b

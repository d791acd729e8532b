"""Fit the learned layer on `routing/data/routing_train.jsonl` and save `routing/data/learned.npz`.

    uv run python -m training.fit

The regularisation is chosen by 5-fold cross-validation on the training examples alone, and the
softmax temperature is fitted on the folds' held-out logits; the labelled dev set and the
hold-outs are for measuring, never for fitting.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cluster.config import CONFIG_DIR, load_routing_policy
from policies.classification import RuleClassifier
from policies.types import TaskType
from routing.encoder import MiniLMEncoder
from routing.features import feature_vector
from routing.language import ask_text, pasted_foreign_share
from routing.learned import LABELS, LearnedModel, fit_softmax
from training.calibration import fit_temperature, reliability

DATA = Path(__file__).resolve().parent.parent / "routing" / "data"
TRAINING_FILE = DATA / "routing_train.jsonl"
MODEL_FILE = DATA / "learned.npz"
L2_CHOICES = (3e-5, 1e-4, 3e-4)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def build_features(
    rows: list[dict[str, Any]], encoder: MiniLMEncoder, rules: RuleClassifier
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Embeddings, and features twice per row (with its hints, and without any)."""
    embeddings, feats, labels = [], [], []
    for row in rows:
        ask = ask_text(row["prompt"])
        emb = encoder.encode(ask)
        rule_s, _ = rules.rule_scores(row["prompt"])
        foreign = pasted_foreign_share(row["prompt"])
        hint_s, _ = rules.hint_scores(row.get("task_hints") or [])
        label = LABELS.index(TaskType(row["label"]))
        embeddings.append(emb)
        for hints in (hint_s, dict.fromkeys(TaskType, 0.0)):
            feats.append(feature_vector(emb, ask, rule_s, hints, foreign))
            labels.append(label)
    return (np.stack(embeddings), np.stack(feats), np.asarray(labels, dtype=np.int64))


def cross_validate(
    feats: npt.NDArray[np.float32], labels: npt.NDArray[np.int64], groups: list[str], l2: float
) -> tuple[float, npt.NDArray[np.float32]]:
    """Accuracy without hints, and each example's out-of-fold logits without hints; folds
    split by template so that variants never straddle them."""
    pairs = len(labels) // 2
    names = sorted(set(groups))
    order = np.random.default_rng(1).permutation(len(names))
    logits = np.zeros((pairs, len(LABELS)), dtype=np.float32)
    for fold in range(5):
        held_groups = {names[i] for i in order[fold::5]}
        held = {i for i in range(pairs) if groups[i] in held_groups}
        train_idx = [i for i in range(len(labels)) if i // 2 not in held]
        test_idx = [i for i in range(len(labels)) if i // 2 in held and i % 2 == 1]
        w, b = fit_softmax(feats[train_idx], labels[train_idx], l2=l2, steps=600)
        logits[[i // 2 for i in test_idx]] = feats[test_idx] @ w + b
    correct = int((logits.argmax(1) == labels[1::2]).sum())
    return correct / pairs, logits


def main() -> None:
    started = time.perf_counter()
    rows = load_rows(TRAINING_FILE)
    encoder = MiniLMEncoder()
    rules = RuleClassifier(load_routing_policy(CONFIG_DIR / "routing.yaml"))
    embeddings, feats, labels = build_features(rows, encoder, rules)
    print(f"{len(rows)} examples embedded in {time.perf_counter() - started:.1f}s")
    groups = [r["id"].rsplit("-", 1)[0] for r in rows]
    folds = {l2: cross_validate(feats, labels, groups, l2) for l2 in L2_CHOICES}
    for l2, (acc, _) in folds.items():
        print(f"  l2={l2:g}: 5-fold accuracy without hints {acc:.3f}")
    best = max(folds, key=lambda k: folds[k][0])
    held_out, truth = folds[best][1], labels[1::2]
    temperature = fit_temperature(held_out, truth)
    scaled = held_out / temperature
    p = np.exp(scaled - scaled.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    outcomes = list(zip(p.max(1).tolist(), (p.argmax(1) == truth).tolist(), strict=True))
    ece, table = reliability(outcomes)
    print(f"  temperature {temperature:.3f}, fitted on the out-of-fold logits; their ECE {ece:.3f}")
    print(table)
    w, b = fit_softmax(feats, labels, l2=best)
    model = LearnedModel(
        weights=w,
        bias=b,
        train_embeddings=embeddings,
        train_labels=labels[::2].copy(),
        train_ids=[r["id"] for r in rows],
        training_sha256=file_sha256(TRAINING_FILE),
        temperature=temperature,
    )
    model.save(MODEL_FILE)
    print(f"saved {MODEL_FILE} (l2={best:g}) in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()

"""Accuracy, macro-F1, confusion matrix and decision latency of the task classifier.

    uv run python bench/classifier.py [--data FILE.jsonl ...] [--classifier layered|rules]

Each FILE is JSON lines with `prompt`, `task_hints` and `label` (default: the labelled dev set
in ../shared/data and the two hold-outs in bench/data, none of them trained on). For each, runs
with the hints and without them (accuracy, macro-F1, expected calibration error, latency), then
times prompts lengthened to 2,000 characters twice: with pasted log lines (which the ask
extraction sets aside) and with prose (all of it ask, so the encoder sees its full window).
Then recall by type, the confusion matrix and the reliability table, without hints. The first
line gives the resident memory loading the classifier added to the process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.runtime import build_classifier
from app.settings import Settings
from bench.common import percentile
from cluster.config import CONFIG_DIR, load_routing_policy
from policies.types import TaskType
from training.calibration import reliability

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "data" / "routing_dev.jsonl"
HOLDOUTS = [ROOT / "bench" / "data" / "holdout.jsonl", ROOT / "bench" / "data" / "holdout2.jsonl"]
PADDING = (
    "2024-03-11T02:14:55Z sshd[2231]: Failed password for root from 185.220.101.4 port 52344\n"
)


PROSE = (
    "The night shift reviewed the queue and noted that several finance hosts reached out to "
    "addresses nobody recognised, which the team wants understood before the morning call. "
)


def padded(prompt: str, padding: str, length: int = 2000) -> str:
    """`prompt`, a newline, then `padding` repeated, cut at `length` characters."""
    return (prompt + "\n" + padding * (length // len(padding) + 1))[:length]


def macro_f1(pairs: list[tuple[str, str]]) -> float:
    scores = []
    for label in (t.value for t in TaskType):
        tp = sum(1 for gold, pred in pairs if gold == label and pred == label)
        fp = sum(1 for gold, pred in pairs if gold != label and pred == label)
        fn = sum(1 for gold, pred in pairs if gold == label and pred != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return statistics.fmean(scores)


def confusion(pairs: list[tuple[str, str]]) -> str:
    labels = [t.value for t in TaskType]
    short = [label[:10] for label in labels]
    lines = ["| gold \\ predicted | " + " | ".join(short) + " |", "|---" * (len(labels) + 1) + "|"]
    for gold in labels:
        row = [sum(1 for g, p in pairs if g == gold and p == pred) for pred in labels]
        lines.append(f"| {gold} | " + " | ".join(str(n) for n in row) + " |")
    return "\n".join(lines)


def resident_mb() -> float:
    """This process's resident memory (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def recall_by_type(pairs: list[tuple[str, str]]) -> str:
    cells = []
    for label in (t.value for t in TaskType):
        gold = [p for g, p in pairs if g == label]
        cells.append(f"{sum(p == label for p in gold) / len(gold):.2f}" if gold else "-")
    return "| " + " | ".join(cells) + " |"


def run(
    classifier: Any, rows: list[dict[str, Any]], hints: bool
) -> tuple[list[tuple[str, str]], list[float], list[tuple[float, bool]]]:
    pairs, latencies, outcomes = [], [], []
    for row in rows:
        started = time.perf_counter()
        decision = classifier.classify(row["prompt"], row.get("task_hints") if hints else None)
        latencies.append((time.perf_counter() - started) * 1000)
        pairs.append((row["label"], decision.task_type.value))
        outcomes.append((decision.confidence, decision.task_type.value == row["label"]))
    return pairs, latencies, outcomes


def report(classifier: Any, path: Path) -> None:
    """Every table for one labelled file."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print(f"\n## {len(rows)} requests from {path}\n")
    print("| run | accuracy | macro-F1 | ECE | p50 ms | p99 ms |\n|---|---|---|---|---|---|")
    results = {}
    for hints in (False, True):
        pairs, latencies, outcomes = run(classifier, rows, hints)
        results[hints] = pairs, outcomes
        accuracy = sum(g == p for g, p in pairs) / len(pairs)
        ece, _ = reliability(outcomes)
        print(
            f"| {'with hints' if hints else 'without hints'} | {accuracy:.3f} | "
            f"{macro_f1(pairs):.3f} | {ece:.3f} | {percentile(latencies, 50):.2f} | "
            f"{percentile(latencies, 99):.2f} |"
        )
    for name, padding in (("pasted log lines", PADDING), ("prose", PROSE)):
        long_rows = [{**row, "prompt": padded(row["prompt"], padding)} for row in rows]
        _, latencies, _ = run(classifier, long_rows, False)
        print(
            f"| padded with {name} to 2,000 chars | | | | {percentile(latencies, 50):.2f} | "
            f"{percentile(latencies, 99):.2f} |"
        )
    pairs, outcomes = results[False]
    print("\nrecall by type without hints:\n")
    print("| " + " | ".join(t.value for t in TaskType) + " |")
    print("|---" * len(TaskType) + "|")
    print(recall_by_type(pairs))
    print("\nconfusion matrix without hints:\n")
    print(confusion(pairs))
    print("\nreliability without hints:\n")
    print(reliability(outcomes)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, nargs="+", default=[DEV, *HOLDOUTS])
    parser.add_argument("--classifier", choices=["layered", "rules"], default="layered")
    args = parser.parse_args()
    policy = load_routing_policy(CONFIG_DIR / "routing.yaml")
    before = resident_mb()
    classifier = build_classifier(Settings(classifier=args.classifier), policy)
    for _ in range(10):  # warm caches
        classifier.classify("Is this login from a new country malicious?")
    print(f"classifier: {args.classifier}, resident memory {resident_mb() - before:.0f} MB")
    for path in args.data:
        report(classifier, path)


if __name__ == "__main__":
    main()

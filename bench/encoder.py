"""Sentence-encoder cost, float32 against int8, by input length, in one run.

    uv run python bench/encoder.py [--repeats 60]

Both encoders are built from the same wheel, with the window opened to 128 tokens; the two
precisions take turns on each input so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table
from routing.encoder import MiniLMEncoder

LENGTHS = (16, 32, 48, 64, 128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=60)
    args = parser.parse_args()
    encoders = {
        "float32": MiniLMEncoder(max_tokens=128, int8=False),
        "int8": MiniLMEncoder(max_tokens=128, int8=True),
    }
    samples: dict[str, list[float]] = {}
    for tokens in LENGTHS:
        text = " ".join(["beacon"] * (tokens - 2))  # one token a word, plus [CLS] and [SEP]
        for name, encoder in encoders.items():
            assert len(encoder.token_ids(text)) == tokens
            encoder.encode(text)  # warm-up
            samples[f"{name}, {tokens} tokens"] = []
        for _ in range(args.repeats):
            for name, encoder in encoders.items():
                started = time.perf_counter()
                encoder.encode(text)
                samples[f"{name}, {tokens} tokens"].append((time.perf_counter() - started) * 1000)
    print_table(samples)


if __name__ == "__main__":
    main()

"""Splitting a batch of items across execution slots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def proportional_counts(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` into integer shares proportional to `weights` (largest remainder)."""
    if total < 0:
        raise ValueError("total must be >= 0")
    if not weights:
        raise ValueError("at least one weight is needed")
    positive = [max(w, 0.0) for w in weights]
    mass = sum(positive)
    if mass == 0:
        positive = [1.0] * len(weights)
        mass = float(len(weights))
    exact = [total * w / mass for w in positive]
    counts = [int(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def chunk_items(items: Sequence[str], weights: Sequence[float]) -> list[tuple[int, list[str]]]:
    """Contiguous chunks of `items`, sized by `weights`; each with its first item's index.

    Empty chunks are dropped, so fewer chunks than weights may come back.
    """
    chunks: list[tuple[int, list[str]]] = []
    start = 0
    for count in proportional_counts(len(items), weights):
        if count:
            chunks.append((start, list(items[start : start + count])))
        start += count
    return chunks


#: How a batch's items are to be answered, so that each answer can be read back by number.
ANSWER_FORMAT = "Answer every item on its own line as `<number>. <answer>`, keeping its number."
LABEL_FORMAT = (
    'Answer as JSON, one entry per item: {{"answers": [{{"item": <its number>, '
    '"label": <one of: {labels}>}}]}}.'
)


def numbered_prompt(
    prompt: str, items: Sequence[str], first_index: int, labels: Sequence[str] = ()
) -> str:
    """The prompt followed by the chunk's items, numbered as in the whole batch."""
    return item_prompt(prompt, list(enumerate(items, first_index)), labels)


def item_prompt(
    prompt: str, numbered: Sequence[tuple[int, str]], labels: Sequence[str] = ()
) -> str:
    """The prompt, how to answer (a label of `labels` per item, as JSON, when given), then each
    (index, item) as `index + 1. item`."""
    ask = LABEL_FORMAT.format(labels=", ".join(labels)) if labels else ANSWER_FORMAT
    lines = [f"{index + 1}. {item}" for index, item in numbered]
    return f"{prompt}\n\n{ask}\n\n" + "\n".join(lines)


def label_format(indices: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    """The response format that holds a model to one label of `labels` for each item at
    `indices` (numbered from 1), every item once and in order, for servers with guided
    decoding (vLLM)."""
    label = {"enum": list(labels)}
    entries = [
        {
            "type": "object",
            "properties": {"item": {"const": index + 1}, "label": label},
            "required": ["item", "label"],
            "additionalProperties": False,
        }
        for index in indices
    ]
    schema = {
        "type": "object",
        "properties": {
            "answers": {
                "type": "array",
                "prefixItems": entries,
                "items": False,
                "minItems": len(indices),
                "maxItems": len(indices),
            }
        },
        "required": ["answers"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "labels", "schema": schema}}

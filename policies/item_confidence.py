"""How sure a model was of each label in a labelled batch answer, from its tokens' logprobs.

A chunk's answer is JSON, `{"answers": [{"item": 7, "label": "malicious"}, ...]}`. An item's
confidence is the probability of its label's first token among the first tokens of the set's
labels the server saw at that place (its top logprobs), times the probabilities of the
label's later tokens: how sure the model was of this label rather than another.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

_LABELLED = re.compile(r'"item"\s*:\s*(\d+)\s*,\s*"label"\s*:\s*"')


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token, its logprob, and the server's top alternatives at its place."""

    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)
    """The likeliest tokens at its place and their logprobs; empty when none were asked for."""


def label_confidences(
    content: str, tokens: Sequence[TokenLogprob], labels: Sequence[str]
) -> dict[int, float]:
    """Each JSON-answered item's confidence in its label, by the item's number; empty when
    the tokens do not spell the content (nothing to tie a label to). Tokens past the content
    (the end-of-turn token vLLM lists) are ignored."""
    if not tokens or not "".join(t.token for t in tokens).startswith(content):
        return {}
    starts = [0, *itertools.accumulate(len(t.token) for t in tokens)][:-1]
    out: dict[int, float] = {}
    for match in _LABELLED.finditer(content):
        begin = match.end()
        end = content.find('"', begin)
        if end <= begin or content[begin:end] not in labels:
            continue
        first = bisect.bisect_right(starts, begin) - 1
        last = bisect.bisect_right(starts, end - 1) - 1
        share = _first_share(tokens[first], begin - starts[first], labels)
        rest = sum(t.logprob for t in tokens[first + 1 : last + 1])
        out[int(match.group(1))] = round(share * math.exp(rest), 6)
    return out


def _first_share(token: TokenLogprob, cut: int, labels: Sequence[str]) -> float:
    """The chosen token's probability among the alternatives that start a label at `cut`."""
    chosen = math.exp(token.logprob)
    if not token.top:
        return chosen

    def starts_a_label(text: str) -> bool:
        rest = text[cut:]
        return bool(rest) and any(lab.startswith(rest) or rest.startswith(lab) for lab in labels)

    others = sum(
        math.exp(logprob)
        for alt, logprob in token.top.items()
        if alt != token.token and alt[:cut] == token.token[:cut] and starts_a_label(alt)
    )
    return chosen / (chosen + others)

"""How sure a model was of each label in a labelled batch answer, from its tokens' logprobs.

A chunk's answer is JSON, `{"answers": [{"item": 7, "label": "malicious"}, ...]}`. At each
token of a label, while the text so far could still become more than one label, the server's
top alternatives are split by the labels they lead to: the label's share there is the
probability of the tokens that lead to it over that of the tokens that lead to any label.
An item's confidence is the product of those shares: how sure the model was of this label
rather than another, whatever the tokens the label was spelled with.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

_LABELLED = re.compile(r'"item"\s*:\s*(\d+)\s*,\s*"label"\s*:\s*"((?:[^"\\]|\\.)*)"')


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
    """Each JSON-answered item's confidence in its label, by the item's number (the last
    entry for a number, as the answer is read); empty when the tokens do not spell the
    content. Tokens past the content (the end-of-turn token vLLM lists) are ignored."""
    if not tokens or not "".join(t.token for t in tokens).startswith(content):
        return {}
    # Each label as the answer's JSON spells it, with the quote that closes it.
    spelled = {json.dumps(label)[1:]: label for label in labels}
    starts = [0, *itertools.accumulate(len(t.token) for t in tokens)][:-1]
    out: dict[int, float] = {}
    for match in _LABELLED.finditer(content):
        number = int(match.group(1))
        chosen = match.group(2) + '"'
        if chosen not in spelled:
            out.pop(number, None)
            continue
        begin = match.start(2)
        share = 1.0
        k = bisect.bisect_right(starts, begin) - 1
        while k < len(tokens) and starts[k] < match.end(2):
            so_far = content[begin : max(begin, starts[k])]
            live = [s for s in spelled if s.startswith(so_far)]
            if len(live) <= 1:
                break  # only the chosen label is left: the rest is spelling
            share *= _share(tokens[k], max(0, begin - starts[k]), so_far, chosen, live)
            k += 1
        out[number] = round(share, 6)
    return out


def _share(token: TokenLogprob, cut: int, so_far: str, chosen: str, live: list[str]) -> float:
    """The probability of the alternatives at `token` that lead to `chosen`, over that of
    those that lead to any of the `live` labels."""
    if not token.top:
        return math.exp(token.logprob)  # no alternatives: the token's own probability

    def leads_to(alt: str, spelled: str) -> bool:
        text = so_far + alt[cut:]
        return len(text) > len(so_far) and (spelled.startswith(text) or text.startswith(spelled))

    # An alternative must agree with the chosen token on what came before the label.
    alternatives = {**token.top, token.token: token.logprob}
    candidates = {a: lp for a, lp in alternatives.items() if a[:cut] == token.token[:cut]}
    mine = sum(math.exp(lp) for a, lp in candidates.items() if leads_to(a, chosen))
    anywhere = sum(
        math.exp(lp) for a, lp in candidates.items() if any(leads_to(a, s) for s in live)
    )
    return mine / anywhere if anywhere > 0 else 1.0

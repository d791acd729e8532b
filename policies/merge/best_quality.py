"""Best quality: the single answer with the highest quality score.

score = 0.4 * format + 0.3 * completeness + 0.2 * length + 0.1 * confidence, where
- format is 1 when the asked-for format is met (valid JSON, alone or in a fenced block,
  when JSON was asked for; a fenced code block when code was asked for), else 0; 1 when
  nothing particular was asked;
- completeness is 1 for finish_reason `stop`, 0 for `length` (truncated), 0.5 when unknown;
- length is min(1, words / 40): very short answers lose, long ones gain nothing more;
- confidence is the logprob confidence, 0.5 when unknown.
Ties go to the earlier candidate.
"""

from __future__ import annotations

import json
import re

from policies.merge.base import Candidate, Expectation, MergeOutcome, require_candidates
from policies.types import MergeStrategy

_FENCE = re.compile(r"```[\w+-]*\n(.*?)```", re.DOTALL)


def is_valid_json(text: str) -> bool:
    """True when the text, or a fenced block in it, parses as JSON."""
    bodies = [text.strip(), *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for body in bodies:
        try:
            json.loads(body)
        except ValueError:
            continue
        return True
    return False


def quality_score(cand: Candidate, expect: Expectation) -> float:
    """The documented quality score of one candidate."""
    fmt = 1.0
    if expect.json:
        fmt = 1.0 if is_valid_json(cand.text) else 0.0
    elif expect.code:
        fmt = 1.0 if _FENCE.search(cand.text) else 0.0
    completeness = {"stop": 1.0, "length": 0.0}.get(cand.finish_reason or "", 0.5)
    length = min(1.0, len(cand.text.split()) / 40)
    return 0.4 * fmt + 0.3 * completeness + 0.2 * length + 0.1 * cand.weight


def best_quality(candidates: list[Candidate], expect: Expectation) -> MergeOutcome:
    """The highest-scoring answer."""
    require_candidates(candidates)
    scores = {i: round(quality_score(c, expect), 4) for i, c in enumerate(candidates)}
    best = max(scores, key=lambda i: (scores[i], -i))
    chosen = candidates[best]
    return MergeOutcome(
        strategy=MergeStrategy.BEST_QUALITY,
        answer=chosen.text,
        used=[best],
        reason=f"{chosen.label} scored {scores[best]:.3f}, highest of {len(candidates)}",
        scores=scores,
    )

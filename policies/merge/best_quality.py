"""Best quality: the single answer with the highest quality score.

score = 0.4 * format + 0.3 * completeness + 0.2 * length + 0.1 * confidence, where
- format is 1 when the asked-for format is met, else 0; 1 when nothing particular was asked.
  JSON asked for: valid JSON, alone or in a fenced block. Code asked for: a YARA, Sigma,
  KQL or SQL answer must pass its tool's check (YARA-X, pySigma, the Kusto grammar,
  sqlglot), so a rule that compiles beats one that does not; other code needs a fenced block;
- completeness is 1 for finish_reason `stop`, 0 for `length` (truncated), 0.5 when unknown;
- length is min(1, words / 40): very short answers lose, long ones gain nothing more;
- confidence is the logprob confidence, 0.5 when unknown.
Ties go to the earlier candidate.
"""

from __future__ import annotations

import json
import re

from policies.merge.base import Candidate, Expectation, MergeOutcome, require_candidates
from policies.types import MergeStrategy, TaskType
from policies.validators import CheckOptions, pick

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


def format_score(text: str, expect: Expectation) -> float:
    """1 when `text` meets the asked-for format (see the module's formula), else 0."""
    if expect.json:
        return 1.0 if is_valid_json(text) else 0.0
    if not expect.code:
        return 1.0
    # The code a tool checks is rule_generation's: YARA, Sigma, KQL, SQL.
    found = pick(TaskType.RULE_GENERATION, text, CheckOptions())
    if found is not None:
        checker, artifact = found
        return 1.0 if checker.check(artifact, CheckOptions()).ok else 0.0
    return 1.0 if _FENCE.search(text) else 0.0


def quality_score(cand: Candidate, expect: Expectation) -> float:
    """The documented quality score of one candidate."""
    fmt = format_score(cand.text, expect)
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

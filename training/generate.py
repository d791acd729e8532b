"""Write `routing/data/routing_train.jsonl` from the hand-written examples, pasted material filled in.

    uv run python -m training.generate

Each example appears a few times with different pasted material, wording around it and
client hints (right, generic or misleading), seeded so the file is reproducible.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from training import artifacts as a
from training import examples as ex
from training import examples_analyst as analyst
from training import examples_boundaries as edge
from training import examples_breadth as breadth
from training import examples_context as context
from training import examples_more as more
from training import examples_short as short

OUT = Path(__file__).resolve().parent.parent / "routing" / "data" / "routing_train.jsonl"
VARIANTS = 3
LABELS = {
    "general_reasoning": ex.GENERAL
    + more.GENERAL
    + edge.GENERAL
    + short.GENERAL
    + context.GENERAL
    + analyst.GENERAL
    + breadth.GENERAL,
    "multilingual": ex.MULTILINGUAL
    + more.MULTILINGUAL
    + edge.MULTILINGUAL
    + short.MULTILINGUAL
    + context.MULTILINGUAL
    + analyst.MULTILINGUAL
    + breadth.MULTILINGUAL,
    "structured_parsing": ex.PARSING
    + more.PARSING
    + edge.PARSING
    + short.PARSING
    + context.PARSING
    + analyst.PARSING
    + breadth.PARSING,
    "rule_generation": ex.RULEGEN
    + more.RULEGEN
    + edge.RULEGEN
    + short.RULEGEN
    + context.RULEGEN
    + analyst.RULEGEN
    + breadth.RULEGEN,
    "adversarial_reasoning": ex.ADVERSARIAL
    + more.ADVERSARIAL
    + edge.ADVERSARIAL
    + short.ADVERSARIAL
    + context.ADVERSARIAL
    + analyst.ADVERSARIAL
    + breadth.ADVERSARIAL,
    "classification": ex.CLASSIFICATION
    + more.CLASSIFICATION
    + edge.CLASSIFICATION
    + short.CLASSIFICATION
    + context.CLASSIFICATION
    + analyst.CLASSIFICATION
    + breadth.CLASSIFICATION,
}
GOOD_HINTS = {
    "general_reasoning": ["summary", "explain", "analysis", "reasoning"],
    "multilingual": ["translate", "language", "multilingual"],
    "structured_parsing": ["extract", "parse", "ioc", "json"],
    "rule_generation": ["rule", "code", "yara", "sigma", "query"],
    "adversarial_reasoning": ["threat", "adversary", "malicious", "mitre"],
    "classification": ["classify", "triage", "label"],
}
GENERIC_HINTS = ["security", "soc", "urgent", "incident", "alert", "logs", "email"]
OPENERS = [
    "",
    "",
    "",
    "Hi, ",
    "Quick one: ",
    "From the night shift: ",
    "Need help. ",
    "For ticket INC-4412: ",
    "Can you help? ",
]
CLOSERS = ["", "", "", " Thanks.", " Please be concise.", " ASAP please.", " Cheers."]
SLOTS = {
    "log": a.LOGS,
    "cmd": a.COMMANDS,
    "mail": a.MAIL,
    "alert": a.ALERTS_JSON,
    "code": a.CODE,
    "rule": a.RULES,
    "query": a.QUERIES,
    "report": a.REPORTS,
    "snippet": list(a.FOREIGN_SNIPPETS.values()),
    "snippet_ru": [a.FOREIGN_SNIPPETS["Russian"]],
    "snippet_zh": [a.FOREIGN_SNIPPETS["Chinese"]],
    "snippet_es": [a.FOREIGN_SNIPPETS["Spanish"]],
    "snippet_de": [a.FOREIGN_SNIPPETS["German"]],
    "snippet_pt": [a.FOREIGN_SNIPPETS["Portuguese"]],
    "snippet_fr": [a.FOREIGN_SNIPPETS["French"]],
    "snippet_ar": [a.FOREIGN_SNIPPETS["Arabic"]],
    "snippet_ja": [a.FOREIGN_SNIPPETS["Japanese"]],
}


def fill(template: str, rng: random.Random) -> str:
    out = template
    for slot, choices in SLOTS.items():
        while "{" + slot + "}" in out:
            out = out.replace("{" + slot + "}", rng.choice(choices), 1)
    return out.replace("{{", "{").replace("}}", "}")


def hints(label: str, rng: random.Random) -> list[str]:
    roll = rng.random()
    if roll < 0.45:
        return []
    if roll < 0.85:
        return rng.sample(GOOD_HINTS[label], k=rng.randint(1, 2))
    if roll < 0.95:
        return [rng.choice(GENERIC_HINTS)]
    other = rng.choice([k for k in GOOD_HINTS if k != label])
    return [rng.choice(GOOD_HINTS[other])]


def generate(seed: int = 20261126) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    for label, templates in LABELS.items():
        for t_index, template in enumerate(templates):
            for v in range(VARIANTS):
                body = fill(template, rng)
                # Foreign-language prompts keep their own wording: no English openers.
                if label != "multilingual" or template.startswith(
                    ("Translate", "Summarize", "Explain", "What", "Can", "Render", "Classify", "Is")
                ):
                    body = rng.choice(OPENERS) + body + rng.choice(CLOSERS)
                if v == 2 and rng.random() < 0.5:
                    body = body.lower()
                if body in seen:
                    continue
                seen.add(body)
                rows.append(
                    {
                        "id": f"t-{label[:4]}-{t_index:02d}-{v}",
                        "prompt": body,
                        "task_hints": hints(label, rng),
                        "label": label,
                    }
                )
    rng.shuffle(rows)
    return rows


def main() -> None:
    rows = generate()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} examples to {OUT}")


if __name__ == "__main__":
    main()

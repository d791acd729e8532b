"""What checking an answer adds, per kind of answer: the validate node's work on the thread it
runs on, for a passing and a failing answer of each kind.

    uv run python bench/validation.py [--runs 300]

Each row times `pick` (finding the artifact in a model's answer) and `check` together, as the
validate node runs them, plus the hop to the worker thread and back that the node makes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table
from policies.types import TaskType
from policies.validators import CheckOptions, pick

YARA = """rule dropper {
  strings:
    $a = "evil.exe"
    $b = /cmd\\.exe \\/c [a-z]+/
  condition:
    any of them
}"""
SIGMA = """title: Encoded PowerShell
id: 5b2f1c9e-0a51-4f4b-9c55-2f3f1e0c8a11
status: experimental
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    Image|endswith: '\\\\powershell.exe'
    CommandLine|contains:
      - ' -enc '
      - ' -EncodedCommand '
  condition: selection
level: high
"""
KQL = """SigninLogs
| where TimeGenerated > ago(1d) and ResultType != 0
| summarize failures = count(), ips = make_set(IPAddress)
    by UserPrincipalName, bin(TimeGenerated, 1h)
| where failures > 10
| order by failures desc"""
SQL = "SELECT host, count(*) AS failures FROM logons WHERE ok = 0 GROUP BY host HAVING count(*) > 5"
JSON = '{"ips": ["198.51.100.7", "203.0.113.9"], "user": "ann"}'
SCHEMA = {
    "type": "object",
    "required": ["ips", "user"],
    "properties": {
        "ips": {"type": "array", "items": {"type": "string"}},
        "user": {"type": "string"},
    },
}
CASES: dict[str, tuple[TaskType, str, CheckOptions]] = {
    "YARA, compiles": (TaskType.RULE_GENERATION, f"```yara\n{YARA}\n```", CheckOptions()),
    "YARA, syntax error": (
        TaskType.RULE_GENERATION,
        f"```yara\n{YARA.replace('any of them', 'any of them and')}\n```",
        CheckOptions(),
    ),
    "Sigma, validates": (TaskType.RULE_GENERATION, f"```yaml\n{SIGMA}```", CheckOptions()),
    "Sigma, + Splunk SPL": (
        TaskType.RULE_GENERATION,
        f"```yaml\n{SIGMA}```",
        CheckOptions(target="splunk"),
    ),
    "Sigma, + KQL": (
        TaskType.RULE_GENERATION,
        f"```yaml\n{SIGMA}```",
        CheckOptions(target="kusto"),
    ),
    "KQL, parses": (TaskType.RULE_GENERATION, f"```kql\n{KQL}\n```", CheckOptions()),
    "KQL, syntax error": (
        TaskType.RULE_GENERATION,
        f"```kql\n{KQL.replace('failures > 10', 'failures >')}\n```",
        CheckOptions(),
    ),
    "SQL, parses": (TaskType.RULE_GENERATION, f"```sql\n{SQL}\n```", CheckOptions()),
    "JSON, fits the schema": (
        TaskType.STRUCTURED_PARSING,
        JSON,
        CheckOptions(schema=SCHEMA),
    ),
    "JSON, misses the schema": (
        TaskType.STRUCTURED_PARSING,
        JSON.replace('"ann"', "7"),
        CheckOptions(schema=SCHEMA),
    ),
}


def validate_once(task_type: TaskType, answer: str, options: CheckOptions) -> bool:
    found = pick(task_type, answer, options)
    assert found is not None
    checker, artifact = found
    return checker.check(artifact, options).ok


async def measure(runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    # The Kusto parser builds its prediction caches on its first queries: once a process.
    started = time.perf_counter()
    validate_once(*CASES["KQL, parses"])
    print(f"first KQL check in this process: {(time.perf_counter() - started) * 1000:.0f} ms")
    for _ in range(20):  # imports, caches
        for task_type, answer, options in CASES.values():
            validate_once(task_type, answer, options)
    for _ in range(runs):
        for name, (task_type, answer, options) in CASES.items():
            started = time.perf_counter()
            await asyncio.to_thread(validate_once, task_type, answer, options)
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    print_table(asyncio.run(measure(args.runs)))


if __name__ == "__main__":
    main()

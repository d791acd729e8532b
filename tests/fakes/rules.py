"""Detection content a model might answer with: a YARA rule that compiles, the same rule
with a syntax error on line 6, and a Sigma rule for encoded PowerShell; and a fake model that
answers one thing, then another once the router asks it to repair its answer."""

from collections.abc import Callable
from typing import Any

YARA = 'rule dropper {\n  strings:\n    $a = "evil.exe"\n  condition:\n    $a\n}'
BROKEN_YARA = YARA.replace("condition:\n    $a", "condition:\n    $a and")
SIGMA = """title: Encoded PowerShell
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    Image|endswith: '\\\\powershell.exe'
    CommandLine|contains: ' -enc '
  condition: selection
"""


def first_then(first: str, repaired: str) -> Callable[[str, list[dict[str, Any]]], str]:
    """A fake node's reply: `first`, and `repaired` once asked to correct it."""

    def reply(model: str, messages: list[dict[str, Any]]) -> str:
        return repaired if "Reply with the" in str(messages[-1]["content"]) else first

    return reply

"""Detection content a model might answer with: a YARA rule that compiles, the same rule
with a syntax error on line 6, and a Sigma rule for encoded PowerShell."""

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

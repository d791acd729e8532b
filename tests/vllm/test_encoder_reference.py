"""The MiniLM encoder, float32 and int8, against the reference forward pass in PyTorch/transformers.

PyTorch lives in the vLLM environment that `local-nodes` builds, so this runs with the
real-vLLM suite.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from devnodes.environment import vllm_python
from routing.encoder import MiniLMEncoder, shared_encoder, wheel_model_dir

pytestmark = pytest.mark.vllm
SENTENCES = [
    "Write a YARA rule for this malware family.",
    "Extract every IP address from these logs into JSON.",
    "¿Qué hace este comando?",
    "EventID=4688 NewProcess=C:\\Windows\\System32\\rundll32.exe " * 20,
]
REFERENCE = """
import json, sys, torch
from transformers import AutoModel, AutoTokenizer
folder, window = sys.argv[1], int(sys.argv[2])
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModel.from_pretrained(folder).eval()
out = []
for ids in json.load(sys.stdin):
    t = torch.tensor([ids])
    with torch.no_grad():
        h = model(input_ids=t, attention_mask=torch.ones_like(t)).last_hidden_state[0]
    v = h.mean(0)
    out.append((v / v.norm()).tolist())
print(json.dumps(out))
"""


def test_encoder_matches_the_reference_model() -> None:
    exact = MiniLMEncoder(int8=False)
    token_ids = [exact.token_ids(s) for s in SENTENCES]
    proc = subprocess.run(
        [str(vllm_python()), "-c", REFERENCE, str(wheel_model_dir()), str(exact.max_tokens)],
        input=json.dumps(token_ids),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    reference = np.asarray(json.loads(proc.stdout.strip().splitlines()[-1]), dtype=np.float32)
    float32 = (np.stack([exact.encode(s) for s in SENTENCES]) * reference).sum(1)
    assert float32.min() > 0.9999, float32
    # int8 trades a little fidelity for speed; the learned layer is fitted on its output.
    served = shared_encoder()
    assert served.int8 and served.token_ids(SENTENCES[3]) == token_ids[3]
    int8 = (np.stack([served.encode(s) for s in SENTENCES]) * reference).sum(1)
    assert 0.97 < int8.min() < 0.9999, int8

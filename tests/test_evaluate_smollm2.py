"""BFCL on SmolLM2-135M offline (slow: a minute or two on 2 CPU cores): a real subset, its scores printed.

It asserts that every item got an answer and a verdict, not any accuracy (a 135M base model scores low).
"""

import json

import pytest

from toolr0_lite.bfcl import NON_LIVE
from toolr0_lite.evaluate import EvalConfig, evaluate_model
from toolr0_lite.rundir import read_jsonl

pytestmark = [pytest.mark.slow, pytest.mark.bfcl]


def test_smollm2_base_on_a_bfcl_subset(tmp_path):
    logs = []
    summaries = evaluate_model("smollm2-135m", EvalConfig(limit=7, max_new_tokens=128), out=tmp_path, log=logs.append)
    print("\nSmolLM2-135M base, BFCL subset of 7 (1 per category):\n" + logs[0])
    results = read_jsonl(tmp_path / "results.jsonl")
    assert len(results) == 7 and {r["category"] for r in results} == set(NON_LIVE)
    assert all(isinstance(r["valid"], bool) and (r["valid"] or r["error_type"]) for r in results)
    categories = summaries["base"]["bfcl"]["categories"]
    assert all(0.0 <= c["accuracy"] <= 1.0 and c["n"] == 1 for c in categories.values())
    assert json.loads((tmp_path / "summary.json").read_text())["variants"] == summaries

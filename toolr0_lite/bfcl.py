"""BFCL (Berkeley Function Calling Leaderboard), non-live AST and irrelevance, read and checked by its own package.

The questions, the ground truth and the AST checker all come from the `bfcl-eval` wheel, so our scores are the
leaderboard's rules, not a re-implementation. This file only adapts: a BFCL item becomes a Solver task (its
functions are the tool menu), and the Solver's decoded calls `[{"name", "arguments"}]` become BFCL's
`[{name: {argument: value}}]`. For Java and JavaScript BFCL expects every value as source text ("50L",
"true", 'new ArrayList<>(Arrays.asList("a"))'), so non-string JSON values are written in that language.

Nothing here runs a model: `load_items` and `score` are plain functions, tested with BFCL's ground truth.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
import types
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolr0_lite.parsing import to_tool
from toolr0_lite.records import Call, Task

BFCL_INSTALL = ('pip install "toolr0-lite[eval]" && pip install --no-deps bfcl-eval==2026.3.23  '
                '(from a clone: pip install -e ".[eval]" && pip install --no-deps bfcl-eval==2026.3.23)')  # fmt: skip
AST_CATEGORIES = ("simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple")
CATEGORIES = (*AST_CATEGORIES, "irrelevance")
MODEL_NAME = "toolr0-lite"  # the checker asks a model's config whether it renamed "a.b" to "a_b"; ours did not


@dataclass
class BfclItem:
    """One BFCL question: `functions` as the model sees them (with BFCL's language hints), `checked` as the
    checker reads them (the declared Java/JavaScript types), and the possible answers (None for irrelevance)."""

    id: str
    category: str
    question: str
    functions: list[dict]
    checked: list[dict]
    answer: list[dict] | None

    @property
    def language(self) -> str:
        return {"simple_java": "java", "simple_javascript": "javascript"}.get(self.category, "python")

    def to_task(self) -> Task:
        """The item as a Solver task: its request and its functions as the tool menu (no gold calls here)."""
        tools = [to_tool(f) for f in self.functions]
        return Task(question=self.question, tools=[t for t in tools if not isinstance(t, str)], gold_calls=[], id=self.id)


def _bfcl():
    """Import bfcl-eval's data loader and AST checker without the hosted-model clients it would pull in.

    `ast_checker` imports `bfcl_eval.constants.model_config`, which imports every API client (openai,
    anthropic, ...). The checker reads one field from it, `MODEL_CONFIG_MAPPING[name].underscore_to_dot`,
    so a stand-in module with that one field is registered first. And bfcl-eval creates result folders
    under `BFCL_PROJECT_ROOT` on import (inside site-packages by default), so that points at a temp folder.
    """
    if importlib.util.find_spec("bfcl_eval") is None or importlib.util.find_spec("tree_sitter") is None:
        raise ImportError(f"BFCL evaluation needs bfcl-eval and its checker's parsers: {BFCL_INSTALL}")
    os.environ.setdefault("BFCL_PROJECT_ROOT", str(Path(os.environ.get("TMPDIR", "/tmp")) / "toolr0_lite_bfcl"))
    name = "bfcl_eval.constants.model_config"
    if name not in sys.modules:
        stand_in = types.ModuleType(name)
        stand_in.MODEL_CONFIG_MAPPING = defaultdict(lambda: types.SimpleNamespace(underscore_to_dot=False))
        sys.modules[name] = stand_in
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.utils import load_dataset_entry, load_ground_truth_entry

    return Language, ast_checker, load_dataset_entry, load_ground_truth_entry


def load_items(categories: tuple[str, ...] | list[str] = CATEGORIES, limit: int | None = None, seed: int = 0) -> list[BfclItem]:
    """BFCL items of `categories`; with `limit`, a seeded subset of about `limit` items spread evenly over them."""
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown BFCL categories {unknown}; choose from {', '.join(CATEGORIES)}")
    _, _, load_dataset_entry, load_ground_truth_entry = _bfcl()
    items = []
    for k, category in enumerate(categories):
        shown = load_dataset_entry(category, include_language_specific_hint=True)
        plain = {e["id"]: e["function"] for e in load_dataset_entry(category, include_language_specific_hint=False)}
        answers = {} if category == "irrelevance" else {e["id"]: e["ground_truth"] for e in load_ground_truth_entry(category)}
        if limit is not None:
            share = limit // len(categories) + (k < limit % len(categories))
            shown = random.Random(f"{seed}-{category}").sample(shown, min(share, len(shown)))
        for entry in shown:
            turn = entry["question"][0]  # non-live categories are single-turn
            question = "\n".join(m["content"] for m in turn if m["role"] == "user")
            items.append(BfclItem(entry["id"], category, question, entry["function"], plain[entry["id"]],
                                  answers.get(entry["id"])))  # fmt: skip
    return items


# ---------------------------------------------------------------- decoded calls → BFCL's format


def _literal(value: Any, declared: dict, language: str) -> str:
    """A JSON value as Java or JavaScript source text, in the form BFCL's type converters read."""
    kind, item_kind = declared.get("type", "any"), (declared.get("items") or {}).get("type")
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        suffix = {("java", "long"): "L", ("java", "float"): "f", ("javascript", "Bigint"): "n"}.get((language, kind), "")
        return f"{value}{suffix}"
    if language == "javascript":
        return json.dumps(value)
    if isinstance(value, dict):
        puts = " ".join(f'put("{k}", {_java_element(v, "any", quoted=True)});' for k, v in value.items())
        return f"new HashMap<String, Object>() {{{{ {puts} }}}}"
    if kind == "ArrayList":  # BFCL strips the quotes of String and char elements here, and only here
        quoted = item_kind in ("String", "char", None)
        return f"new ArrayList<>(Arrays.asList({', '.join(_java_element(v, item_kind, quoted) for v in value)}))"
    return f"new {item_kind or 'Object'}[]{{{', '.join(_java_element(v, item_kind, False) for v in value)}}}"


def _java_element(value: Any, kind: str | None, quoted: bool) -> str:
    if isinstance(value, str):
        return json.dumps(value) if quoted else value
    return _literal(value, {"type": kind or "any"}, "java")


def to_bfcl_calls(calls: list[Call], item: BfclItem) -> list[dict]:
    """`[Call(name, arguments)]` → `[{name: {argument: value}}]`, values as source text for Java/JavaScript."""
    if item.language == "python":
        return [{c.name: dict(c.arguments)} for c in calls]
    declared = {f["name"]: f["parameters"].get("properties", {}) for f in item.checked}
    return [{c.name: {k: _literal(v, declared.get(c.name, {}).get(k, {}), item.language) for k, v in c.arguments.items()}}
            for c in calls]  # fmt: skip


# ---------------------------------------------------------------- scoring


@dataclass
class Score:
    valid: bool
    error_type: str  # "" when valid
    error: str = ""


def score(item: BfclItem, calls: list[Call] | None, parse_error: str | None = None) -> Score:
    """BFCL's verdict on the Solver's decoded calls (`None` when the answer did not parse).

    Irrelevance: correct when there is no call (an empty list or no parsable call list), as in BFCL.
    AST categories: BFCL's `ast_checker`; an answer that did not parse fails as `decoder_failed`, and an
    exception inside the checker fails as `checker_exception` with its message.
    """
    if item.category == "irrelevance":
        return Score(True, "") if not calls else Score(False, "irrelevance:called_a_tool", f"{len(calls)} call(s)")
    if calls is None:
        return Score(False, "ast_decoder:decoder_failed", parse_error or "no parsable tool calls")
    Language, ast_checker, _, _ = _bfcl()
    try:
        result = ast_checker(item.checked, to_bfcl_calls(calls, item), item.answer, Language(item.language),
                             item.category, MODEL_NAME)  # fmt: skip
    except Exception as e:  # the checker's own failure on odd output is a failed item, not a crashed run
        return Score(False, "checker_exception", f"{type(e).__name__}: {e}")
    return Score(bool(result["valid"]), "" if result["valid"] else result.get("error_type", "unknown"),
                 "; ".join(map(str, result.get("error", []))))  # fmt: skip


def aggregate(accuracy: dict[str, float]) -> dict[str, float]:
    """The leaderboard's non-live aggregates from per-category accuracy (only over the categories present)."""
    out = {}
    simple = [accuracy[c] for c in ("simple_python", "simple_java", "simple_javascript") if c in accuracy]
    if simple:
        out["non_live_simple"] = sum(simple) / len(simple)
    overall = [v for v in (out.get("non_live_simple"), *(accuracy.get(c) for c in ("multiple", "parallel", "parallel_multiple")))
               if v is not None]  # fmt: skip
    if overall:
        out["non_live_overall"] = sum(overall) / len(overall)
    if "irrelevance" in accuracy:
        out["irrelevance"] = accuracy["irrelevance"]
    return out

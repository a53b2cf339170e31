"""BFCL (Berkeley Function Calling Leaderboard), its single-turn categories, read and checked by its own package.

The questions, the ground truth, the prompt of its "prompting" mode, the answer decoder and the AST checker all
come from the `bfcl-eval` wheel, so our scores follow the leaderboard's rules rather than a re-implementation.
Two ways to ask a model (`PROMPTS`):

- `kit`: a BFCL item becomes a Solver task (its functions are the tool menu), answered in the kit's own format;
  the decoded calls `[{"name", "arguments"}]` become BFCL's `[{name: {argument: value}}]`. For Java and
  JavaScript BFCL expects every value as source text ("50L", "true", 'new ArrayList<>(Arrays.asList("a"))'),
  so non-string JSON values are written in that language. This measures what training changed.
- `bfcl`: exactly as the leaderboard asks a model without native function calling: its system prompt and
  function docs (`system_prompt_pre_processing_chat_model`), its decoder (`default_decode_ast_prompting`).
  This is the number to set beside published ones.

Relevance categories follow BFCL: irrelevance and live_irrelevance are correct without a call, live_relevance
with at least one. Nothing here runs a model: loading, prompting and scoring are plain functions, tested with
BFCL's ground truth.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import random
import sys
import types
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolr0_lite.parsing import to_tool
from toolr0_lite.records import Call, Task

BFCL_INSTALL = ('pip install "toolr0-lite[eval]" && pip install --no-deps bfcl-eval==2026.3.23  '
                '(from a clone: pip install -e ".[eval]" && pip install --no-deps bfcl-eval==2026.3.23)')  # fmt: skip
AST_CATEGORIES = ("simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple")
NON_LIVE = (*AST_CATEGORIES, "irrelevance")
LIVE_AST = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
LIVE = (*LIVE_AST, "live_irrelevance", "live_relevance")
CATEGORIES = (*NON_LIVE, *LIVE)
GROUPS = {"non_live": NON_LIVE, "live": LIVE, "all": CATEGORIES}  # names the command line accepts for several
NO_CALL = ("irrelevance", "live_irrelevance")  # correct when the answer holds no call
ANY_CALL = ("live_relevance",)  # correct when the answer holds at least one call
PROMPTS = ("kit", "bfcl")
NOT_RUN = ("multi_turn", "web_search", "memory", "format_sensitivity")  # leaderboard parts this kit does not run
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
    messages: list[dict] = field(default_factory=list)  # the question's turn as BFCL gives it (system, user, …)

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


def expand_categories(names: list[str]) -> list[str]:
    """Category names as given on the command line ('all', 'live', 'non_live' stand for several), in order.

    >>> expand_categories(["live", "irrelevance"])[-2:]
    ['live_relevance', 'irrelevance']
    """
    return list(dict.fromkeys(c for name in names for c in GROUPS.get(name, (name,))))


def load_items(categories: tuple[str, ...] | list[str] = NON_LIVE, limit: int | None = None, seed: int = 0) -> list[BfclItem]:
    """BFCL items of `categories`; with `limit`, a seeded subset of about `limit` items spread evenly over them."""
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown BFCL categories {unknown}; choose from {', '.join(CATEGORIES)}")
    _, _, load_dataset_entry, load_ground_truth_entry = _bfcl()
    items = []
    for k, category in enumerate(categories):
        shown = load_dataset_entry(category, include_language_specific_hint=True)
        plain = {e["id"]: e["function"] for e in load_dataset_entry(category, include_language_specific_hint=False)}
        relevance = category in NO_CALL + ANY_CALL  # no ground-truth calls to load
        answers = {} if relevance else {e["id"]: e["ground_truth"] for e in load_ground_truth_entry(category)}
        if limit is not None:
            share = limit // len(categories) + (k < limit % len(categories))
            shown = random.Random(f"{seed}-{category}").sample(shown, min(share, len(shown)))
        for entry in shown:
            turn = entry["question"][0]  # these categories are single-turn
            items.append(BfclItem(entry["id"], category, question_text(turn), entry["function"], plain[entry["id"]],
                                  answers.get(entry["id"]), turn))  # fmt: skip
    return items


def question_text(turn: list[dict]) -> str:
    """A BFCL turn as the request of a Solver task: the user's words; a system message first; a turn with
    earlier replies as the kit's conversation transcript.

    >>> question_text([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yes?"},
    ...                {"role": "user", "content": "Weather?"}])
    '# Conversation\\nUser: Hi\\nAgent: Yes?\\nUser: Weather?'
    """
    system = [m["content"] for m in turn if m["role"] == "system"]
    talk = [m for m in turn if m["role"] != "system"]
    if len(talk) > 1:
        lines = [f"{'User' if m['role'] == 'user' else 'Agent'}: {m['content']}" for m in talk]
        body = "# Conversation\n" + "\n".join(lines)
    else:
        body = "\n".join(m["content"] for m in talk)
    return "\n\n".join(system + [body])


def bfcl_messages(item: BfclItem) -> list[dict]:
    """The leaderboard's prompt for a model without native function calling: its system prompt with the function
    docs (in the format of the item's id), then the item's own messages."""
    from bfcl_eval.model_handler.utils import system_prompt_pre_processing_chat_model

    _bfcl()
    return system_prompt_pre_processing_chat_model(copy.deepcopy(item.messages), item.functions, item.id)


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
    """BFCL's verdict on the Solver's decoded calls in the kit's format (`None` when the answer did not parse).

    Relevance categories: see `relevance`. AST categories: BFCL's `ast_checker`; an answer that did not parse
    fails as `decoder_failed`, and an exception inside the checker fails as `checker_exception` with its message.
    """
    if item.category in NO_CALL + ANY_CALL:
        return relevance(item, len(calls or []))
    if calls is None:
        return Score(False, "ast_decoder:decoder_failed", parse_error or "no parsable tool calls")
    return _check(item, to_bfcl_calls(calls, item))


def score_text(item: BfclItem, text: str) -> tuple[Score, list[dict] | None]:
    """BFCL's verdict on a raw answer in its own prompting format, decoded by its own decoder, as the
    leaderboard scores a model without native function calling; also returns the decoded calls (None: failed)."""
    from bfcl_eval.constants.enums import ReturnFormat
    from bfcl_eval.model_handler.utils import default_decode_ast_prompting
    from bfcl_eval.utils import is_empty_output, is_function_calling_format_output

    _bfcl()
    language = ReturnFormat.PYTHON if item.category in NO_CALL + ANY_CALL else ReturnFormat(item.language)
    try:
        decoded = default_decode_ast_prompting(text, language)
    except Exception as e:  # what the leaderboard counts as a failed decode (prose, broken syntax, …)
        if item.category in NO_CALL + ANY_CALL:
            return relevance(item, 0), None
        return Score(False, "ast_decoder:decoder_failed", f"{type(e).__name__}: {e}"), None
    if item.category in NO_CALL + ANY_CALL:
        return relevance(item, 0 if is_empty_output(decoded) else len(decoded)), decoded
    if not is_function_calling_format_output(decoded):
        return Score(False, "ast_decoder:decoder_wrong_output_format", str(decoded)[:500]), None
    return _check(item, decoded), decoded


def relevance(item: BfclItem, calls: int) -> Score:
    """irrelevance and live_irrelevance: correct with no call; live_relevance: correct with at least one."""
    if item.category in NO_CALL:
        return Score(True, "") if not calls else Score(False, "irrelevance_error:decoder_success", f"{calls} call(s)")
    return Score(True, "") if calls else Score(False, "relevance_error:decoder_failed", "no call")


def _check(item: BfclItem, calls: list[dict]) -> Score:
    Language, ast_checker, _, _ = _bfcl()
    try:
        result = ast_checker(item.checked, calls, item.answer, Language(item.language), item.category, MODEL_NAME)
    except Exception as e:  # the checker's own failure on odd output is a failed item, not a crashed run
        return Score(False, "checker_exception", f"{type(e).__name__}: {e}")
    return Score(bool(result["valid"]), "" if result["valid"] else result.get("error_type", "unknown"),
                 "; ".join(map(str, result.get("error", []))))  # fmt: skip


def aggregate(categories: dict[str, dict]) -> dict[str, float]:
    """The leaderboard's aggregates from per-category results `{category: {"accuracy", "n"}}`, computed as
    bfcl-eval's `generate_leaderboard_csv` does, over the categories that were run: non-live simple and overall
    are unweighted means, live overall is weighted by item count, irrelevance is the unweighted mean of its two
    categories; `overall` takes the parts present with the leaderboard's equal weights (10 / 10 / 10). The
    leaderboard's multi-turn, web-search, memory and format-sensitivity parts (`NOT_RUN`) are never in it.

    >>> aggregate({"simple_python": {"accuracy": 0.5, "n": 4}, "irrelevance": {"accuracy": 1.0, "n": 2}})
    {'non_live_simple': 0.5, 'non_live_overall': 0.5, 'irrelevance': 1.0, 'overall': 0.75}
    """
    accuracy = {c: v["accuracy"] for c, v in categories.items()}
    out = {}
    simple = [accuracy[c] for c in ("simple_python", "simple_java", "simple_javascript") if c in accuracy]
    if simple:
        out["non_live_simple"] = sum(simple) / len(simple)
    overall = [v for v in (out.get("non_live_simple"), *(accuracy.get(c) for c in ("multiple", "parallel", "parallel_multiple")))
               if v is not None]  # fmt: skip
    if overall:
        out["non_live_overall"] = sum(overall) / len(overall)
    live = [categories[c] for c in LIVE_AST if c in categories]
    if live:
        out["live_overall"] = sum(v["accuracy"] * v["n"] for v in live) / sum(v["n"] for v in live)
    irrelevance = [accuracy[c] for c in NO_CALL if c in accuracy]
    if irrelevance:
        out["irrelevance"] = sum(irrelevance) / len(irrelevance)
    if "live_relevance" in accuracy:
        out["relevance"] = accuracy["live_relevance"]
    parts = [out[k] for k in ("non_live_overall", "live_overall", "irrelevance") if k in out]
    if parts:
        out["overall"] = sum(parts) / len(parts)
    return out

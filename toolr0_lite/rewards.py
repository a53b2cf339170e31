"""Every reward of the method as a small pure function, then combined in one place per role.

Generator (docs/METHOD.md §3):  r_G = g · (r_fmt + r_valid + r_curr),  r_curr = 0.5·r_diff + 0.5·r_sem
Solver    (docs/METHOD.md §4):  r_S = r_fmt + r_acc

Two defects of the released code are fixed here: r_valid checks *all* gold calls, and reads `required`
wherever the tool schema put it (see `parsing.to_tool`). Beyond the paper, no-call tasks (empty gold
list) are handled: the Solver earns full marks only for an empty answer.
At the bottom, TRL-style callables `f(completions, **columns) -> list[float]` wrap the Solver terms.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from toolr0_lite.config import ConfigError, setting
from toolr0_lite.parsing import GeneratorOutput, SolverOutput, parse_solver_output, to_calls
from toolr0_lite.prompts import is_prompt_echo
from toolr0_lite.records import Call, Tool

# ---------------------------------------------------------------- Generator: gate, format, validity


def question_gate(question: str | None) -> float:
    """g: 0 when the question did not parse, is under 8 characters, or echoes the prompt; else 1."""
    if question is None or len(question.strip()) < 8 or is_prompt_echo(question):
        return 0.0
    return 1.0


def generator_format_reward(out: GeneratorOutput) -> float:
    """r_fmt = 1/3·[four tags present, non-empty] + 1/3·[tools: non-empty list of named objects] + 1/3·[gold calls parse]."""
    return (float(not out.missing_tags) + float(out.tools is not None) + float(out.gold_calls is not None)) / 3


_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy", 80: "eighty", 90: "ninety"}
_WORD_OF = {**dict(enumerate(_NUMBER_WORDS)), **_TENS}
_NUMBER_OF = {word: n for n, word in _WORD_OF.items()}


def normalize(text: str) -> str:
    """NFKC, casefold, non-alphanumerics to one space: the form in which grounding compares text.

    >>> normalize("  Café-au-LAIT, 1,000!")
    'café au lait 1 000'
    """
    return " ".join(re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).casefold()).split())


def _as_number(value: Any) -> float | None:
    """A number or numeric string as a float; None for anything else, and for integers too large for a float."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value.strip().replace(",", "")) if value.strip() else None
    except (ValueError, OverflowError):
        return None
    return None


def value_variants(value: Any) -> list[str] | None:
    """The spellings under which an argument value may appear in the question; None means "skip".

    >>> value_variants(1500), value_variants("five"), value_variants(True)
    (['1500', '1,500'], ['five', '5'], None)
    """
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, (str, int, float)):
        return []  # nested values cannot be grounded
    variants = [value] if isinstance(value, str) else []
    number = _as_number(value)
    if isinstance(value, str) and normalize(value) in _NUMBER_OF:
        number = float(_NUMBER_OF[normalize(value)])
    if number is not None and math.isfinite(number):
        if number.is_integer():
            n = int(number)
            variants += [str(n), f"{n:,}"] + ([_WORD_OF[n]] if n in _WORD_OF else [])
        else:
            variants.append(repr(number))
    return list(dict.fromkeys(variants))


def is_grounded(value: Any, question: str) -> bool:
    """True when some spelling of `value` occurs in `question` as whole words (booleans/None: always)."""
    variants = value_variants(value)
    if variants is None:
        return True
    haystack = f" {normalize(question)} "
    return any(f" {v} " in haystack for v in map(normalize, variants) if v)


def ungrounded_values(question: str, calls: list[Call]) -> list[str]:
    """The calls' argument values that `question` never names, as "tool.argument = value" ([] when all are)."""
    return [f"{c.name}.{key} = {value!r}" for c in calls for key, value in c.arguments.items()
            if not is_grounded(value, question)]  # fmt: skip


def validity_reward(question: str, tools: list[Tool], gold_calls: list[Call], expect_no_call: bool | None = None) -> float:
    """r_valid = 0.4·[all gold calls name a menu tool] + 0.4·[all have their required arguments] + 0.2·[all values grounded].

    An empty gold list (a no-call task) is valid. `expect_no_call`, when given, must agree with the gold
    list: a Generator that writes [] where calls were asked (or the reverse) gets 0, so the no-call share
    cannot be used to dodge the work.
    """
    if expect_no_call is not None and expect_no_call != (not gold_calls):
        return 0.0
    menu = {t.name: t for t in tools}
    names_known = all(c.name in menu for c in gold_calls)
    required_given = all(r in c.arguments for c in gold_calls if c.name in menu for r in menu[c.name].required)
    grounded = not ungrounded_values(question, gold_calls)
    return 0.4 * names_known + 0.4 * required_given + 0.2 * grounded


# ---------------------------------------------------------------- Generator: curriculum (frontier + judge)


def frontier_reward(
    p_hat: float, band: tuple[float, float] = (0.25, 0.75), sigma: float = 0.12, falloff: bool = True
) -> float:
    """r_diff: 1 when the frozen Solver's success rate p̂ is in the band, Gaussian falloff outside, 0 at p̂ = 0.

    With K = 8 answers, p̂ = 0, 1/8, …, 8/8 give 0, 0.581, 1, 1, 1, 1, 1, 0.581, 0.114.
    `falloff=False` is the paper's "no Gaussian falloff" ablation: 1 inside the band, 0 outside.

    >>> round(frontier_reward(1 / 8), 3), frontier_reward(0.5), round(frontier_reward(1.0), 3)
    (0.581, 1.0, 0.114)
    """
    low, high = band
    if p_hat <= 0.0:  # never solved (p̂ < 1/K): no signal the Solver can learn from
        return 0.0
    if low <= p_hat <= high:
        return 1.0
    if not falloff:
        return 0.0
    edge = low if p_hat < low else high
    return math.exp(-((p_hat - edge) ** 2) / (2 * sigma**2))


def semantic_reward(judge_score: int) -> float:
    """r_sem = (score − 1) / 4 for the judge's 1-5 rating."""
    return (min(max(judge_score, 1), 5) - 1) / 4


def _trigrams(text: str) -> set[str]:
    text = normalize(text)
    return {text[i : i + 3] for i in range(max(1, len(text) - 2))}


def repetition_penalties(questions: list[str], weight: float = 0.2, max_distance: float = 0.3) -> list[float]:
    """−weight · (cluster size / batch size) for questions with a near-duplicate in the batch, else 0.

    Questions join one cluster when their character-3-gram Jaccard distance is under `max_distance`.
    (Defined but unused in the released code; here a switch in `GeneratorRewardConfig`.)

    >>> repetition_penalties(["Book a flight to Rome", "Book a flight to Rome!", "Weather in Oslo?"])
    [-0.13333333333333333, -0.13333333333333333, 0.0]
    """
    grams = [_trigrams(q) for q in questions]
    parent = list(range(len(questions)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(grams)):
        for j in range(i + 1, len(grams)):
            union = len(grams[i] | grams[j])
            if union and 1 - len(grams[i] & grams[j]) / union < max_distance:
                parent[root(i)] = root(j)
    roots = [root(i) for i in range(len(questions))]
    sizes = {r: roots.count(r) for r in set(roots)}
    return [-weight * (sizes[r] / len(questions)) if sizes[r] > 1 else 0.0 for r in roots]


# ---------------------------------------------------------------- Generator: the combination


@dataclass
class GeneratorRewardConfig:
    """Knobs of r_G; the defaults are the paper's. Ablations set `difficulty_weight=0` or `falloff=False`."""

    band: tuple[float, float] = setting((0.25, 0.75), "success rates p̂ counted as the frontier (r_diff = 1)")
    sigma: float = setting(0.12, "width of the Gaussian falloff outside the band")
    falloff: bool = setting(True, "false: r_diff is 1 inside the band and 0 outside (an ablation)")
    difficulty_weight: float = setting(0.5, "r_curr = difficulty_weight·r_diff + semantic_weight·r_sem (0: ablation)")
    semantic_weight: float = setting(0.5, "weight of the judge's r_sem in r_curr")
    repetition_penalty: float = setting(0.0, "batch repetition penalty weight; 0 = off (released code: 0.2)")

    def __post_init__(self) -> None:
        low, high = self.band
        if not 0.0 <= low <= high <= 1.0:
            raise ConfigError(f"rewards.band: {self.band} is not a range in [0, 1]; use e.g. [0.25, 0.75]")
        if self.sigma <= 0:
            raise ConfigError(f"rewards.sigma: {self.sigma} must be > 0; the paper uses 0.12")
        for name in ("difficulty_weight", "semantic_weight", "repetition_penalty"):
            if getattr(self, name) < 0:
                raise ConfigError(f"rewards.{name}: must be >= 0 (0 turns the term off)")


@dataclass
class GeneratorScore:
    """r_G term by term, so each can be logged and inspected."""

    gate: float
    format: float
    validity: float
    difficulty: float
    semantic: float
    curriculum: float
    repetition: float = 0.0

    @property
    def total(self) -> float:
        return self.gate * (self.format + self.validity + self.curriculum) + self.repetition


def score_generator_output(
    out: GeneratorOutput,
    expect_no_call: bool | None,
    p_hat: float | None,
    judge_score: int | None,
    config: GeneratorRewardConfig,
) -> GeneratorScore:
    """r_G for one parsed completion. `p_hat` and `judge_score` come from the frozen Solver (None: not probed)."""
    validity = 0.0
    if out.question is not None and out.tools is not None and out.gold_calls is not None:
        validity = validity_reward(out.question, out.tools, out.gold_calls, expect_no_call)
    difficulty = frontier_reward(p_hat, config.band, config.sigma, config.falloff) if p_hat is not None else 0.0
    semantic = semantic_reward(judge_score) if judge_score is not None else 0.0
    return GeneratorScore(
        gate=question_gate(out.question),
        format=generator_format_reward(out),
        validity=validity,
        difficulty=difficulty,
        semantic=semantic,
        curriculum=config.difficulty_weight * difficulty + config.semantic_weight * semantic,
    )


# ---------------------------------------------------------------- Solver: matching calls


def values_match(a: Any, b: Any) -> bool:
    """Equal; or numerically equal ("5" vs 5, floats within 1e-9); or equal strings up to whitespace (case kept).

    >>> values_match("5", 5), values_match("New  York", "New York"), values_match("paris", "Paris")
    (True, True, False)
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if a == b:
        return True
    x, y = _as_number(a), _as_number(b)
    if x is not None and y is not None and abs(x - y) <= 1e-9:
        return True
    return isinstance(a, str) and isinstance(b, str) and a.split() == b.split()


def call_score(pred: Call, gold: Call) -> float:
    """s = 0.2·[same name] + 0.3·F1(argument keys) + 0.5·(share of shared keys whose values match).

    >>> call_score(Call("f", {"a": 1, "b": "x"}), Call("f", {"a": "1", "c": 2}))
    0.85
    """
    p, g = set(pred.arguments), set(gold.arguments)
    shared = p & g
    if not p and not g:
        f1, value_share = 1.0, 1.0  # both take no arguments: nothing to disagree on
    elif not shared:
        f1, value_share = 0.0, 0.0
    else:
        precision, recall = len(shared) / len(p), len(shared) / len(g)
        f1 = 2 * precision * recall / (precision + recall)
        value_share = sum(values_match(pred.arguments[k], gold.arguments[k]) for k in shared) / len(shared)
    return 0.2 * (pred.name == gold.name) + 0.3 * f1 + 0.5 * value_share


def accuracy_reward(pred: list[Call], gold: list[Call]) -> float:
    """r_acc: greedy order-free matching of gold to predicted calls, with a penalty for extra calls.

    Each gold call takes the unused prediction with the highest s > 0; base = Σs / #gold, times
    1 / (1 + 0.25·#extra). An empty gold list scores 1 only for an empty prediction.

    >>> accuracy_reward([Call("f", {"a": 1})], [Call("f", {"a": 1})]), accuracy_reward([Call("f")], [])
    (1.0, 0.0)
    """
    if not gold:
        return float(not pred)
    unused = list(range(len(pred)))
    total = 0.0
    for g in gold:
        scored = [(call_score(pred[i], g), i) for i in unused]
        best = max(scored, key=lambda si: si[0], default=(0.0, None))
        if best[0] > 0:
            total += best[0]
            unused.remove(best[1])
    extra = max(0, len(pred) - len(gold))
    return min(max(total / len(gold) / (1 + 0.25 * extra), 0.0), 1.0)


def is_exact(accuracy: float) -> bool:
    """An accuracy score (r_acc) that counts as an exact solve: 1, up to float rounding."""
    return accuracy >= 1.0 - 1e-9


def exact_match(pred: list[Call] | None, gold: list[Call]) -> bool:
    """True when the predicted calls solve the task exactly (r_acc = 1): what p̂ and accuracy count."""
    return pred is not None and is_exact(accuracy_reward(pred, gold))


# ---------------------------------------------------------------- Solver: format, accuracy, total


def solver_format_reward(out: SolverOutput, gold_is_empty: bool = False) -> float:
    """r_fmt = 0 without an answer block, else 0.3 + 0.3·[parses] + 0.4·[≥1 call].

    For a no-call task the last 0.4 rewards the empty list instead, so no-call and call tasks share a scale.
    """
    if not out.answer:
        return 0.0
    parsed = out.calls is not None
    right_count = parsed and (len(out.calls) == 0 if gold_is_empty else len(out.calls) >= 1)
    return 0.3 + 0.3 * parsed + 0.4 * right_count


def solver_accuracy_reward(out: SolverOutput, gold: list[Call]) -> float:
    """r_acc, but 0 unless the completion thought first (non-empty `<think>`) and its answer parsed."""
    if not out.think or out.calls is None:
        return 0.0
    return accuracy_reward(out.calls, gold)


def _gold(gold_calls: Any) -> list[Call]:
    """Gold calls from a dataset column: a list of {"name", "arguments"} or its JSON text. Raises if malformed."""
    if isinstance(gold_calls, str):
        gold_calls = json.loads(gold_calls)
    calls = to_calls(gold_calls)
    if isinstance(calls, str):
        raise ValueError(f"gold_calls is not a list of {{'name', 'arguments'}} objects: {calls}")
    return calls


def solver_reward(completion: str, gold_calls: list[dict]) -> float:
    """r_S = r_fmt + r_acc for one Solver completion, in [0, 2].

    >>> solver_reward('<think>weather</think><tool_call_answer>[{"name": "w", "arguments": {"city": "Oslo"}}]'
    ...               '</tool_call_answer>', [{"name": "w", "arguments": {"city": "Oslo"}}])
    2.0
    """
    gold = _gold(gold_calls)
    out = parse_solver_output(completion)
    return solver_format_reward(out, not gold) + solver_accuracy_reward(out, gold)


def success_rate(completions: list[str], gold: list[Call]) -> float:
    """p̂: the share of the frozen Solver's K answers whose calls match the gold calls exactly."""
    if not completions:
        return 0.0
    return sum(exact_match(parse_solver_output(c).calls, gold) for c in completions) / len(completions)


# ---------------------------------------------------------------- TRL reward functions (Solver)


def completion_text(completion: str | list[dict]) -> str:
    """TRL passes plain strings, or for chat datasets a list of messages: take the assistant's text."""
    return completion if isinstance(completion, str) else completion[-1]["content"]


def _answers(completions: list, answer_prefix: list[str] | None) -> list[SolverOutput]:
    """Each completion parsed as a whole answer: the text begun for the model (`answer_prefix`), then its own."""
    prefixes = answer_prefix or [""] * len(completions)
    return [parse_solver_output(p + completion_text(c)) for p, c in zip(prefixes, completions)]


def solver_format_reward_func(completions: list, gold_calls: list, answer_prefix: list[str] | None = None,
                              **_: Any) -> list[float]:  # fmt: skip
    """TRL reward function: Solver r_fmt per completion (needs a `gold_calls` dataset column; an `answer_prefix`
    column holds the text each answer was begun with, when it was)."""
    return [solver_format_reward(o, not _gold(g)) for o, g in zip(_answers(completions, answer_prefix), gold_calls)]


def solver_accuracy_reward_func(completions: list, gold_calls: list, answer_prefix: list[str] | None = None,
                                **_: Any) -> list[float]:  # fmt: skip
    """TRL reward function: Solver r_acc per completion (dataset columns as for r_fmt)."""
    return [solver_accuracy_reward(o, _gold(g)) for o, g in zip(_answers(completions, answer_prefix), gold_calls)]

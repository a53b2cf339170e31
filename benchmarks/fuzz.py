"""Model output is untrusted data: 100,000 mutated completions through parsing, both rewards and the pipeline.

Starting from real completions (the kit's exemplar tasks written as the Generator and as the Solver would
write them), each case applies one to three random mutations: a cut, duplicated or mis-nested tags, broken
JSON, huge numbers, odd Unicode (zero-width, right-to-left, lone surrogates, NUL), deep nesting, empty or
whitespace-only text. Every case goes through `parse_generator_output` and `score_generator_output`,
`parse_solver_output` and `solver_reward`, `success_rate`; every 1,000 cases go through the pipeline's
`verify_and_deduplicate` and `agreement_filter`. It prints the count, the exceptions (must be 0), the warnings
that reached Python's warning system (must be 0) and cases per second.

    python benchmarks/fuzz.py [--cases 100000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
import traceback
import warnings
from collections import Counter
from dataclasses import asdict

from toolr0_lite.config import run_entry_point
from toolr0_lite.parsing import parse_generator_output
from toolr0_lite.pipeline import agreement_filter, verify_and_deduplicate
from toolr0_lite.prompts import EXEMPLARS, generator_completion, solver_completion
from toolr0_lite.rewards import GeneratorRewardConfig, score_generator_output, solver_reward, success_rate

TAGS = ("think", "question", "available_tools", "tool_call_answer")
ODD = ["\u200b", "\u202e", "\ud800", "\x00", "\ufeff", "é", "𝔘", "\u0301", "\n" * 50, "\t", "\\u0000", "\\"]


def mutate(text: str, rng: random.Random) -> str:
    """One random damage of the kinds a model (or an attacker) produces."""
    kind = rng.randrange(10)
    at = rng.randrange(len(text) + 1)
    tag = rng.choice(TAGS)
    if kind == 0:
        return text[:at]  # cut off, as at a token limit
    if kind == 1:
        block = f"<{tag}>{text[at:at + 40]}</{tag}>"
        return text[:at] + block * rng.randint(2, 5) + text[at:]  # duplicated tags
    if kind == 2:
        return text.replace(f"</{tag}>", "").replace(f"<{rng.choice(TAGS)}>", f"<{tag}><{tag}>", 1)  # mis-nested
    if kind == 3:
        return text[:at] + rng.choice(['"', "{", "}", "[", "]", ",", ":", "'", "None", "..."]) + text[at + 1:]  # broken JSON
    if kind == 4:
        huge = rng.choice(["9" * rng.randint(20, 5000), "1e999", "-1e-999", "NaN", "Infinity", "0x1F", "1_000", "07"])
        return re.sub(r"\d+", huge, text, count=rng.randint(1, 3))  # huge numbers
    if kind == 5:
        return text[:at] + "".join(rng.choices(ODD, k=rng.randint(1, 8))) + text[at:]  # odd Unicode
    if kind == 6:
        depth = rng.randint(50, 20000)
        return text[:at] + "[" * depth + "1" + "]" * rng.choice([depth, 0, depth // 2]) + text[at:]  # deep nesting
    if kind == 7:
        return rng.choice(["", " ", "\n", "<think></think>", "<tool_call_answer></tool_call_answer>", "<", "</"])
    if kind == 8:
        return text[at:] + text[:at]  # rotated: blocks out of order
    return text.replace("arguments", rng.choice(["args", "parameters", "arguments\": {\"x\": {\"y\": [1, {}]}}, \"a"]))


def cases(n: int, seed: int):
    """`n` (text, spec, gold calls) triples: a mutated Generator or Solver completion of an exemplar."""
    rng = random.Random(seed)
    real = [(write(task, think), task) for task, think in EXEMPLARS for write in (generator_completion, solver_completion)]
    for _ in range(n):
        text, task = rng.choice(real)
        for _ in range(rng.randint(1, 3)):
            text = mutate(text, rng)
        yield text, task.spec, task.gold_calls


def pipeline(texts: list[str], specs: list) -> None:
    """Verify and dedup the batch, then the agreement check with the mutated texts as the Solver's answers."""
    tasks, _ = verify_and_deduplicate(texts, specs)
    agreement_filter(tasks, [texts[i : i + 2] for i in range(len(tasks))], 1)


def run(n: int, seed: int) -> tuple[int, Counter, list[str], int, float]:
    """Send `n` cases through everything; returns the count, exceptions by stage, a few examples, the warnings
    and the seconds spent in the kit's functions."""
    errors: Counter = Counter()
    examples: list[str] = []
    config = GeneratorRewardConfig()
    rng = random.Random(seed + 1)
    batch: list[tuple] = []

    spent = [0.0]  # seconds inside the kit's functions (making the cases is not counted)

    def guard(name: str, fn, *args) -> None:
        start = time.perf_counter()
        try:
            fn(*args)
        except Exception:  # the point of this benchmark: count every exception, whatever it is
            errors[name] += 1
            if len(examples) < 5:
                examples.append(f"{name}: {traceback.format_exc(limit=3)}")
        spent[0] += time.perf_counter() - start

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for count, (text, spec, gold) in enumerate(cases(n, seed), start=1):
            gold_dicts = [asdict(c) for c in gold]
            guard("generator", lambda: score_generator_output(parse_generator_output(text), spec.no_call,
                                                              rng.random(), rng.randint(1, 5), config))  # fmt: skip
            guard("solver", solver_reward, text, gold_dicts)
            guard("success_rate", success_rate, [text], gold)
            batch.append((text, spec, gold))
            if len(batch) == 1000 or count == n:
                texts, specs = [t for t, _, _ in batch], [s for _, s, _ in batch]
                guard("pipeline", pipeline, texts, specs)
                batch = []
    return n, errors, examples + [f"warning: {w.category.__name__}: {w.message}" for w in caught[:5]], len(caught), spent[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n, errors, examples, warned, seconds = run(args.cases, args.seed)
    print(f"cases: {n}")
    print(f"exceptions: {sum(errors.values())} {dict(errors)}")
    print(f"warnings: {warned}")
    print(f"cases_per_s: {n / seconds:.0f} ({seconds:.1f} s in the kit's parsing, rewards and pipeline)")
    for example in examples:
        print(example)


if __name__ == "__main__":
    sys.exit(run_entry_point("fuzz", main))

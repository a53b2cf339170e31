"""One prepared GPU check of the model layer: each backend on a Qwen2.5-1.5B-shaped model.

Random weights from Qwen2.5-1.5B-Instruct's configuration stand in where real weights cannot be
downloaded (the shapes, and so the memory and speed, are the real model's). For each backend
(PEFT bf16, PEFT + bitsandbytes 4-bit, Unsloth 4-bit), in a fresh process, it loads one base with the
two roles, runs one batched generation (16 prompts x K = 4 samples), evaluation-shaped generation (64 Solver
prompts with the rotating worked example, greedy) with the shared-prefix cache off and on, and one GRPO-sized
forward and backward pass on each role's LoRA weights (4 sequences of 1,024 tokens), and prints peak allocated GPU
memory and tokens/s. Then it runs one step of TRL's GRPOTrainer on the Solver through the role model.
Meant to finish in under 8 minutes on one GPU.

    python benchmarks/gpu_check.py --json gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

# before torch: Unsloth patches on import
from common import HAND_WRITTEN, child_main, prefix_cache_speed, run_arms, write_random_model

from toolr0_lite.config import run_entry_point

BACKENDS = {
    "peft-bf16": dict(backend="peft", load_in_4bit=False),
    "unsloth-4bit": dict(backend="unsloth", load_in_4bit=True),
    "peft-4bit": dict(backend="peft", load_in_4bit=True),
}


def check_backend(name: str, folder: str) -> dict:
    """Run in a fresh process: load, generate, backward on each role; returns the figures."""
    if BACKENDS[name]["backend"] == "unsloth":
        import unsloth  # noqa: F401  (before transformers and trl: it patches them)
    import torch

    from toolr0_lite.models import ModelConfig, RoleModel
    from toolr0_lite.prompts import solver_messages
    from toolr0_lite.records import Call, Task, Tool

    result: dict = {"backend": name, "gpu": torch.cuda.get_device_name()}
    start = time.perf_counter()
    roles = RoleModel.load(ModelConfig(source=folder, lora_r=16, lora_alpha=32, max_seq_length=2048, **BACKENDS[name]))
    torch.cuda.synchronize()
    result["load_s"] = round(time.perf_counter() - start, 1)
    result["after_load_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    result["lora_params_per_role"] = sum(p.numel() for p in roles._slot.values())

    task = Task("Weather in Oslo for the next 3 days, please.", [Tool("get_forecast", "Forecast for a city.",
                {"city": {"type": "string", "description": "city"}}, ["city"])], [Call("get_forecast", {"city": "Oslo"})])  # fmt: skip
    prompts = [solver_messages(task)] * 16
    roles.generate("solver", prompts[:2], n=2, max_new_tokens=8)  # warm-up
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    out = roles.generate("solver", prompts, n=4, temperature=0.7, max_new_tokens=128, seed=0)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens = sum(g.completion_tokens for r in out for g in r)
    result["generate"] = {"rows": 64, "new_tokens": tokens, "seconds": round(seconds, 2),
                          "tokens_per_s": round(tokens / seconds, 1),
                          "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}  # fmt: skip
    # The shared-prefix cache (PEFT backend; on Unsloth both arms take its own path): 4 × 16 hand-written tasks.
    result["prefix_cache"] = prefix_cache_speed(roles, [solver_messages(t, i) for i, t in enumerate(HAND_WRITTEN * 4)])

    vocab = len(roles.tokenizer)
    for role in ("generator", "solver"):
        other = "solver" if role == "generator" else "generator"
        other_before = roles.lora_weights(other)
        model = roles.for_training(role)
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        ids = torch.randint(0, vocab, (4, 1024), device=model.device)
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        logits = model(input_ids=ids).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        (-logp.mean()).backward()  # the shape of a GRPO loss: log-probs of the sampled tokens
        optimizer.step()
        optimizer.zero_grad()
        torch.cuda.synchronize()
        frozen_ok = all(p.grad is None for n, p in model.named_parameters() if "lora_" not in n)
        after = roles.lora_weights(other)
        result[f"backward_{role}"] = {
            "tokens": 4 * 1024, "seconds": round(time.perf_counter() - start, 2),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "base_has_no_grads": frozen_ok,
            "other_role_unchanged": all(torch.equal(other_before[k], after[k]) for k in after),
        }  # fmt: skip
        del logits, logp
    try:
        result["trl_grpo_step"] = grpo_step(roles, task)
    except Exception:  # keep the figures above even when the TRL step fails
        result["trl_grpo_step"] = {"error": traceback.format_exc()[-3000:]}
    return result


def grpo_step(roles, task) -> dict:
    """One TRL GRPOTrainer step on the Solver through the role model (with Unsloth, its patched trainer)."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from toolr0_lite.prompts import solver_messages
    from toolr0_lite.rewards import solver_accuracy_reward_func, solver_format_reward_func

    def token_reward(completion_ids, **_):
        # Random weights sample ids beyond the small tokenizer, which decode to "": score the ids themselves,
        # so rewards vary within a group and the update is not zero.
        return [sum(ids) % 97 / 97 for ids in completion_ids]

    gold = json.dumps([{"name": c.name, "arguments": c.arguments} for c in task.gold_calls])
    data = Dataset.from_list([{"prompt": solver_messages(task), "gold_calls": gold}] * 8)
    before = roles.lora_weights("solver")
    generator_before = roles.lora_weights("generator")
    args = GRPOConfig(output_dir="/tmp/grpo", per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=32, max_steps=1, learning_rate=1e-3, beta=0.0, report_to="none",
                      save_strategy="no", bf16=True, logging_steps=1,
                      lr_scheduler_type="constant", warmup_steps=0)  # one step: no warm-up that would make lr 0
    # fmt: skip
    start = time.perf_counter()
    trainer = GRPOTrainer(model=roles.for_training("solver"), args=args, train_dataset=data,
                          processing_class=roles.tokenizer,
                          reward_funcs=[solver_format_reward_func, solver_accuracy_reward_func, token_reward])  # fmt: skip
    trainer.train()
    after = roles.lora_weights("solver")
    generator_after = roles.lora_weights("generator")
    logged = trainer.state.log_history[0] if trainer.state.log_history else {}
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "logged": {k: v for k, v in logged.items() if k in ("loss", "grad_norm", "reward", "reward_std", "learning_rate")},
        "solver_moved": any(not torch.equal(before[k], after[k]) for k in after),
        "generator_unchanged": all(torch.equal(generator_before[k], generator_after[k]) for k in generator_after),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="gpu_check.json", help="where to write the figures")
    parser.add_argument("--folder", default="/tmp/qwen2.5-1.5b-random", help="where to write the random model")
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--timeout", type=int, default=200, help="seconds allowed per backend")
    args = parser.parse_args()
    folder = Path(args.folder)
    if not (folder / "config.json").exists():
        start = time.perf_counter()
        write_random_model(folder)
        print(f"wrote a random Qwen2.5-1.5B-shaped model to {folder} in {time.perf_counter() - start:.0f} s", flush=True)
    run_arms(__file__, args.backends, folder, args.timeout, "backend", Path(args.json))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_main(check_backend, "backend")
    else:
        sys.exit(run_entry_point("gpu_check", main))

"""How far does one Solver GRPO step move the model, and which way? One step of a run's Solver phase, replayed.

GRPO gives every token of a completion its group's advantage, A = (r − mean r) / std r. A sound step raises
the log-probability of the completions above their group's mean and lowers those below; its size says whether
the learning rate suits the model: LoRA with Adam moves every weight by about the learning rate in its first
step, whatever the gradient, so a small model can jump further than one step of evidence warrants. This
replays the first step of iteration I's Solver phase (the run's tasks and config, the Solver as iteration I
started it, the same seed, so the same completions), then reads each completion's log-probability before and
after the step. It prints, per completion: reward, advantage, Δ log p summed over its tokens and per token,
and the share of its tokens whose probability ratio left GRPO's clip range [1 − ε, 1 + ε]; and the
correlation of A with Δ log p (positive: the step went the way its rewards asked). With one update per
rollout batch the clip never binds inside the step (the ratio is 1 when the loss is taken), so only the
learning rate keeps a step inside the region the clipped objective is meant to hold it to.

RESULTS.md has what it measured on the 0.5B think arm, whose Solver lost its answer format in one iteration.

    python benchmarks/step_size.py RUN_DIR --iteration 0 [--set solver.learning_rate=2e-5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from toolr0_lite.config import ConfigError, parse_sets, run_entry_point
from toolr0_lite.models import RoleModel, begun
from toolr0_lite.records import Task
from toolr0_lite.rundir import RunDir, iteration_name, read_jsonl
from toolr0_lite.selfplay import solver_phase, solver_prompt
from toolr0_lite.selfplay_config import load_config


@torch.no_grad()
def token_log_probs(roles: RoleModel, prompts: list[str], completions: list[str]) -> list[torch.Tensor]:
    """Each completion's per-token log-probabilities after its prompt, under the Solver's weights as they are now
    (the completion's text tokenized again; its end-of-turn token is not counted)."""
    model = roles.for_training("solver")
    model.eval()
    out = []
    for prompt, completion in zip(prompts, completions):
        p_ids = roles.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c_ids = roles.tokenizer(completion, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p_ids + c_ids], device=model.device)
        logits = model(input_ids=ids).logits[0, len(p_ids) - 1 : -1].float()
        out.append(torch.log_softmax(logits, -1).gather(1, ids[0, len(p_ids) :, None])[:, 0].cpu())
    return out


def advantages(rewards: list[float], group_size: int) -> list[float]:
    """GRPO's group-normalised advantages as TRL computes them: (r − group mean) / (group std (n − 1) + 1e-4)."""
    out = []
    for start in range(0, len(rewards), group_size):
        group = rewards[start : start + group_size]
        mean, std = statistics.fmean(group), statistics.stdev(group) if len(group) > 1 else 0.0
        out += [(r - mean) / (std + 1e-4) for r in group]
    return out


def step_effect(run_dir: Path, iteration: int, sets: list[str]) -> dict:
    """Replay the first Solver step of `iteration` in `run_dir`; each completion's reward, advantage and Δ log p."""
    run_dir = Path(run_dir)
    previous = run_dir / iteration_name(iteration - 1) / "solver"
    tasks_file = run_dir / iteration_name(iteration) / "tasks.jsonl"
    for needed in [run_dir / "config.yaml", tasks_file] + ([previous] if iteration > 0 else []):
        if not needed.exists():
            raise ConfigError(f"{needed} is missing: give a run directory whose iteration {iteration} has its tasks")
    with tempfile.TemporaryDirectory() as scratch:
        config = load_config(path=run_dir / "config.yaml", sets=["solver.steps=1", *sets], out=scratch)
        roles = RoleModel.load(config.model)
        if iteration > 0:
            roles.load_role("solver", previous)
        tasks = [Task.from_dict(d) for d in read_jsonl(tasks_file)]
        roles.save_role("solver", Path(scratch) / "before")
        solver_phase(roles, tasks, config, RunDir(Path(scratch) / "run"), iteration)
        rows = read_jsonl(Path(scratch) / "run" / iteration_name(iteration) / "solver_rollouts.jsonl")
        messages = [solver_prompt(config, tasks[r["task"]], r["task"]) for r in rows]
        prompts = [roles.chat_prompt(m) for m in messages]
        completions = [r["text"][len(begun(m)) :] for r, m in zip(rows, messages)]
        after = token_log_probs(roles, prompts, completions)
        roles.load_role("solver", Path(scratch) / "before")
        before = token_log_probs(roles, prompts, completions)
    adv = advantages([r["reward"] for r in rows], config.solver.group_size)
    eps = config.solver.epsilon
    answers = []
    for r, a, b, s in zip(rows, adv, before, after):
        ratio = (s - b).exp()  # what the next update's clipped objective would see, token by token
        answers.append({"task": r["task"], "reward": r["reward"], "advantage": round(a, 3), "tokens": len(b),
                        "logp_before": round(b.sum().item(), 2), "logp_change": round((s - b).sum().item(), 2),
                        "logp_change_per_token": round((s - b).mean().item(), 4) if len(b) else 0.0,
                        "outside_clip": round(((ratio < 1 - eps) | (ratio > 1 + eps)).float().mean().item(), 3) if len(b) else 0.0,
                        "text": r["text"]})  # fmt: skip
    moved = [a["logp_change"] for a in answers]
    agree = statistics.correlation(adv, moved) if len(set(adv)) > 1 and len(set(moved)) > 1 else None
    tokens = sum(a["tokens"] for a in answers)
    return {"run": str(run_dir), "iteration": iteration, "learning_rate": config.solver.learning_rate, "epsilon": eps,
            "answers": answers, "advantage_change_correlation": agree,
            "largest_change": max(moved, key=abs) if moved else 0.0,
            "outside_clip": sum(a["outside_clip"] * a["tokens"] for a in answers) / max(tokens, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run directory whose iteration I has its tasks.jsonl")
    parser.add_argument("--iteration", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a setting for the replay, e.g. solver.learning_rate=2e-5")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    parse_sets(args.set)  # a mistyped setting stops here, before any model loads
    result = step_effect(args.run, args.iteration, args.set)
    print(f"one Solver step of {args.run} iteration {args.iteration} at learning rate {result['learning_rate']:g}:")
    print(f"{'task':>4} {'reward':>7} {'advantage':>9} {'tokens':>6} {'Δ log p':>8} {'per token':>9} {'outside clip':>12}")
    for a in result["answers"]:
        print(f"{a['task']:>4} {a['reward']:7.3f} {a['advantage']:9.3f} {a['tokens']:6d} {a['logp_change']:8.2f} "
              f"{a['logp_change_per_token']:9.4f} {a['outside_clip']:12.1%}")  # fmt: skip
    corr = result["advantage_change_correlation"]
    print(f"correlation of advantage with Δ log p: {'n/a (no spread)' if corr is None else f'{corr:+.2f}'}; "
          f"largest |Δ log p| {abs(result['largest_change']):.2f} nats; tokens whose probability ratio left "
          f"[1 − ε, 1 + ε] (ε = {result['epsilon']:g}): {result['outside_clip']:.1%}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(run_entry_point("step_size", main))

"""The Tool-R0 loop (docs/METHOD.md §1): Generator GRPO → task synthesis and filtering → Solver GRPO, repeated.

    for each iteration:
        1. Generator phase: GRPO on the Generator's LoRA weights; each completion is scored by r_G, whose
           curriculum term asks the frozen Solver (K answers, one judge score) in batched generation.
        2. Synthesis: the frozen Generator writes candidates; verify → dedup → Solver agreement → curriculum.
        3. Solver phase: GRPO on the Solver's LoRA weights over the selected tasks, rewarded by r_S.

TRL's `GRPOTrainer` does every GRPO update; the roles meet it through `RoleModel.for_training(role)`, which
puts that role's LoRA weights in the one adapter slot and makes only them trainable. When r_G needs the
Solver, `RoleModel.generate("solver", ...)` swaps the Solver in under `inference_mode` and swaps back
before TRL computes a gradient. Every record goes to the run directory; a killed run resumes (rundir.py).
"""

from __future__ import annotations

import json
import random
import resource
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from toolr0_lite.config import ConfigError, to_dict
from toolr0_lite.distributed import (
    check_launch,
    gather,
    generate_shared,
    join_launch,
    open_run,
    owners,
    rank,
    world_size,
)
from toolr0_lite.models import RoleModel, begun, without_template_bos
from toolr0_lite.parsing import parse_generator_output
from toolr0_lite.pipeline import (
    agreement_filter,
    curriculum_select,
    example_places,
    grounding_filter,
    twin_steps,
    verify_and_deduplicate,
    with_no_call_twins,
)
from toolr0_lite.prompts import (
    EXEMPLARS,
    difficulty_judge_messages,
    generator_messages,
    parse_difficulty,
    parse_judge_score,
    semantic_judge_messages,
    solver_messages,
)
from toolr0_lite.records import Spec, Task
from toolr0_lite.rewards import (
    GeneratorScore,
    completion_text,
    generator_format_reward,
    question_gate,
    repetition_penalties,
    score_generator_output,
    solver_accuracy_reward_func,
    solver_format_reward_func,
    success_rate,
    validity_reward,
)
from toolr0_lite.rundir import (
    RunDir,
    RunDirError,
    adapter_units,
    atomic_write_text,
    iteration_index,
    iteration_name,
    read_jsonl,
)
from toolr0_lite.selfplay_config import PhaseConfig, SelfPlayConfig, changed_settings, check_processes
from toolr0_lite.spec import sample_specs

# ---------------------------------------------------------------- the frozen Solver as probe and judge


@dataclass
class Probe:
    """What the frozen Solver said about one task."""

    p_hat: float
    judge_score: int | None
    answers: list[str]


def probe_tasks(roles: RoleModel, tasks: list[Task], config: SelfPlayConfig, seed: int) -> list[Probe]:
    """K Solver answers and one judge score per task, each in one batched generate call for all tasks."""
    if not tasks:
        return []
    p = config.probe
    answers = roles.generate("solver", [solver_prompt(config, t, i) for i, t in enumerate(tasks)], n=p.samples,
                             temperature=p.temperature, max_new_tokens=p.max_new_tokens, seed=seed)  # fmt: skip
    scores: list[int | None] = [None] * len(tasks)
    if p.judge:
        verdicts = roles.generate("solver", [semantic_judge_messages(t) for t in tasks], n=1, temperature=0,
                                  max_new_tokens=p.judge_max_new_tokens, seed=seed)  # fmt: skip
        scores = [parse_judge_score(v[0].text) for v in verdicts]
    return [
        Probe(success_rate([g.text for g in a], t.gold_calls), s, [g.text for g in a])
        for t, a, s in zip(tasks, answers, scores)
    ]


class GeneratorReward:
    """TRL reward function for the Generator phase: r_G per completion, probing the frozen Solver.

    Each call is one rollout batch (a GRPO step's, or `steps_per_generation` steps' at once), its "step" in the
    records. Completions that parse into a task with a passing gate are probed (identical texts once); every
    completion is written to `generator_rollouts.jsonl` with its terms.
    """

    __name__ = "generator_reward"  # TRL names its logged reward column after this

    def __init__(self, roles: RoleModel, config: SelfPlayConfig, run: RunDir, iteration: int):
        self.roles, self.config, self.run, self.iteration = roles, config, run, iteration
        self.calls = 0

    def __call__(self, completions: list, spec: list[str], **_: Any) -> list[float]:
        texts = [completion_text(c) for c in completions]
        specs = [Spec(**json.loads(s)) for s in spec]
        outs, scores, probed = self.score(texts, specs)
        self.record(texts, specs, outs, scores, probed)
        self.calls += 1
        return [s.total for s in scores]

    def score(self, texts: list[str], specs: list[Spec]) -> tuple[list, list[GeneratorScore], dict[str, Probe]]:
        """Parse each completion, probe the frozen Solver on those that pass the gate, and score r_G."""
        outs = [parse_generator_output(t) for t in texts]
        to_probe = {t: o.to_task() for t, o in zip(texts, outs) if o.error is None and question_gate(o.question)}
        probed = dict(zip(to_probe, probe_tasks(self.roles, list(to_probe.values()), self.config,
                                                seed=self.config.seed * 1000 + self.iteration * 100 + self.calls)))  # fmt: skip
        scores = []
        for text, out, sp in zip(texts, outs, specs):
            probe = probed.get(text)  # None: not probed (did not parse, or the gate is 0), so r_curr = 0
            p_hat, judge = (probe.p_hat, probe.judge_score) if probe else (None, None)
            scores.append(score_generator_output(out, sp.no_call, p_hat, judge, self.config.rewards))
        if self.config.rewards.repetition_penalty > 0:
            for score, penalty in zip(scores, repetition_penalties([o.question or "" for o in outs],
                                                                     self.config.rewards.repetition_penalty)):
                score.repetition = penalty
        return outs, scores, probed

    def record(self, texts: list[str], specs: list[Spec], outs: list, scores: list[GeneratorScore],
               probed: dict[str, Probe]) -> None:  # fmt: skip
        """Every completion with its terms and probes to generator_rollouts.jsonl; the step's means to metrics.

        With several processes each scored (and probed for) its own completions; the rows of all come together
        here, marked with the rank that probed them.
        """
        rows = gather([
            {"step": self.calls, "rank": rank(), "spec": asdict(sp), "text": text, "parse_error": out.error,
             "terms": asdict(score), "reward": score.total,
             "p_hat": probed[text].p_hat if text in probed else None,
             "probe_answers": probed[text].answers if text in probed else []}
            for text, out, sp, score in zip(texts, outs, specs, scores)
        ])  # fmt: skip
        self.run.append(f"{iteration_name(self.iteration)}/generator_rollouts.jsonl", rows)
        p_hats = [r["p_hat"] for r in rows if r["p_hat"] is not None]
        self.run.append("metrics.jsonl", [{
            "iteration": self.iteration, "phase": "generator", "step": self.calls,
            "parse_rate": sum(r["parse_error"] is None for r in rows) / len(rows),
            **{f"mean_{k}": sum(r["terms"][k] for r in rows) / len(rows)
               for k in ("gate", "format", "validity", "difficulty", "semantic", "repetition")},
            "mean_reward": sum(r["reward"] for r in rows) / len(rows),
            "p_hat_histogram": dict(sorted(Counter(round(p, 3) for p in p_hats).items())),
            "in_band": sum(self.config.rewards.band[0] <= p <= self.config.rewards.band[1] for p in p_hats),
            "probed_by_rank": _by_rank(r["rank"] for r in rows if r["p_hat"] is not None),
        }])  # fmt: skip


class SolverReward:
    """TRL reward function for the Solver phase: r_S = r_fmt + r_acc per completion.

    Each call is one rollout batch, as for the Generator; every completion is written to `solver_rollouts.jsonl`
    as the whole answer (the begun text, if any, then the completion) with its two terms and its task (the line
    of tasks.jsonl), and the batch's means to metrics.
    """

    __name__ = "solver_reward"  # TRL names its logged reward column after this

    def __init__(self, run: RunDir, iteration: int):
        self.run, self.iteration = run, iteration
        self.calls = 0

    def __call__(self, completions: list, gold_calls: list, answer_prefix: list[str] | None = None,
                 task: list[int] | None = None, **_: Any) -> list[float]:  # fmt: skip
        formats = solver_format_reward_func(completions, gold_calls, answer_prefix)
        accuracies = solver_accuracy_reward_func(completions, gold_calls, answer_prefix)
        prefixes, tasks = answer_prefix or [""] * len(completions), task or [None] * len(completions)
        rows = gather([
            {"step": self.calls, "rank": rank(), "task": t, "gold_calls": json.loads(g),
             "text": p + completion_text(c), "format": f, "accuracy": a, "reward": f + a}
            for c, g, p, t, f, a in zip(completions, gold_calls, prefixes, tasks, formats, accuracies)
        ])  # fmt: skip
        self.run.append(f"{iteration_name(self.iteration)}/solver_rollouts.jsonl", rows)
        self.run.append("metrics.jsonl", [{
            "iteration": self.iteration, "phase": "solver", "step": self.calls,
            **{f"mean_{k}": sum(r[k] for r in rows) / len(rows) for k in ("format", "accuracy", "reward")},
            "answered_share": sum(r["format"] > 0 for r in rows) / len(rows),
        }])  # fmt: skip
        self.calls += 1
        return [f + a for f, a in zip(formats, accuracies)]


# ---------------------------------------------------------------- the three phases


def train_role(roles: RoleModel, role: str, rows: list[dict], reward_funcs: list[Callable], phase: PhaseConfig,
               config: SelfPlayConfig, run: RunDir, iteration: int, shuffle: bool = True,
               prompts_per_group: int = 1) -> None:  # fmt: skip
    """One GRPO phase with TRL on `role`'s LoRA weights; TRL's logs go to metrics.jsonl, and to the console as
    one short line a step (TRL's whole log dictionary too with `verbose: true`). `shuffle=False`: the steps take
    `rows` in their order, `prompts_per_step` at a time. `prompts_per_group`: that many consecutive rows' answers
    make one GRPO group (`group_size` answers each), in the rows' order (`grouped_prompts`)."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from transformers.trainer_callback import ProgressCallback
    from trl import GRPOConfig, GRPOTrainer

    class ToMetrics(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            run.append("metrics.jsonl", [{"iteration": iteration, "phase": f"{role}_trl", "step": state.global_step,
                                          **(logs or {})}])  # fmt: skip

    class StepLine(ProgressCallback):
        """TRL's progress bar, with one line a step instead of its 25-key dictionary."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.training_bar is not None and logs and "reward" in logs:
                kl = f", kl {logs['kl']:.4f}" if phase.beta > 0 and "kl" in logs else ""
                self.training_bar.write(f"[{iteration_name(iteration)}/{role}] step {state.global_step}/{state.max_steps}: "
                                        f"reward {logs['reward']:.3f} ± {logs.get('reward_std', 0):.3f}{kl}")  # fmt: skip

    cuda = torch.cuda.is_available()
    args = GRPOConfig(
        output_dir=str(run.iteration(iteration) / f"trl_{role}"),
        # A step is prompts_per_step × group_size completions whatever the number of processes: each process
        # takes its share in gradient_accumulation_steps passes (check_processes made these divide evenly).
        per_device_train_batch_size=phase.prompts_per_step * phase.group_size // world_size() // phase.gradient_accumulation_steps,
        gradient_accumulation_steps=phase.gradient_accumulation_steps,
        num_generations=phase.group_size * prompts_per_group,  # TRL's group: its advantages' mean and spread
        steps_per_generation=phase.steps_per_generation * phase.gradient_accumulation_steps,  # TRL counts passes
        max_completion_length=phase.max_completion_length,
        max_steps=phase.steps,
        shuffle_dataset=shuffle,
        learning_rate=phase.learning_rate,
        lr_scheduler_type="constant",  # set explicitly: Unsloth's trainer otherwise warms up from 0
        warmup_steps=0,
        temperature=phase.temperature,
        beta=phase.beta,
        epsilon=phase.epsilon,
        gradient_checkpointing=phase.gradient_checkpointing,
        logging_steps=1,
        save_strategy="no",
        report_to=config.report_to,
        seed=config.seed + iteration,
        ddp_find_unused_parameters=False,  # several processes: only the trained role's LoRA weights, all used
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported() and config.model.torch_dtype() == torch.bfloat16,
        fp16=cuda and config.model.torch_dtype() == torch.float16,
    )
    trainer_class = grouped_prompts(GRPOTrainer, prompts_per_group) if prompts_per_group > 1 else GRPOTrainer
    trainer = trainer_class(model=roles.for_training(role), args=args, reward_funcs=reward_funcs,
                            train_dataset=Dataset.from_list(rows), processing_class=roles.tokenizer,
                            callbacks=[ToMetrics()])  # fmt: skip
    if not config.verbose:
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(StepLine())
    trainer.train()


def grouped_prompts(trainer_class: type, prompts: int) -> type:
    """TRL's GRPO trainer with each group made of `prompts` consecutive rows' answers instead of one row's.

    TRL ranks the answers of a group (`num_generations` consecutive rollouts) against their own mean and spread,
    and its sampler repeats each row `num_generations` times. This sampler repeats each row `num_generations //
    prompts` times, in the rows' order, so a group holds those answers of `prompts` rows, each row's prompt
    generated as its own (TRL generates every rollout from its row).
    """
    from trl.trainer.utils import RepeatSampler

    class GroupedPrompts(trainer_class):
        def _get_train_sampler(self, dataset=None):
            per_row = self.num_generations // prompts
            return RepeatSampler(self.train_dataset if dataset is None else dataset, mini_repeat_count=per_row,
                                 batch_size=self.args.generation_batch_size // per_row,
                                 repeat_count=self.num_iterations * self.args.steps_per_generation, shuffle=False,
                                 seed=self.args.seed)  # fmt: skip

    return GroupedPrompts


def generator_phase(roles: RoleModel, config: SelfPlayConfig, run: RunDir, iteration: int) -> None:
    phase = config.generator
    specs = sample_specs(config.spec, phase.steps * phase.prompts_per_step, seed=config.seed * 7919 + iteration)
    rows = [{"prompt": generator_messages(s, _example(config, i)), "spec": json.dumps(asdict(s))}
            for i, s in enumerate(specs)]  # fmt: skip
    train_role(roles, "generator", rows, [GeneratorReward(roles, config, run, iteration)], phase, config, run, iteration)


def sample_candidates(roles: RoleModel, config: SelfPlayConfig, run: RunDir, iteration: int) -> int:
    """The frozen Generator's candidates, appended to candidates.jsonl a batch at a time (each batch survives a
    crash); returns the new tokens written in this call."""
    from tqdm.auto import tqdm

    s, name = config.synthesis, iteration_name(iteration)
    specs = sample_specs(config.spec, s.candidates, seed=config.seed * 104729 + iteration)
    tokens = 0
    for first in tqdm(range(run.count(f"{name}/candidates.jsonl"), s.candidates, s.batch_size),
                      desc=f"{name} synthesis", unit="batch", disable=not run.writer):  # fmt: skip
        batch = specs[first : first + s.batch_size]
        prompts = [generator_messages(sp, _example(config, first + j)) for j, sp in enumerate(batch)]
        outs = generate_shared(roles, "generator", prompts, n=1, temperature=s.temperature, max_new_tokens=s.max_new_tokens,
                              seed=config.seed * 1_000_003 + iteration * 10_007 + first)  # fmt: skip
        records = []
        for j, (sp, gen, by) in enumerate(zip(batch, outs, owners(len(batch)))):
            parsed = parse_generator_output(gen[0].text)
            cheap = 0.0  # r_G without the probe terms: what dedup keeps the best of
            if parsed.error is None:
                cheap = question_gate(parsed.question) * (generator_format_reward(parsed) + validity_reward(
                    parsed.question, parsed.tools, parsed.gold_calls, sp.no_call))  # fmt: skip
            tokens += gen[0].completion_tokens
            records.append({"index": first + j, "spec": asdict(sp), "text": gen[0].text,
                            "completion_tokens": gen[0].completion_tokens, "generator_reward": cheap, "rank": by})  # fmt: skip
        run.append(f"{name}/candidates.jsonl", records)
        run.commit()
    return tokens


def synthesize(roles: RoleModel, config: SelfPlayConfig, run: RunDir, iteration: int, log: Callable) -> list[Task]:
    """Candidates from the frozen Generator, then the pipeline (docs/METHOD.md §5) to the Solver's training set:
    verify and dedup, set aside the held-out tasks (iteration 0), agreement, difficulty labels, curriculum."""
    s, name = config.synthesis, iteration_name(iteration)
    start = time.perf_counter()
    resumed = run.count(f"{name}/candidates.jsonl") > 0
    tokens = sample_candidates(roles, config, run, iteration)

    candidates = {f"{name}-{c['index']:05d}": c for c in read_jsonl(run.path(name, "candidates.jsonl"))}
    tasks, rejects = verify_and_deduplicate(
        [c["text"] for c in candidates.values()], [Spec(**c["spec"]) for c in candidates.values()],
        ids=list(candidates), rewards=[c["generator_reward"] for c in candidates.values()],
    )  # fmt: skip
    sound = len(tasks)
    tasks, ungrounded = grounding_filter(tasks) if s.require_grounded else (tasks, [])
    grounded = len(tasks)
    if iteration == 0:
        tasks = set_aside_heldout(tasks, s.heldout, config.seed, run)
    answers = agreement_answers(roles, tasks, config, seed=config.seed + iteration)
    agreed, disagreed = agreement_filter(tasks, answers, s.agreement_min)
    label_difficulty(roles, agreed, config)
    selected = curriculum_select(agreed, s.tasks, s.mix, seed=config.seed + iteration)
    topped_up = exemplar_top_up(s.min_tasks - len(selected)) if s.on_too_few == "exemplars" else []
    by_id = {t.id: a for t, a in zip(tasks, answers)}
    training = (with_no_call_twins(selected, by_id) if s.no_call_twins else selected) + topped_up

    rejects += ungrounded + disagreed
    run.write_jsonl(f"{name}/rejects.jsonl", [r.to_dict() for r in rejects])
    run.write_jsonl(f"{name}/probes.jsonl", [{"task_id": t.id, "agreement_answers": a} for t, a in zip(tasks, answers)])
    run.write_jsonl(f"{name}/tasks.jsonl", [t.to_dict() for t in training])
    seconds = time.perf_counter() - start
    metrics = {
        "iteration": iteration, "phase": "synthesis", "candidates": len(candidates), "verified_unique": sound,
        "ungrounded": len(ungrounded), "heldout": grounded - len(tasks), "agreed": len(agreed), "selected": len(selected),
        "topped_up_with_exemplars": len(topped_up), "no_call_twins": len(training) - len(selected) - len(topped_up),
        "reject_reasons": dict(Counter(r.reason for r in rejects).most_common()),
        "domains": dict(Counter(t.spec.domain for t in training if t.spec).most_common()),
        "difficulty": dict(Counter(t.difficulty for t in training).most_common()),
        "no_call_tasks": sum(not t.gold_calls for t in training),
        "candidates_by_rank": _by_rank(c.get("rank", 0) for c in candidates.values()),
        "seconds": round(seconds, 2), "generator_tokens_per_s": None if resumed else round(tokens / seconds, 1),
        "peak_memory_mib": peak_memory_mib(),
    }  # fmt: skip
    run.append("metrics.jsonl", [metrics])
    log(f"[{name}] synthesis: {len(candidates)} candidates → {sound} sound and unique"
        + (f" → {grounded} grounded" if s.require_grounded else "") + f" ({grounded - len(tasks)} held out) "
        f"→ {len(agreed)} agreed → {len(selected)} selected" + (f" (+{len(topped_up)} exemplars)" if topped_up else "")
        + (f" (+{metrics['no_call_twins']} no-call twins)" if s.no_call_twins else "")
        + f"; rejects by reason: {metrics['reject_reasons']}")  # fmt: skip
    return training


def agreement_answers(roles: RoleModel, tasks: list[Task], config: SelfPlayConfig, seed: int) -> list[list[str]]:
    """Near-greedy answers to each sound task, for the agreement check: the frozen Solver's, or with
    `synthesis.agreement_by: base` the base model's (in the Solver's prompt)."""
    s = config.synthesis
    prompts = [solver_prompt(config, t, i) for i, t in enumerate(tasks)]
    answers = generate_shared(roles, s.agreement_by, prompts, n=s.agreement_samples, temperature=s.agreement_temperature,
                             max_new_tokens=config.probe.max_new_tokens, seed=seed) if tasks else []  # fmt: skip
    return [[g.text for g in a] for a in answers]


def label_difficulty(roles: RoleModel, tasks: list[Task], config: SelfPlayConfig) -> None:
    """The frozen Solver as judge labels each task easy, medium or hard (in place)."""
    labels = generate_shared(roles, "solver", [difficulty_judge_messages(t) for t in tasks], n=1, temperature=0,
                            max_new_tokens=config.probe.judge_max_new_tokens) if tasks else []  # fmt: skip
    for task, label in zip(tasks, labels):
        task.difficulty = parse_difficulty(label[0].text)


def exemplar_top_up(missing: int) -> list[Task]:
    """`missing` copies of the built-in exemplar tasks (rotating), for a Solver set that came out too small."""
    tasks = [Task.from_dict(EXEMPLARS[k % len(EXEMPLARS)][0].to_dict()) for k in range(max(missing, 0))]
    for k, task in enumerate(tasks):
        task.id = f"exemplar-{k}"
    return tasks


def set_aside_heldout(tasks: list[Task], count: int, seed: int, run: RunDir) -> list[Task]:
    """Write a seeded random share of iteration 0's sound tasks (at most half) to heldout.jsonl; return the rest.

    Held out before the Solver's agreement filter, so the set is not biased towards what the Solver already
    agrees on; evaluation (evaluate.py) scores every Solver on these and the Solver never trains on them.
    """
    chosen = set(random.Random(seed + 7919).sample(range(len(tasks)), min(count, len(tasks) // 2)))
    run.write_jsonl("heldout.jsonl", [tasks[i].to_dict() for i in sorted(chosen)])
    return [t for i, t in enumerate(tasks) if i not in chosen]


def solver_phase(roles: RoleModel, tasks: list[Task], config: SelfPlayConfig, run: RunDir, iteration: int) -> None:
    # TRL adds a new assistant turn after any chat prompt, so an answer begun for the model (the think prefill)
    # goes to TRL as rendered text; the reward functions put the begun text back before each completion.
    rows = []
    for i, (task, place) in enumerate(zip(tasks, example_places(tasks))):
        messages = solver_prompt(config, task, place)  # a twin shows its task's examples: only the menu differs
        prefix = begun(messages)
        prompt = without_template_bos(roles.chat_prompt(messages), roles.tokenizer) if prefix else messages
        rows.append({"prompt": prompt, "answer_prefix": prefix, "task": i,
                     "gold_calls": json.dumps([asdict(c) for c in task.gold_calls])})  # fmt: skip
    needed = config.solver.steps * config.solver.prompts_per_step
    if config.solver_twin_in_step:  # the kit's order, each twin in its task's step; TRL's shuffle off
        order = twin_steps(tasks, needed, seed=config.seed + iteration, lone=config.solver_twin_group)
        rows = [rows[i] for i in order]
    else:
        rows = [rows[i % len(rows)] for i in range(max(needed, len(rows)))]  # repeat a small set to fill the steps
    train_role(roles, "solver", rows, [SolverReward(run, iteration)], config.solver, config, run, iteration,
               shuffle=not config.solver_twin_in_step, prompts_per_group=2 if config.solver_twin_group else 1)  # fmt: skip


def solver_prompt(config: SelfPlayConfig, task: Task, index: int) -> list[dict[str, str]]:
    """The Solver's prompt for the `index`-th task as the run's config asks: example, think prefill."""
    return solver_messages(task, _example(config, index, "solver"), config.solver_think_prefill,
                           config.solver_example_pair, config.solver_example_last)  # fmt: skip


def _example(config: SelfPlayConfig, index: int, role: str = "generator") -> int | None:
    """Which built-in exemplar a role's prompt shows (rotating), or None when that role's exemplars are off."""
    return index if (config.solver_shows_example if role == "solver" else config.exemplars) else None


def _by_rank(ranks) -> dict[str, int]:
    """How many records each process produced, e.g. {"0": 8, "1": 8} (JSON keys are strings)."""
    return {str(r): n for r, n in sorted(Counter(ranks).items())}


def peak_memory_mib() -> float:
    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


# ---------------------------------------------------------------- the loop


def run_selfplay(config: SelfPlayConfig, out: str | Path | None = None, log: Callable[[str], None] = print,
                 roles: RoleModel | None = None) -> RunDir:  # fmt: skip
    """Run (or resume) self-play into `out`; returns the run directory. Kill it any time and call it again.

    `roles`: a model this process already loaded from `config.model` (an evaluation's, say), holding its initial
    weights or this run's, used instead of a second copy; its slots are set from the run's adapters as on a resume.
    """
    if roles is not None and roles.config != config.model:
        raise ConfigError("run_selfplay: the model given was loaded with other model settings than the run's; "
                          "load it from config.model, or leave roles out")  # fmt: skip
    check_launch()
    join_launch()
    check_processes(config, world_size())
    run = open_run(out or config.out)
    log = log if run.writer else (lambda _: None)  # one console: the main process's
    _check_finished_adapters(run)
    _check_same_config(run, config)
    log(f"toolr0_lite: run directory {run.root} ({'resuming' if run.state['done'] else 'new run'})")
    log(f"toolr0_lite: model {config.model.source} in {config.model.dtype_note()}")
    roles = roles or RoleModel.load(config.model)
    _restore_roles(run, roles, config.iterations)
    for it in range(config.iterations):
        name = iteration_name(it)
        if not run.is_done(f"{name}/generator"):
            log(f"[{name}/generator] GRPO phase: " + ("frozen, not trained" if config.frozen_generator
                                                       else f"{config.generator.steps} steps"))  # fmt: skip
            start = time.perf_counter()
            if not config.frozen_generator:
                generator_phase(roles, config, run, it)
            if run.writer:
                roles.save_role("generator", run.path(name, "generator"))
            _phase_done(run, f"{name}/generator", it, "generator_done", start, log)
        if not run.is_done(f"{name}/synthesis"):
            synthesize(roles, config, run, it, log)
            run.commit(f"{name}/synthesis")
        if not run.is_done(f"{name}/solver"):
            tasks = [Task.from_dict(d) for d in read_jsonl(run.path(name, "tasks.jsonl"))]
            start = time.perf_counter()
            if len(tasks) < config.synthesis.min_tasks and config.synthesis.on_too_few == "stop":
                log(f"[{name}] only {len(tasks)} tasks (< synthesis.min_tasks = {config.synthesis.min_tasks}): "
                    "stopping as synthesis.on_too_few says. Raise synthesis.candidates, or use skip/exemplars.")  # fmt: skip
                return run
            if len(tasks) < config.synthesis.min_tasks or not tasks:
                log(f"[{name}] only {len(tasks)} tasks: the Solver phase is skipped this iteration (never trains on too few)")
            else:
                log(f"[{name}/solver] GRPO phase: {config.solver.steps} steps on {len(tasks)} tasks")
                solver_phase(roles, tasks, config, run, it)
            if run.writer:
                roles.save_role("solver", run.path(name, "solver"))
            _phase_done(run, f"{name}/solver", it, "solver_done", start, log, tasks=len(tasks))
    from toolr0_lite.plots import plot_curriculum

    if run.writer:
        plot_curriculum(run.root)
    log(f"toolr0_lite: done. Tasks, rejects, metrics and adapters are in {run.root}")
    return run


def _phase_done(run: RunDir, unit: str, iteration: int, phase: str, start: float, log: Callable, **extra: Any) -> None:
    seconds = time.perf_counter() - start
    run.append("metrics.jsonl", [{"iteration": iteration, "phase": phase, "seconds": round(seconds, 2),
                                  "peak_memory_mib": peak_memory_mib(), **extra}])  # fmt: skip
    run.commit(unit)
    log(f"[{unit}] finished in {seconds:.0f} s")


# Settings a run may change when it is resumed or continued: how long it runs, how it logs, how its folder is spelt,
# and gradient checkpointing (it recomputes the same activations: the cure for a phase killed for memory).
CONTINUABLE = ("iterations", "report_to", "verbose", "out", "generator.gradient_checkpointing",
               "solver.gradient_checkpointing")  # fmt: skip


def _check_same_config(run: RunDir, config: SelfPlayConfig) -> None:
    """Write the resolved config; resuming with another config would mix two runs' records.

    Only `CONTINUABLE` settings may differ: raising `iterations` continues a run (its finished iterations
    stay as they are), `report_to` and `verbose` are logging, `out` may be spelt another way (the folder
    is the run), and gradient checkpointing changes memory, not results.
    """
    path, new = run.path("config.yaml"), to_dict(config)
    if path.exists():
        try:
            old = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise RunDirError(f"{path} is damaged ({str(e).splitlines()[0]}); it is the run's config: restore it, or "
                              "delete it to resume with the config given now (it must be this run's)") from None  # fmt: skip
        if not isinstance(old, dict):
            raise RunDirError(f"{path} does not hold a config; restore it, or delete it to resume with the config given now")
        changed = [k for k in changed_settings(old, new) if k not in CONTINUABLE]
        if changed:
            raise ConfigError(f"{run.root} holds a run with another config ({', '.join(changed)} differ); resume with "
                              "the same config or pick another --out")  # fmt: skip
        started = sorted(i for i in map(iteration_index, run.state["done"]) if i is not None)
        if started and config.iterations <= started[-1]:
            raise ConfigError(f"iterations: {run.root} has work done in {started[-1] + 1} iteration(s); "
                              f"set iterations to at least {started[-1] + 1} (an iteration is never undone)")  # fmt: skip
    if run.writer:
        atomic_write_text(path, yaml.safe_dump(new, sort_keys=False))


def _check_finished_adapters(run: RunDir) -> None:
    """Every phase state.json lists as finished still has its adapter, checked before anything loads or is written."""
    for unit in adapter_units(run.state["done"]):
        if not run.path(unit, "adapter_model.safetensors").is_file():
            raise RunDirError(f"{run.path(unit)} is missing, though state.json lists {unit} as finished; restore the "
                              f"folder, or take {unit!r} out of state.json's \"done\" list to redo that phase")  # fmt: skip


def _restore_roles(run: RunDir, roles: RoleModel, iterations: int) -> None:
    """On resume, each role continues from its latest saved adapter (loaded in the order they were saved,
    so with shared weights the newest one wins)."""
    for i in range(iterations):
        for role in ("generator", "solver"):
            unit = f"{iteration_name(i)}/{role}"
            if run.is_done(unit):
                roles.load_role(role, run.path(unit))


def mean_solver_reward(roles: RoleModel, tasks: list[Task], config: SelfPlayConfig, samples: int = 4,
                       max_new_tokens: int = 96, seed: int = 0) -> float:  # fmt: skip
    """The Solver's mean r_S over `samples` answers to each task, prompted as the run `config` trains it (worked
    examples, pair, think prefill): a quick before/after measure."""
    from toolr0_lite.rewards import solver_reward

    prompts = [solver_prompt(config, t, i) for i, t in enumerate(tasks)]
    answers = roles.generate("solver", prompts, n=samples, temperature=0.7,
                             max_new_tokens=max_new_tokens, seed=seed)  # fmt: skip
    gold = [[asdict(c) for c in t.gold_calls] for t in tasks]
    scores = [solver_reward(g.text, gc) for a, gc in zip(answers, gold) for g in a]
    return sum(scores) / len(scores) if scores else 0.0

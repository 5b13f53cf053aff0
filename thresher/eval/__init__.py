"""Measuring rounds: per-task pass@1 / pass@k / maj@k, judge selection lift, reports and W&B curves.

`eval_stage` is what the round loop calls; `metrics` holds the pure
formulas; `report` turns a run directory into metrics rows, regression
warnings, `curves.png`, `report.html` and a terminal table; `wandb_log`
mirrors the same numbers to Weights & Biases.
"""

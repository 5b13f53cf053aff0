"""The quickstart: tiny models thresher builds itself, and a recipe that shows real per-task gains on a CPU.

- `tokenizer.py`  a byte-level BPE learned on arithmetic text, digits never merged
- `worked.py`     the column-arithmetic answers the tiny models are pretrained to write
- `pretrain.py`   pretraining with transformers' Trainer; the student is an early checkpoint
- `build.py`      build once, cache by config hash (`builtin:tiny-teacher|student|rm`)
- `arms.py`       the main arm (selected data) vs the control arm (random data), and their table
- `quickstart.yaml` the recipe (also at `recipes/quickstart.yaml`)
"""

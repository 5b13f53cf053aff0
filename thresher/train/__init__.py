"""Training on what the judges kept: TRL SFT, DPO and reward-model training, full or LoRA.

`train_stage` is what the round loop calls; `train_sft`, `train_dpo` and
`train_reward_model` are the trainers it dispatches to, usable alone.
Heavy libraries (torch, TRL) are imported inside the functions.
"""

from thresher.train.dpo import train_dpo
from thresher.train.reward import train_reward_model
from thresher.train.sft import train_sft
from thresher.train.stage import train_stage

__all__ = ["train_dpo", "train_reward_model", "train_sft", "train_stage"]

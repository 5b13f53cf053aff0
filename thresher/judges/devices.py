"""Where a judge's model runs, and in which precision: one rule for every model-backed judge.

A GPU when there is one, else the CPU; bfloat16 on a GPU (half the memory,
the precision reward models are trained in), float32 on a CPU (where bf16
is slow and changes scores). A user's `device` / `dtype` win.
"""

from __future__ import annotations

from typing import Any

from thresher.errors import UserError


def device_and_dtype(who: str, device: str | None, dtype: str | None) -> tuple[str, Any]:
    """(device, torch dtype) for a judge's model; `who` names the judge in the error for a bad dtype."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise UserError(f"{who}: dtype {dtype!r} is not a torch dtype (float32, bfloat16, ...)")
    return device, torch_dtype

"""Which torch device runs a training or a rollout."""

from __future__ import annotations

import torch

from data.errors import BadInput


def pick_device(name: str = "auto") -> torch.device:
    """cuda > mps > cpu for ``auto``; a named device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if not available[name]:
        raise BadInput(f"train.device={name} is not available here; use train.device=auto")
    return torch.device(name)

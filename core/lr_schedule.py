"""Learning-rate schedules: ReduceLROnPlateau on validation loss (the seed's), or a linear
warm-up followed by cosine decay to zero over the whole run."""

from __future__ import annotations

import math

import torch

from core.config import TrainConfig


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to zero at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_lr_schedule(optimizer: torch.optim.Optimizer, training: TrainConfig):
    """Cosine steps once per optimiser step; plateau once per iteration, on val/loss."""
    if training.lr_schedule == "cosine":
        total = training.iters * training.steps_per_iter
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, training.warmup_steps, total)
        )
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=training.plateau_patience)

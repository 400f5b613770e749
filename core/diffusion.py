"""Masked (absorbing-state) discrete diffusion over action tokens (Sahoo et al. 2024, MDLM).

Forward process: at time t in [0, 1] each clean token is replaced by MASK with probability
``mask_ratio(t) = 1 - alpha(t)``. The denoiser sees the corrupted chunk and predicts the
clean actions at the masked positions (SUBS parameterisation: the mask token is never
predicted, and unmasked tokens are carried over unchanged).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from core.config import DiffusionConfig, ScheduleName
from core.tokens import MASK


class Schedule:
    """A mask schedule: ``mask_ratio(t) = 1 - alpha(t)``, increasing from 0 at t=0 to 1 at t=1,
    and the continuous-time ELBO weight ``-alpha'(t) / (1 - alpha(t))`` (MDLM eq. 10)."""

    def mask_ratio(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def elbo_weight(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reveal_ratio(self, t: torch.Tensor) -> torch.Tensor:
        """The share of a plan the confidence sampler leaves masked at t."""
        return self.mask_ratio(t)


class Linear(Schedule):
    def mask_ratio(self, t):
        return t

    def elbo_weight(self, t):
        return 1.0 / t


class Cosine(Schedule):
    """The seed's cosine: MaskGIT's mask ratio cos(pi/2 * r) written in diffusion time,
    r = 1 - t (MDLM's own cosine schedule is a different function)."""

    def mask_ratio(self, t):
        return torch.cos(math.pi / 2 * (1 - t))

    def elbo_weight(self, t):
        # d/dt cos(pi/2 (1-t)) = pi/2 sin(pi/2 (1-t)); divided by the mask ratio itself.
        return math.pi / 2 * torch.tan(math.pi / 2 * (1 - t))


class LogLinear(Schedule):
    """MDLM's log-linear noise (noise_schedule.py): total noise sigma(t) = -log(1 - (1-eps) t),
    alpha = exp(-sigma); the ELBO weight sigma'(t) / expm1(sigma(t)) equals 1/t."""

    def __init__(self, eps: float = 1e-3):
        self.eps = eps

    def total_noise(self, t):
        return -torch.log1p(-(1 - self.eps) * t)

    def rate_noise(self, t):
        return (1 - self.eps) / (1 - (1 - self.eps) * t)

    def mask_ratio(self, t):
        return -torch.expm1(-self.total_noise(t))

    def elbo_weight(self, t):
        return self.rate_noise(t) / torch.expm1(self.total_noise(t))

    def reveal_ratio(self, t):
        # The eps only keeps the loss finite at t = 1; a plan is laid out on t itself.
        return t


class Full(Schedule):
    """Every token masked at every t: with one action token this is one-step behaviour cloning."""

    def mask_ratio(self, t):
        return torch.ones_like(t)

    def elbo_weight(self, t):
        raise ValueError("the full schedule has no ELBO weight (alpha is constant)")


# Each schedule a configuration may name (``diffusion.schedule``).
SCHEDULES: dict[ScheduleName, type[Schedule]] = {
    "cosine": Cosine,
    "linear": Linear,
    "loglinear": LogLinear,
    "full": Full,
}


def make_schedule(name: str) -> Schedule:
    return SCHEDULES[name]()


def sample_t(
    batch: int, config: DiffusionConfig, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Diffusion times (B,) in (0, 1]. Antithetic sampling spreads one uniform draw evenly over
    the batch (MDLM's low-discrepancy sampler); ``timesteps`` > 0 rounds up to {1..T}/T."""
    if config.antithetic:
        u = (
            torch.rand(1, generator=generator, device=device)
            + torch.arange(batch, device=device) / batch
        ) % 1.0
    else:
        u = torch.rand(batch, generator=generator, device=device)
    if config.timesteps > 0:
        return (torch.floor(u * config.timesteps) + 1) / config.timesteps
    return 1e-3 + (1 - 1e-3) * u  # keep t away from 0, where the ELBO weight explodes


def corrupt(
    actions: torch.Tensor, t: torch.Tensor, schedule: Schedule, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """z_t: each token of actions (B, H) masked with probability mask_ratio(t). Returns z_t and
    the boolean mask (B, H)."""
    ratio = schedule.mask_ratio(t)[:, None]  # (B, 1)
    masked = torch.rand(actions.shape, generator=generator, device=actions.device) < ratio
    return torch.where(masked, torch.full_like(actions, MASK), actions), masked


def masked_loss(
    logits: torch.Tensor,
    actions: torch.Tensor,
    masked: torch.Tensor,
    t: torch.Tensor,
    schedule: Schedule,
    weighting: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy on the masked positions. ``none``: the plain mean over masked tokens
    (the seed's and MaskGIT's loss); ``elbo``: MDLM's continuous-time NELBO, each token's
    cross-entropy weighted by -alpha'(t)/(1-alpha(t)) and averaged over all positions.
    Returns (loss, masked-token accuracy)."""
    ce = F.cross_entropy(logits.float().transpose(1, 2), actions, reduction="none")  # (B, H)
    weight = masked.float()
    count = weight.sum().clamp(min=1.0)
    if weighting == "elbo":
        loss = (schedule.elbo_weight(t)[:, None] * ce * weight).sum() / masked.numel()
    else:
        loss = (ce * weight).sum() / count
    correct = (logits.argmax(-1) == actions).float()
    return loss, (correct * weight).sum() / count

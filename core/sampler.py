"""Planning: iterative unmasking of an action chunk in K steps.

Both orders start from an all-MASK chunk at t=1 and walk t down to 0 in K equal steps;
a token, once unmasked, never changes (SUBS carry-over).
- ``confidence`` (MaskGIT, Chang et al. 2022): after the step from t to s, the number of
  tokens still masked is ``floor(H * mask_ratio(s))`` (``reveal_counts``); the most confident
  predictions are the ones revealed (at least one a step, all at the last).
- ``ancestral`` (MDLM): each masked token is revealed with probability
  ``(alpha_s - alpha_t) / (1 - alpha_t)``, the reverse process's own transition.

Token values: at ``temperature`` 0 the most likely action (greedy); above 0 a draw from the
model's distribution sharpened by 1/temperature (1: the model's own, as MDLM samples).
"""

from __future__ import annotations

import math

import torch

from core.diffusion import Schedule
from core.tokens import MASK, Past


def reveal_counts(horizon: int, steps: int, schedule: Schedule) -> list[int]:
    """How many tokens the confidence order reveals at each of ``steps`` steps: the number
    still masked after a step is ``floor(horizon * reveal_ratio(s))``, computed in float64 with
    a tolerance so that a whole-number product floors to itself (float error would floor 3.996
    to 3 and reveal one token too many), held so that every step reveals at least one token
    and the last reveals the rest."""
    counts, masked = [], horizon
    for k in range(steps):
        s = torch.tensor([1 - (k + 1) / steps], dtype=torch.float64)
        left = math.floor(horizon * float(schedule.reveal_ratio(s)) + 1e-9)
        left = max(min(left, masked - 1), steps - 1 - k) if k < steps - 1 else 0
        counts.append(masked - left)
        masked = left
    return counts


@torch.inference_mode()
def sample_plan(
    model: torch.nn.Module,
    image: torch.Tensor,
    direction: torch.Tensor,
    horizon: int,
    steps: int,
    schedule: Schedule,
    order: str,
    generator: torch.Generator | None = None,
    temperature: float = 0.0,
    past: Past | None = None,
    mission: torch.Tensor | None = None,
) -> torch.Tensor:
    """image (B, 7, 7, 3), direction (B,) (with memory the ``past`` steps, where the task's
    mission varies its words (B, W)) -> actions (B, H), every position filled. ``model`` is
    the DiT: the observation is encoded once, then the chunk denoised ``steps`` times."""
    B, device = image.shape[0], image.device
    encoded = model.encode(image, direction, past, mission)
    z = torch.full((B, horizon), MASK, dtype=torch.long, device=device)
    counts = reveal_counts(horizon, steps, schedule) if order == "confidence" else None
    for k in range(steps):
        t = torch.full((B,), 1 - k / steps, device=device)
        s = torch.full((B,), 1 - (k + 1) / steps, device=device)
        # Only masked positions are ever revealed, so SUBS's carry-over of the others needs
        # no one-hots here: their confidence is set aside below and they keep their token.
        log_probs = model.denoise(encoded, z, t).float().log_softmax(dim=-1)  # (B, H, A)
        prediction = values(log_probs, temperature, generator)  # (B, H)
        confidence = log_probs.gather(-1, prediction[..., None])[..., 0]  # (B, H)
        masked = z == MASK  # (B, H)
        if k == steps - 1:
            reveal = masked
        elif order == "confidence":
            score = confidence.masked_fill(~masked, -torch.inf)
            rank = score.argsort(dim=1, descending=True).argsort(dim=1)  # (B, H)
            reveal = masked & (rank < counts[k])
        else:
            ratio_t, ratio_s = schedule.mask_ratio(t), schedule.mask_ratio(s)
            p = ((ratio_t - ratio_s) / ratio_t.clamp(min=1e-12))[:, None]  # (B, 1)
            u = torch.rand(z.shape, generator=generator, device=device)
            reveal = masked & (u < p)
        z = torch.where(reveal, prediction, z)
    return z


def values(log_probs: torch.Tensor, temperature: float, generator) -> torch.Tensor:
    """(B, H, A) log-probabilities -> (B, H) actions: the argmax at temperature 0, else a draw
    from softmax(log_probs / temperature)."""
    if temperature == 0:
        return log_probs.argmax(dim=-1)
    probs = (log_probs / temperature).softmax(dim=-1).flatten(0, 1)  # (B * H, A)
    drawn = torch.multinomial(probs, 1, generator=generator)  # (B * H, 1)
    return drawn.view(log_probs.shape[:-1])

"""Planning: iterative unmasking of an action chunk in K steps, greedy for evaluation.

Both orders start from an all-MASK chunk at t=1 and walk t down to 0 in K equal steps;
a token, once unmasked, never changes (SUBS carry-over).
- ``confidence`` (MaskGIT, Chang et al. 2022): after the step from t to s, the number of
  tokens still masked is ``floor(H * mask_ratio(s))``; the most confident predictions are
  the ones revealed (at least one per step, all at the last).
- ``ancestral`` (MDLM): each masked token is revealed with probability
  ``(alpha_s - alpha_t) / (1 - alpha_t)``, the reverse process's own transition.
"""

from __future__ import annotations

import torch

from core.diffusion import Schedule
from core.tokens import MASK


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
) -> torch.Tensor:
    """image (B, 7, 7, 3), direction (B,) -> actions (B, H), every position filled. ``model``
    is the DiT: the observation is encoded once, then the chunk denoised ``steps`` times."""
    B, device = image.shape[0], image.device
    memory = model.encode(image, direction)
    z = torch.full((B, horizon), MASK, dtype=torch.long, device=device)
    for k in range(steps):
        t = torch.full((B,), 1 - k / steps, device=device)
        s = torch.full((B,), 1 - (k + 1) / steps, device=device)
        # Only masked positions are ever revealed, so SUBS's carry-over of the others needs
        # no one-hots here: their confidence is set aside below and they keep their token.
        log_probs = model.denoise(memory, z, t).float().log_softmax(dim=-1)  # (B, H, A)
        confidence, prediction = log_probs.max(dim=-1)  # each (B, H)
        masked = z == MASK  # (B, H)
        if k == steps - 1:
            reveal = masked
        elif order == "confidence":
            keep_masked = int(horizon * schedule.mask_ratio(s[:1]).item())
            count = (masked.sum(1) - keep_masked).clamp(min=1)  # (B,) tokens to reveal now
            score = confidence.masked_fill(~masked, -torch.inf)
            rank = score.argsort(dim=1, descending=True).argsort(dim=1)  # (B, H)
            reveal = masked & (rank < count[:, None])
        else:
            ratio_t, ratio_s = schedule.mask_ratio(t), schedule.mask_ratio(s)
            p = ((ratio_t - ratio_s) / ratio_t.clamp(min=1e-12))[:, None]  # (B, 1)
            u = torch.rand(z.shape, generator=generator, device=device)
            reveal = masked & (u < p)
        z = torch.where(reveal, prediction, z)
    return z

"""The policy: a trained denoiser plus the plan/execute rule of its configuration, from live
weights or from a checkpoint."""

from __future__ import annotations

import numpy as np
import torch

from core.config import Config, apply_sets, from_dict, validate
from core.diffusion import make_schedule
from core.dit import model_for
from core.sampler import sample_plan
from core.tokens import Past
from data.errors import BadInput


class Policy:
    """Receding horizon (Chi et al. 2023, Diffusion Policy): each call plans ``horizon``
    actions and hands back the first ``exec_steps`` to execute before the next call.

    Sampling draws from one generator, seeded once per policy: successive plans see fresh
    randomness, and a rollout with a new policy repeats exactly."""

    def __init__(self, model: torch.nn.Module, config: Config, device: torch.device):
        self.model = model
        self.config = config
        self.device = device
        self.schedule = make_schedule(config.diffusion.schedule)
        self.generator = torch.Generator(device=device).manual_seed(config.train.seed)

    @property
    def deterministic(self) -> bool:
        """Whether the same observation always gets the same plan: greedy values in the
        confidence order (the ancestral order reveals positions at random)."""
        d = self.config.diffusion
        return d.temperature == 0 and d.sampler == "confidence"

    def plan(
        self,
        images: np.ndarray,
        directions: np.ndarray,
        past: tuple | None = None,
        missions: np.ndarray | None = None,
    ) -> np.ndarray:
        """(B, 7, 7, 3), (B,), for a policy with memory ``past``: the last ``history`` steps'
        views (B, M, 7, 7, 3), directions (B, M) and actions (B, M) (NO_STEP before the
        episode began) and the squares of the map around the agent (B, S, S, 3) (None: nothing
        seen before), and where the task's mission varies its words (B, W) -> the first
        exec_steps actions of each plan, (B, exec_steps)."""
        d = self.config.diffusion
        if past is not None:
            past = Past(*(torch.from_numpy(np.asarray(a)).to(self.device) for a in past))
        if missions is not None:
            missions = torch.from_numpy(missions).to(self.device)
        was_training = self.model.training
        if was_training:  # eval() walks every submodule: skipped when already there
            self.model.eval()
        actions = sample_plan(
            self.model,
            torch.from_numpy(images).to(self.device),
            torch.from_numpy(directions).to(self.device),
            self.config.model.horizon,
            d.sampling_steps,
            self.schedule,
            d.sampler,
            self.generator,
            d.temperature,
            past,
            missions,
        )
        if was_training:
            self.model.train()
        return actions[:, : d.exec_steps].cpu().numpy()


# How a plan is drawn from the trained weights: these can change without retraining.
PLANNING_KEYS = (
    "diffusion.sampler",
    "diffusion.sampling_steps",
    "diffusion.temperature",
    "diffusion.exec_steps",
)


def policy_from_checkpoint(payload: dict, device: torch.device, sets=()) -> Policy:
    """The evaluation policy (EMA weights when the run kept them) of a loaded checkpoint,
    planning as its configuration says, changed by ``sets`` (``key=value`` of PLANNING_KEYS)."""
    config = from_dict(payload["config"], where="checkpoint config")
    for item in sets:
        key = item.partition("=")[0]
        if key not in PLANNING_KEYS:
            raise BadInput(
                f"--set {item!r}: a trained policy can change only how it plans "
                f"({', '.join(PLANNING_KEYS)}); to change {key}, train again"
            )
    config = validate(apply_sets(config, list(sets)))
    model = model_for(config).to(device)
    weights = payload["model"]
    if payload.get("ema") is not None:
        prefix = "module."
        weights = {k[len(prefix) :]: v for k, v in payload["ema"].items() if k.startswith(prefix)}
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise BadInput(
            f"checkpoint weights do not fit its configuration ({str(error).splitlines()[0]}); "
            "retrain or pass another file"
        ) from None
    model.eval()
    return Policy(model, config, device)

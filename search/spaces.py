"""Search spaces as Optuna define-by-run functions.

Each function suggests values in search-friendly coordinates (powers of two as their
exponent, rates on a log scale) and returns the real configuration values they stand for,
as flat ``section.key`` names the trainable applies. Coordinates that are not themselves
configuration keys are named ``space.*``. Optuna refuses a categorical whose choices change
between trials, so heads are sampled as the head width, which always divides the hidden
size. No computation happens here: the searcher calls these on the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from core.diffusion import SCHEDULES as DIFFUSION_SCHEDULES
from data.errors import BadInput

if TYPE_CHECKING:
    import optuna

# The diffusion schedules a search compares (``full`` is one-step BC, a preset of its own).
SCHEDULES = [name for name in DIFFUSION_SCHEDULES if name != "full"]


def default(trial: optuna.Trial) -> dict:
    """The five the user named: hidden size, depth, heads, learning rate, mask schedule."""
    hidden = 2 ** trial.suggest_int("space.log2_hidden", 5, 7)  # 32 .. 128
    head_dim = 2 ** trial.suggest_int("space.log2_head_dim", 3, 5)  # 8 .. 32, at most hidden
    trial.suggest_int("model.depth", 1, 4)
    trial.suggest_float("train.lr", 3e-4, 1e-2, log=True)
    trial.suggest_categorical("diffusion.schedule", SCHEDULES)
    return {"model.hidden": hidden, "model.heads": hidden // head_dim}


def wide(trial: optuna.Trial) -> dict:
    """The default five plus batch size, dropout, weight decay, conditioning, loss weighting,
    plan horizon and executed steps, sampling steps and EMA."""
    real = default(trial)
    horizon = 2 ** trial.suggest_int("space.log2_horizon", 2, 4)  # 4 .. 16 actions
    real.update(
        {
            "train.batch_size": 2 ** trial.suggest_int("space.log2_batch_size", 4, 7),
            "model.horizon": horizon,
            # Executed and sampling steps as exponents capped at the horizon: a range that
            # moved with the horizon would be a different distribution in every trial.
            "diffusion.exec_steps": min(
                2 ** trial.suggest_int("space.log2_exec_steps", 0, 3), horizon
            ),
            "diffusion.sampling_steps": min(
                2 ** trial.suggest_int("space.log2_sampling_steps", 0, 3), horizon
            ),
        }
    )
    trial.suggest_float("model.dropout", 0.0, 0.2)
    trial.suggest_float("train.weight_decay", 1e-6, 1e-1, log=True)
    trial.suggest_categorical("model.conditioning", ["pool", "prefix"])
    trial.suggest_categorical("diffusion.weighting", ["none", "elbo"])
    trial.suggest_categorical("train.ema", [0.0, 0.99, 0.999])
    return real


SPACES: dict[str, Callable[[optuna.Trial], dict]] = {"default": default, "wide": wide}
SpaceName = Literal[tuple(SPACES)]  # type: ignore[valid-type]


def space(name: str) -> Callable[[optuna.Trial], dict]:
    if name not in SPACES:
        raise BadInput(f"unknown space {name!r}: use one of {', '.join(SPACES)}")
    return SPACES[name]

"""Search spaces as Optuna define-by-run functions.

Each function suggests values in search-friendly coordinates (powers of two as their
exponent, rates on a log scale) and returns the real configuration values they stand for,
as flat ``section.key`` names the trainable applies. Coordinates that are not themselves
configuration keys are named ``space.*``. Optuna refuses a categorical whose choices change
between trials, so heads are sampled as the head width, which always divides the hidden
size. No computation happens here: the searcher calls these on the driver.

``point_of`` goes the other way: the coordinates at which a space proposes a given
configuration, so that a search's first trial is the preset it starts from.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution

from core.config import Config, flat, from_flat
from core.diffusion import SCHEDULES as DIFFUSION_SCHEDULES
from data.errors import BadInput
from search.settings import SpaceName

# The diffusion schedules a search compares (``full`` is one-step BC, a preset of its own).
SCHEDULES = [name for name in DIFFUSION_SCHEDULES if name != "full"]


def named(trial: optuna.Trial) -> dict:
    """The five the user named: hidden size, depth, heads, learning rate, mask schedule; and
    the sampling temperature, which decides whether a policy can leave a loop (at 0 a policy
    is greedy, and a state it has planned from once it plans from the same way again)."""
    hidden = 2 ** trial.suggest_int("space.log2_hidden", 5, 7)  # 32 .. 128
    head_dim = 2 ** trial.suggest_int("space.log2_head_dim", 3, 5)  # 8 .. 32, at most hidden
    trial.suggest_int("model.depth", 1, 4)
    trial.suggest_float("train.lr", 3e-4, 1e-2, log=True)
    trial.suggest_categorical("diffusion.schedule", SCHEDULES)
    trial.suggest_float("diffusion.temperature", 0.0, 1.0, step=0.25)
    return {"model.hidden": hidden, "model.heads": hidden // head_dim}


def default(trial: optuna.Trial) -> dict:
    """The five the user named and the temperature (``named``), and how many of a plan's
    actions run before the next plan (1, 2 or 4): where the world moves on its own
    (Dynamic-Obstacles, the main job's task) a plan's later actions were made for a world
    that is gone."""
    real = named(trial)
    real["diffusion.exec_steps"] = 2 ** trial.suggest_int("space.log2_exec_steps", 0, 2)
    return real


def plans(trial: optuna.Trial, most_sampling_steps: int) -> dict:
    """How a policy plans: horizon (4 .. 16 actions), executed steps (1 .. 8) and sampling
    steps (1 .. 2 ** ``most_sampling_steps``), each as an exponent; executed and sampling
    steps capped at the horizon (a range that moved with the horizon would be a different
    distribution in every trial)."""
    horizon = 2 ** trial.suggest_int("space.log2_horizon", 2, 4)
    exec_steps = 2 ** trial.suggest_int("space.log2_exec_steps", 0, 3)
    sampling_steps = 2 ** trial.suggest_int("space.log2_sampling_steps", 0, most_sampling_steps)
    return {
        "model.horizon": horizon,
        "diffusion.exec_steps": min(exec_steps, horizon),
        "diffusion.sampling_steps": min(sampling_steps, horizon),
    }


def wide(trial: optuna.Trial) -> dict:
    """The named five plus batch size, dropout, weight decay, conditioning, loss weighting,
    plan horizon and executed steps, sampling steps and EMA."""
    real = named(trial)
    real.update(plans(trial, most_sampling_steps=3))
    real["train.batch_size"] = 2 ** trial.suggest_int("space.log2_batch_size", 4, 7)
    trial.suggest_float("model.dropout", 0.0, 0.2)
    trial.suggest_float("train.weight_decay", 1e-6, 1e-1, log=True)
    trial.suggest_categorical("model.conditioning", ["pool", "prefix"])
    trial.suggest_categorical("diffusion.weighting", ["none", "elbo"])
    trial.suggest_categorical("train.ema", [0.0, 0.99, 0.999])
    return real


def extended(trial: optuna.Trial) -> dict:
    """The named five plus what decides how a policy acts where one view is not enough
    (FourRooms), how it reads a mission in words, and how it learns from its own mistakes:
    plan horizon, executed and sampling steps, sampling temperature (above 0 a policy can
    leave a loop), encoder layout, memory (earlier steps, the map: what the `memory` preset
    adds), the expert imitated, FiLM of the view by the mission, demonstration count and
    noise, DAgger frequency and the lr schedule."""
    real = {**named(trial), **plans(trial, most_sampling_steps=2)}
    kilo_episodes = 2 ** trial.suggest_int("space.log2_kilo_episodes", 0, 2)  # 1000 .. 4000
    real["data.episodes"] = 1000 * kilo_episodes
    trial.suggest_categorical("model.layout", ["joint", "encoder"])
    trial.suggest_categorical("model.history", [0, 4, 8])
    trial.suggest_categorical("model.map", [0, 15])
    trial.suggest_categorical("data.expert", ["auto", "explorer"])
    trial.suggest_categorical("model.film", [False, True])
    # Optuna's steps of 0.1 land on 0.30000000000000004: the value laid over the data is
    # rounded, so the configuration names the same demonstrations as the preset's 0.3.
    real["data.noise"] = round(trial.suggest_float("data.noise", 0.0, 0.5, step=0.1), 2)
    trial.suggest_categorical("train.dagger_every", [0, 1, 2, 4])
    trial.suggest_categorical("train.lr_schedule", ["cosine", "plateau"])
    return real


def control(trial: optuna.Trial) -> dict:
    """How the preset's own network acts and what it learns from, at the preset's cost a
    step: learning rate and its schedule, mask schedule, sampling temperature, plan horizon,
    executed and sampling steps, demonstration noise, DAgger frequency. (A search over model
    size on FourRooms spent over 2 minutes an iteration on its largest trials, 2 cores.)"""
    trial.suggest_float("train.lr", 3e-4, 1e-2, log=True)
    trial.suggest_categorical("train.lr_schedule", ["cosine", "plateau"])
    trial.suggest_categorical("diffusion.schedule", SCHEDULES)
    trial.suggest_float("diffusion.temperature", 0.0, 1.0, step=0.25)
    real = plans(trial, most_sampling_steps=2)
    trial.suggest_categorical("train.dagger_every", [0, 1, 2, 4])
    # Rounded: Optuna's steps of 0.1 land on 0.30000000000000004.
    real["data.noise"] = round(trial.suggest_float("data.noise", 0.0, 0.5, step=0.1), 2)
    return real


# The grid of ``grid``: few enough points (48) to record every learning curve once.
GRID = {
    "train.lr": [1e-3, 2e-3, 4e-3, 8e-3],
    "model.hidden": [32, 64],
    "model.depth": [1, 3],
    "diffusion.exec_steps": [1, 2, 4],
}


def grid(trial: optuna.Trial) -> dict:
    """A discrete cut of ``default`` around the ``default`` preset, for benchmarks that
    record each point's learning curve once and replay searches over them
    (``bench/replay.py``): learning rate, width, depth and executed steps."""
    for key, values in GRID.items():
        trial.suggest_categorical(key, values)
    return {}


SPACES: dict[SpaceName, Callable[[optuna.Trial], dict]] = {
    "default": default,
    "wide": wide,
    "extended": extended,
    "control": control,
    "grid": grid,
}


def space(name: str) -> Callable[[optuna.Trial], dict]:
    if name not in SPACES:
        raise BadInput(f"unknown space {name!r}: use one of {', '.join(SPACES)}")
    return SPACES[name]


# How a configuration reads in each ``space.*`` coordinate: the inverse of the spaces above.
COORDINATES_OF: dict[str, Callable[[Config], float]] = {
    "space.log2_hidden": lambda c: math.log2(c.model.hidden),
    "space.log2_head_dim": lambda c: math.log2(c.model.hidden // c.model.heads),
    "space.log2_horizon": lambda c: math.log2(c.model.horizon),
    "space.log2_batch_size": lambda c: math.log2(c.train.batch_size),
    "space.log2_exec_steps": lambda c: math.log2(c.diffusion.exec_steps),
    "space.log2_sampling_steps": lambda c: math.log2(c.diffusion.sampling_steps),
    "space.log2_kilo_episodes": lambda c: math.log2(c.data.episodes / 1000),
}


def point_of(name: str, config: Config) -> dict | None:
    """The coordinates at which space ``name`` proposes ``config``, or None where the space
    cannot express it (a value outside its ranges, not a power of two, ...)."""
    fn = space(name)
    probe = optuna.create_study(sampler=optuna.samplers.RandomSampler(0)).ask()
    fn(probe)
    values, point = flat(config), {}
    for key, distribution in probe.distributions.items():
        value = COORDINATES_OF[key](config) if key in COORDINATES_OF else values[key]
        if not within(distribution, value):
            return None
        point[key] = int(value) if isinstance(distribution, IntDistribution) else value
    fixed = optuna.trial.FixedTrial(point)
    real = fn(fixed)
    if from_flat({**fixed.params, **real}, config) != config:
        return None
    return point


def within(distribution, value) -> bool:
    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(distribution, IntDistribution) and not float(value).is_integer():
        return False
    return distribution.low <= value <= distribution.high

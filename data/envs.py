"""Which MiniGrid environments the search supports, how to make them, and which seeds to use.

Only the reach-the-goal families are supported: their success is "terminated with reward > 0",
which the shortest-path expert in `data.expert` can always achieve.
"""

import difflib
import types
import typing
from typing import Literal

import gymnasium as gym
import minigrid  # noqa: F401  (importing registers the MiniGrid-* ids with gymnasium)
import numpy as np

from data.errors import BadInput
from data.view import grid_encoding, observation

FAMILIES = (
    "Empty",
    "FourRooms",
    "SimpleCrossing",
    "LavaCrossing",
    "LavaGap",
    "DistShift",
    "DoorKey",
    "MultiRoom",
)
EXAMPLE_ENV_ID = "MiniGrid-DoorKey-8x8-v0"

# Three sets of episodes, their env seeds in disjoint blocks of 2**31, so that no episode of one
# set can be an episode of another, whatever (seed, episodes) each side used:
#   training (demonstrations, DAgger): (seed * SEED_STRIDE + i) % HALF               [0, 2**31)
#   selection (eval/*: what ASHA judges and the search ranks): the same + HALF   [2**31, 2**32)
#   test (test/*: final figures only, never used to choose): the same + 2 * HALF [2**32, 3 * 2**31)
# For seed < HALF // SEED_STRIDE (= 2147) different seeds get disjoint blocks of env seeds;
# larger seeds wrap around and may share some env seeds with another seed's block (still never
# across two sets). Seeds apart, layouts can repeat: ````layouts`` tells when.
HALF = 2**31
SEED_STRIDE = 1_000_000
MAX_EPISODES = SEED_STRIDE


def supported_env_ids() -> list[str]:
    """Every registered MiniGrid id that belongs to one of FAMILIES, in registry order."""
    prefixes = tuple(f"MiniGrid-{family}" for family in FAMILIES)
    return [env_id for env_id in gym.registry if env_id.startswith(prefixes)]


def check_env_id(env_id: str) -> None:
    """Raise BadInput unless `env_id` is a registered id of a supported family."""
    if env_id in supported_env_ids():
        return
    reason = (
        "is not a registered gymnasium id"
        if env_id not in gym.registry
        else ("is not a reach-the-goal family this search supports")
    )
    close = difflib.get_close_matches(env_id, supported_env_ids(), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    raise BadInput(
        f"environment {env_id!r} {reason}; {hint}use a MiniGrid-<Family>-... id with Family "
        f"one of {', '.join(FAMILIES)} (for example {EXAMPLE_ENV_ID}; `envs` lists them all)"
    )


def make_env(env_id: str, render_mode: str | None = None, checked: bool = True) -> gym.Env:
    """`gym.make` for a supported id, observing through the fast view (data/view.py: the
    same arrays as MiniGrid's); raises BadInput for any other. ``checked=False`` leaves out
    gymnasium's passive checker (it inspects the first step's observation)."""
    check_env_id(env_id)
    env = gym.make(env_id, render_mode=render_mode, disable_env_checker=not checked)
    u = env.unwrapped
    # An instance attribute (this env only), bound as a method so that a deep copy of the env
    # observes itself, not the env it was copied from.
    u.gen_obs = types.MethodType(observation, u)
    return env


def observe_lazily(env: gym.Env):
    """Stop ``env`` making an observation at every step and return the function that makes
    one now. MiniGrid builds the agent's view in Python at every step (slicing and rotating
    the grid: over half a rollout's time, measured); a rollout that replans every few steps
    needs only the views it plans from. The env must be unchecked (``make_env(...,
    checked=False)``): its steps return None for the observation."""
    u = env.unwrapped
    observe = u.gen_obs
    u.gen_obs = lambda: None  # an instance attribute: this env only
    return observe


def _check_seed_args(seed: int, episodes: int) -> None:
    if seed < 0:
        raise BadInput(f"seed must be 0 or more, got {seed}; pass a non-negative seed")
    if not 1 <= episodes <= MAX_EPISODES:
        raise BadInput(
            f"episodes must be between 1 and {MAX_EPISODES}, got {episodes}; "
            "pass a count in that range"
        )


def _block(seed: int, episodes: int) -> np.ndarray:
    # Python ints: seed * SEED_STRIDE must not overflow before the modulo.
    start = (int(seed) * SEED_STRIDE) % HALF
    return (start + np.arange(episodes, dtype=np.int64)) % HALF


EpisodeSet = Literal["training", "selection", "test"]
EPISODE_SETS: tuple[str, ...] = typing.get_args(EpisodeSet)


def episode_seeds(which: EpisodeSet, seed: int, episodes: int) -> np.ndarray:
    """Env seeds of ``episodes`` episodes of one set (see above): ``training`` (demonstrations,
    DAgger), ``selection`` (``eval/*``) or ``test`` (``test/*``). Pass `int(s)` to env.reset:
    gymnasium rejects numpy integers as seeds."""
    _check_seed_args(seed, episodes)
    return _block(seed, episodes) + EPISODE_SETS.index(which) * HALF


def full_state(env: gym.Env) -> bytes:
    """The whole state of an episode: the full grid (every cell's object, colour and state),
    the agent's cell and direction, and what it carries. Just after a reset it is the
    episode's *layout*: two seeds with the same layout are the same episode."""
    u = env.unwrapped
    carrying = u.carrying.encode() if u.carrying is not None else (0, 0, 0)
    agent = np.array([*u.agent_pos, u.agent_dir, *carrying], dtype=np.int64)
    return agent.tobytes() + grid_encoding(u.grid).tobytes()


def layouts(env_id: str, env_seeds) -> list[bytes]:
    """The layout each seed resets to (about 0.2 ms a reset)."""
    env = make_env(env_id)
    found = []
    for env_seed in env_seeds:
        env.reset(seed=int(env_seed))
        found.append(full_state(env))
    env.close()
    return found

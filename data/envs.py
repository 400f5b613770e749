"""Which MiniGrid environments the search supports, how to make them, and which seeds to use.

Only the reach-the-goal families are supported: their success is "terminated with reward > 0",
which the shortest-path expert in `data.expert` can always achieve.
"""

import gymnasium as gym
import minigrid  # noqa: F401  (importing registers the MiniGrid-* ids with gymnasium)
import numpy as np

from data.errors import BadInput

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

# Env seeds are split into two disjoint halves of [0, 2**32), so that no evaluation episode can
# ever be a layout the policy was trained on, whatever (seed, episodes) either side used:
#   demonstrations: (seed * SEED_STRIDE + i) % HALF            -> [0, 2**31)
#   evaluation:     (seed * SEED_STRIDE + i) % HALF + HALF     -> [2**31, 2**32)
# For seed < HALF // SEED_STRIDE (= 2147) different seeds get disjoint blocks of env seeds;
# larger seeds wrap around and may share some env seeds with another seed's block (still never
# across the demonstration/evaluation boundary).
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
    raise BadInput(
        f"environment {env_id!r} {reason}; use a MiniGrid-<Family>-... id with Family one of "
        f"{', '.join(FAMILIES)} (for example {EXAMPLE_ENV_ID})"
    )


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """`gym.make` for a supported id; raises BadInput for any other."""
    check_env_id(env_id)
    return gym.make(env_id, render_mode=render_mode)


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


def demo_seeds(seed: int, episodes: int) -> np.ndarray:
    """Env seeds for demonstration episodes, all in [0, 2**31). Pass `int(s)` to env.reset:
    gymnasium rejects numpy integers as seeds."""
    _check_seed_args(seed, episodes)
    return _block(seed, episodes)


def eval_seeds(seed: int, episodes: int) -> np.ndarray:
    """Env seeds for evaluation episodes, all in [2**31, 2**32): never a demonstration seed.
    Pass `int(s)` to env.reset: gymnasium rejects numpy integers as seeds."""
    _check_seed_args(seed, episodes)
    return _block(seed, episodes) + HALF

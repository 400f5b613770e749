"""Which MiniGrid and BabyAI environments the search supports, who demonstrates each, how to
make them, and which seeds to use.

Four kinds of task are supported, all judged a success when the episode terminates with a
reward (MiniGrid's ``1 - 0.9 * steps / max_steps``):

* *reach the goal* (FAMILIES): the shortest-path expert (data/expert.py) or the explorer
  (data/explorer.py) demonstrates them; the mission never varies, but in LockedRoom, where it
  says which room holds the key and which door it opens (WORDED_GOALS: the policy reads it);
* *dodge* (DODGING): reach the goal while balls move about the room, where walking into one
  (or into a wall) ends the episode; an expert that plans around them afresh at every step
  (data/dodging.py) demonstrates them;
* *remember what was seen* (MEMORY): the object seen in the start room is to be matched at
  the end of a hallway, where it is out of view; an expert that looks at it first
  (data/matching.py) demonstrates them;
* *missions in words* (INSTRUCTED MiniGrid tasks and BabyAI's levels): a key in another room,
  an object to pick up or to put next to another, doors to open in order; the mission varies
  from episode to episode and the policy reads it (data/missions.py); minigrid's BabyAIBot
  demonstrates them (data/bot.py).

An id of these families whose expert succeeds in fewer than 99% of test episodes is not
supported (NOT_SOLVED, with the reason; docs/environments.md has the measured table).
"""

import contextlib
import difflib
import functools
import io
import types
import typing
from typing import Literal

import gymnasium as gym
import minigrid  # noqa: F401  (importing registers the MiniGrid-* and BabyAI-* ids)
import numpy as np

from data.bot import INSTRUCTIONS
from data.errors import BadInput
from data.unboxing import hides_keys
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
    "LockedRoom",
)
# Reach-the-goal families whose mission varies and tells the way, and how many words it has:
# LockedRoom's names the key's room and the locked door's colour ("get the red key from the
# blue room, unlock the red door and go to the goal"). The policy reads it; the experts plan
# as on any reach-the-goal task.
WORDED_GOALS = {"LockedRoom": 17}
MEMORY = "Memory"
DODGING = "Dynamic-Obstacles"  # reach the goal around balls that move at every step
INSTRUCTED = tuple(INSTRUCTIONS)  # MiniGrid tasks whose mission the bot can be told
BABYAI = "BabyAI"
EXAMPLE_ENV_ID = "MiniGrid-DoorKey-8x8-v0"
# Ids of the families above whose expert succeeds in fewer than 99% of test episodes.
NOT_SOLVED = {
    **dict.fromkeys(
        [
            "MiniGrid-ObstructedMaze-2Dlhb-v0",
            "MiniGrid-ObstructedMaze-1Q-v0",
            "MiniGrid-ObstructedMaze-2Q-v0",
        ],
        "in some layouts the ball that blocks a door overwrites the box with its key, which no"
        " expert can solve (the id's version 1 fixes it)",
    ),
    **dict.fromkeys(
        [
            "BabyAI-PutNextS5N2Carrying-v0",
            "BabyAI-PutNextS6N3Carrying-v0",
            "BabyAI-PutNextS7N4Carrying-v0",
        ],
        "the agent starts carrying an object, which the bot cannot plan from",
    ),
    **dict.fromkeys(
        [
            "BabyAI-OpenDoorsOrderN2Debug-v0",
            "BabyAI-OpenDoorsOrderN4Debug-v0",
            "BabyAI-PickupDistDebug-v0",
        ],
        "a wrong door or object ends the episode (debug levels), and the bot tries them",
    ),
    **dict.fromkeys(
        ["BabyAI-UnlockToUnlock-v0", "BabyAI-GoToImpUnlock-v0", "BabyAI-Unlock-v0"],
        "the bot replans forever in some episodes",
    ),
    "BabyAI-SynthS5R2-v0": "the bot fails to drop an object in some episodes",
}
# Words a task's policy reads of its mission (data/missions.py): chained instructions ("... then
# ...", "... after you ...") run to a few dozen words, single ones to a dozen.
MISSION_WORDS, CHAINED_MISSION_WORDS = 16, 48
CHAINED = ("Seq", "Boss", "MoveTwoAcross")


def family_of(env_id: str) -> str | None:
    """The supported family ``env_id`` belongs to (the longest family name its name starts
    with: UnlockPickup, not Unlock), BABYAI for BabyAI's levels, or None."""
    if env_id.startswith(f"{BABYAI}-"):
        return BABYAI
    name = env_id.removeprefix("MiniGrid-")
    matches = [f for f in (*FAMILIES, DODGING, MEMORY, *INSTRUCTED) if name.startswith(f)]
    return max(matches, key=len) if env_id.startswith("MiniGrid-") and matches else None


def instructed(env_id: str) -> bool:
    """Whether ``env_id``'s mission is an instruction in words that varies (BabyAIBot
    demonstrates it) rather than "reach the goal"."""
    return family_of(env_id) in (*INSTRUCTED, BABYAI)


def mission_words(env_id: str) -> int:
    """How many words of its mission a policy on ``env_id`` reads: none where the mission
    never varies."""
    if family_of(env_id) in WORDED_GOALS:
        return WORDED_GOALS[family_of(env_id)]
    if not instructed(env_id):
        return 0
    return CHAINED_MISSION_WORDS if any(c in env_id for c in CHAINED) else MISSION_WORDS


@functools.cache
def supported_env_ids() -> tuple[str, ...]:
    """Every registered id of a supported family that its expert solves, in registry order."""
    return tuple(
        env_id
        for env_id in gym.registry
        if family_of(env_id) is not None and env_id not in NOT_SOLVED
    )


def by_family() -> dict[str, tuple[str, list[str]]]:
    """Family -> (what kind of task it is and who demonstrates it, its supported ids): the
    reach-the-goal families, Dynamic-Obstacles, Memory, MiniGrid's missions in words, then
    BabyAI's levels."""
    grouped: dict[str, tuple[str, list[str]]] = {}
    for env_id in supported_env_ids():
        family = family_of(env_id)
        if family == BABYAI:
            expert = "BabyAI's levels, missions in words; expert: minigrid's BabyAIBot"
        elif family in INSTRUCTED:
            expert = "mission in words; expert: BabyAIBot, told the task's instruction"
        elif family == DODGING:
            expert = "reach the goal, never into a moving ball; expert: plans around them"
        elif family == MEMORY:
            expert = "match the object seen at the start; expert: looks at it, then matches it"
        elif family in WORDED_GOALS:
            expert = "reach the goal, the way the mission says; expert: shortest path (or explorer)"
        else:
            expert = "reach the goal; expert: shortest path (or the explorer)"
        grouped.setdefault(family, (expert, []))[1].append(env_id)
    for family, (expert, ids) in grouped.items():
        if any(hides_keys(i) for i in ids):
            expert += "; where keys hide in boxes, it opens the boxes the agent sees first"
            grouped[family] = expert, ids
    order = [*FAMILIES, DODGING, MEMORY, *INSTRUCTED, BABYAI]
    return dict(sorted(grouped.items(), key=lambda item: order.index(item[0])))


def reach_the_goal_ids() -> tuple[str, ...]:
    """The supported ids whose task is to reach the goal (FAMILIES)."""
    return tuple(i for i in supported_env_ids() if family_of(i) in FAMILIES)


def check_env_id(env_id: str) -> None:
    """Raise BadInput unless `env_id` is a supported id."""
    if env_id in supported_env_ids():
        return
    if env_id in NOT_SOLVED:
        reason = f"is not supported: {NOT_SOLVED[env_id]} (docs/environments.md)"
    elif env_id not in gym.registry:
        reason = "is not a registered gymnasium id"
    else:
        reason = "is not of a family this search supports"
    close = difflib.get_close_matches(env_id, supported_env_ids(), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    raise BadInput(
        f"environment {env_id!r} {reason}; {hint}use a supported id (for example "
        f"{EXAMPLE_ENV_ID} or BabyAI-GoToLocal-v0; `envs` lists them all by family)"
    )


class QuietReset(gym.Wrapper):
    """BabyAI's level generators print a line each time they reject a sampled layout while
    they reset; a user should not see them."""

    def reset(self, **kwargs):
        with contextlib.redirect_stdout(io.StringIO()):
            return self.env.reset(**kwargs)


def make_env(env_id: str, render_mode: str | None = None, checked: bool = True) -> gym.Env:
    """`gym.make` for a supported id, observing through the fast view (data/view.py: the
    same arrays as MiniGrid's); raises BadInput for any other. ``checked=False`` leaves out
    gymnasium's passive checker (it inspects the first step's observation)."""
    check_env_id(env_id)
    return build_env(env_id, render_mode, checked)


def build_env(env_id: str, render_mode: str | None = None, checked: bool = True) -> gym.Env:
    """``make_env`` of any registered id, supported or not (bench/experts.py measures the
    experts on the ones that are not)."""
    env = gym.make(env_id, render_mode=render_mode, disable_env_checker=not checked)
    u = env.unwrapped
    # An instance attribute (this env only), bound as a method so that a deep copy of the env
    # observes itself, not the env it was copied from.
    u.gen_obs = types.MethodType(observation, u)
    return QuietReset(env) if family_of(env_id) == BABYAI else env


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
    the agent's cell and direction, what it carries, and its mission. Just after a reset it is
    the episode's *layout*: two seeds with the same layout are the same episode."""
    u = env.unwrapped
    carrying = u.carrying.encode() if u.carrying is not None else (0, 0, 0)
    agent = np.array([*u.agent_pos, u.agent_dir, *carrying], dtype=np.int64)
    return agent.tobytes() + grid_encoding(u.grid).tobytes() + u.mission.encode()


def layouts(env_id: str, env_seeds) -> list[bytes]:
    """The layout each seed resets to (about 0.2 ms a reset)."""
    env = make_env(env_id)
    found = []
    for env_seed in env_seeds:
        env.reset(seed=int(env_seed))
        found.append(full_state(env))
    env.close()
    return found

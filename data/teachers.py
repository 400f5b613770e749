"""Who labels a state with the plan to imitate: the demonstrations and DAgger's relabelling
share this, one teacher an episode.

* ``shortest``: the breadth-first expert on the whole grid (data/expert.py), through a plan
  cache shared by all episodes; reach-the-goal tasks only;
* ``explorer``: an expert that acts only on what the agent has seen. On reach-the-goal tasks
  the explorer of data/explorer.py, which follows the episode's views, so it must see every
  step's observation; on missions in words minigrid's BabyAIBot (data/bot.py), which keeps
  its own mask of what the agent has seen (where keys hide in boxes, the bot that opens the
  boxes the agent has seen first, data/unboxing.py); on Memory the expert that looks at the start
  room's object before it goes to the match (data/matching.py);
* on Dynamic-Obstacles, whichever is asked, the expert that plans around the obstacles where
  they stand, afresh at every step (data/dodging.py), named ``shortest``;
* ``auto``: the task's own expert, ``shortest`` where it can plan (reach the goal), the bot
  where the mission is in words, the matching expert on Memory.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence

from data import dodging, matching
from data.blocks import Progress, in_blocks
from data.bot import LOOK_AHEAD, Bot, Following, episode_length, instruct
from data.envs import BABYAI, DODGING, MEMORY, family_of, full_state, instructed, make_env
from data.errors import BadInput
from data.expert import PlanCache, shortest_plan
from data.explorer import Explorer
from data.labels import Expert
from data.unboxing import Unboxing, hides_keys
from data.view import observation

# Tasks with an expert of their own (data/matching.py, data/dodging.py).
OWN = {MEMORY: matching.Matching, DODGING: dodging.Dodging}
# Tasks the whole-grid expert cannot serve, and why.
NOT_SHORTEST = {
    MEMORY: "its expert must see the start room's object before it goes to the match",
    BABYAI: "it has a mission in words, which minigrid's BabyAIBot follows",
}


def expert_for(env_id: str, expert: Expert) -> Expert:
    """The expert that labels ``env_id`` when ``expert`` is asked for (``auto`` resolved);
    BadInput where it cannot. Among moving obstacles the one expert there serves both names
    (it plans on the room, which the agent sees nearly whole): ``shortest``."""
    family = family_of(env_id)
    why = NOT_SHORTEST.get(BABYAI if instructed(env_id) else family)
    if family == DODGING or (expert == "auto" and not why):
        return "shortest"
    if expert == "shortest" and why:
        raise BadInput(
            f"data.expert=shortest cannot label {env_id}: {why}; use data.expert=auto or explorer"
        )
    return "explorer" if expert == "auto" else expert


class Shortest:
    def __init__(self, cache: PlanCache):
        self.cache = cache

    def label(self, env, obs) -> tuple[int, ...] | None:
        return self.cache.plan(env, full_state(env))

    def moved(self, plan, action: int, env) -> None:
        self.cache.followed(plan, action, full_state(env))


class Exploring:
    def __init__(self, env):
        self.explorer = Explorer(env)

    def label(self, env, obs) -> tuple[int, ...] | None:
        self.explorer.observe(env, obs["image"])
        plan = self.explorer.plan(env)
        return tuple(plan) if plan else None

    def moved(self, plan, action: int, env) -> None:
        """The next label comes from the next view."""


def told(env) -> object:
    """The environment of a MiniGrid task with a mission in words, given the instruction the
    bot reads (BabyAI's levels have their own)."""
    family = family_of(env.spec.id)
    if family != BABYAI:
        instruct(env, family)
    return env


def bot_for(env_id: str):
    """The bot that follows ``env_id``'s mission: minigrid's, or where keys hide in boxes the
    bot that opens them first (data/unboxing.py)."""
    return Unboxing if hides_keys(env_id) else Bot


def teachers(expert: Expert, env_id: str, look_ahead: int = LOOK_AHEAD):
    """A function env (just reset) -> the teacher of one episode in it (``shortest`` share
    their cache; the bot plays its plans ``look_ahead`` actions ahead)."""
    expert = expert_for(env_id, expert)
    if instructed(env_id):
        return lambda env: Following(told(env), look_ahead, bot_for(env_id))
    if family_of(env_id) in OWN:
        return OWN[family_of(env_id)]
    if expert == "explorer":
        return Exploring
    cache = PlanCache()
    return lambda env: Shortest(cache)


def expert_length(env) -> int:
    """How many actions the task's own expert takes from a just-reset ``env`` to the end of the
    episode, the yardstick of a policy's episode length (0 where it cannot finish)."""
    if instructed(env.spec.id):
        return episode_length(told(env), bot_for(env.spec.id))
    if family_of(env.spec.id) in OWN:
        return played_out(env, OWN[family_of(env.spec.id)])
    return len(shortest_plan(env))


def played_out(env, teacher_of) -> int:
    """How many actions the teacher ``teacher_of`` makes for the episode takes to end it from
    here, played on a copy, replanning from each view (0 where it does not succeed)."""
    u = copy.deepcopy(env.unwrapped)
    teacher = teacher_of(u)
    for length in range(1, u.max_steps - u.step_count + 1):
        plan = teacher.label(u, observation(u))
        if not plan:
            return 0
        _, reward, terminated, truncated, _ = u.step(plan[0])
        if terminated or truncated:
            return length if reward > 0 else 0
    return 0


Played = tuple[int, list[int]]  # an episode: its env seed and the actions taken in it
LABEL_BLOCK = 10  # episodes one process labels at a time


def label_episodes(
    env_id: str,
    expert: Expert,
    played: Sequence[Played],
    look_ahead: int = LOOK_AHEAD,
    jobs: int = 1,
    log: Callable[[str], None] | None = None,
) -> list[list[tuple[int, ...] | None]]:
    """The expert's plan from every state of each ``played`` episode, before each action (None
    where it has none), by ``jobs`` processes; ``log`` hears how far it is. The labels are
    those of the same episode replayed in one process, whoever labels them."""
    expert = expert_for(env_id, expert)
    if expert == "shortest":
        # Its plans come from a cache shared by the episodes (states repeat across them): one
        # block, here, labels them in a fraction of the time the bot or the explorer takes.
        blocks, jobs = [played], 1
    else:
        blocks = [played[i : i + LABEL_BLOCK] for i in range(0, len(played), LABEL_BLOCK)]
    work = functools.partial(expert_plans, env_id, expert, look_ahead)
    progress = Progress(f"relabelling {env_id}", len(played), log, "episodes labelled", False)
    return [plans for block in in_blocks(work, blocks, jobs, progress) for plans in block]


def expert_plans(
    env_id: str, expert: Expert, look_ahead: int, played: Sequence[Played]
) -> list[list[tuple[int, ...] | None]]:
    """``label_episodes`` of one block, in this process: each episode replayed from its seed,
    the teacher told of every action as it was taken."""
    env = make_env(env_id, checked=False)
    teacher_in = teachers(expert, env_id, look_ahead)
    labelled = []
    for env_seed, actions in played:
        obs, _ = env.reset(seed=int(env_seed))
        teacher = teacher_in(env)
        plans = []
        for action in actions:
            plan = teacher.label(env, obs)
            plans.append(plan)
            obs, _, terminated, truncated, _ = env.step(action)
            if not (terminated or truncated):
                teacher.moved(plan, action, env)
        labelled.append(plans)
    env.close()
    return labelled

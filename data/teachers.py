"""Who labels a state with the plan to imitate: the demonstrations and DAgger's relabelling
share this, one teacher an episode.

* ``shortest``: the breadth-first expert on the whole grid (data/expert.py), through a plan
  cache shared by all episodes; reach-the-goal tasks only;
* ``explorer``: an expert that acts only on what the agent has seen. On reach-the-goal tasks
  the explorer of data/explorer.py, which follows the episode's views, so it must see every
  step's observation; on missions in words minigrid's BabyAIBot (data/bot.py), which keeps
  its own mask of what the agent has seen;
* ``auto``: the task's own expert, ``shortest`` where it can plan (reach the goal), the bot
  where the mission is in words.
"""

from __future__ import annotations

from data.bot import Following, episode_length, instruct
from data.envs import BABYAI, family_of, full_state, instructed
from data.errors import BadInput
from data.expert import PlanCache, shortest_plan
from data.explorer import Explorer
from data.labels import Expert


def expert_for(env_id: str, expert: Expert) -> Expert:
    """The expert that labels ``env_id`` when ``expert`` is asked for (``auto`` resolved);
    BadInput where it cannot."""
    if not instructed(env_id):
        return "shortest" if expert == "auto" else expert
    if expert == "shortest":
        raise BadInput(
            f"data.expert=shortest plans on the whole grid of reach-the-goal tasks; {env_id} "
            "has a mission in words, which minigrid's BabyAIBot follows: use data.expert=auto "
            "or explorer"
        )
    return "explorer"


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


def teachers(expert: Expert, env_id: str):
    """A function env (just reset) -> the teacher of one episode in it (``shortest`` share
    their cache)."""
    expert = expert_for(env_id, expert)
    if instructed(env_id):
        return lambda env: Following(told(env))
    if expert == "explorer":
        return Exploring
    cache = PlanCache()
    return lambda env: Shortest(cache)


def expert_length(env) -> int:
    """How many actions the task's own expert takes from a just-reset ``env`` to the end of the
    episode, the yardstick of a policy's episode length (0 where it cannot finish)."""
    if instructed(env.spec.id):
        return episode_length(told(env))
    return len(shortest_plan(env))

"""Who labels a state with the plan to imitate: the demonstrations and DAgger's relabelling
share this, one teacher an episode.

* ``shortest``: the breadth-first expert on the whole grid (data/expert.py), through a plan
  cache shared by all episodes;
* ``explorer``: the expert that acts only on what the agent has seen (data/explorer.py); it
  follows the episode's views, so it must see every step's observation.
"""

from __future__ import annotations

from data.envs import full_state
from data.expert import PlanCache
from data.explorer import Explorer
from data.labels import Expert


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


def teachers(expert: Expert):
    """A function env -> the teacher of one episode in it (``shortest`` share their cache)."""
    if expert == "explorer":
        return Exploring
    cache = PlanCache()
    return lambda env: Shortest(cache)

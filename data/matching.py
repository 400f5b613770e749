"""The expert of MiniGrid's Memory tasks: look at the object in the start room, then go to
its match.

An object (a key or a ball) lies in the start room; a hallway leads to a split with an object
on each side. Stepping beside the one that matches the start room's ends the episode with a
reward, beside the other without one (minigrid/envs/memory.py). The agent starts facing the
hallway, so the start room's object is behind it unless it starts beside it: an expert that
went straight to the match would act on what the agent never saw, and a policy could not
imitate it.

This expert keeps the map of what the agent has seen (data/known_map.py, the same one the
explorer and a policy with ``model.map`` keep) and asks it one thing: has the start room's
object been seen? While not, its plan is the shortest way to stand facing that object (the
object is in view before then: it replans after every step, as the explorer does). Once
seen, its plan is the shortest way onto the cell beside the match, the other side's cell
never entered. The way itself it plans on the grid's walls, which are the same in every
episode of a size (the Random sizes vary the hallway's length, which lies ahead in view), and
so is the route up to the split: which way to turn there, the one choice the task asks, it
takes from the object it saw.
"""

from __future__ import annotations

from data.expert import plan_around
from data.known_map import UNSEEN, KnownMap

OBJECTS = ("key", "ball")


def start_object(u) -> tuple[int, int]:
    """The cell of the start room's object: of the task's three objects, the one farthest left
    (the start room lies left of the hallway, the split right of it)."""
    cells = [
        (x, y)
        for x in range(u.grid.width)
        for y in range(u.grid.height)
        if (obj := u.grid.get(x, y)) is not None and obj.type in OBJECTS
    ]
    return min(cells)


class Matching:
    """The expert as the teacher of one episode: what the agent has seen, and the plan that
    follows from it (``label``, from each step's view)."""

    def __init__(self, env):
        u = env.unwrapped
        self.known = KnownMap.of(env)
        self.start_object = start_object(u)
        self.sides = (tuple(u.success_pos), tuple(u.failure_pos))

    def label(self, env, obs) -> tuple[int, ...] | None:
        u = env.unwrapped
        self.known.observe(obs["image"], u.agent_dir, u.agent_pos)
        match, other = self.sides
        if self.known.cell(*self.start_object)[0] == UNSEEN:
            plan = plan_around(u, self.start_object, avoid=[match, other])
        else:
            plan = plan_around(u, match, avoid=[other])
        return tuple(plan) if plan else None

    def moved(self, plan, action: int, env) -> None:
        """The next label comes from the next view."""

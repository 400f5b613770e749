"""An expert that acts only on what the agent has seen.

The shortest-path expert (data/expert.py) plans on the whole grid, so from one egocentric view
a policy often cannot tell what it will do: the goal may be in a room the agent has never
looked into. This expert keeps a map of the cells the agent's views have shown (the
observation's own visibility: a cell hidden behind a wall stays unknown) and plans on that
map alone, with the same search and the same rules as the shortest-path expert:

* while the goal, or a way to it (a key, a door), is unknown, it walks to the nearest place
  from which an unknown cell lies straight ahead (that cell is then in view: it is seen on
  arrival), unknown cells counting as walls on the way;
* once the known map holds a way onto the goal, it takes the shortest one.

Its plan changes as the map grows, so it replans after every step; each demonstration step is
labelled with the plan it had there. Where nothing it knows leads on (its map holds no way to
the goal and no unknown cell it can reach) it has no plan, as the shortest-path expert has
none where the goal cannot be reached.
"""

from __future__ import annotations

from types import SimpleNamespace

from minigrid.core.constants import OBJECT_TO_IDX
from minigrid.core.grid import Grid
from minigrid.core.world_object import Goal, Wall, WorldObj

from data.expert import _Layout, plan_on

UNSEEN, EMPTY = OBJECT_TO_IDX["unseen"], OBJECT_TO_IDX["empty"]


class Explorer:
    """What one agent has seen in one episode, and the plan that follows from it."""

    def __init__(self, env):
        u = env.unwrapped
        self.width, self.height = u.grid.width, u.grid.height
        self.known: dict[tuple[int, int], tuple[int, int, int]] = {}  # cell -> its encoding

    def observe(self, env, image) -> None:
        """Add what the agent's view ``image`` (obs["image"], 7x7x3) shows from where it is."""
        u = env.unwrapped
        top_x, top_y, bottom_x, bottom_y = u.get_view_exts()
        for x in range(max(top_x, 0), min(bottom_x, self.width)):
            for y in range(max(top_y, 0), min(bottom_y, self.height)):
                view = u.relative_coords(x, y)
                if view is not None and image[view][0] != UNSEEN:
                    self.known[(x, y)] = tuple(int(v) for v in image[view])
        self.known[tuple(int(v) for v in u.agent_pos)] = (EMPTY, 0, 0)  # it stands there

    def plan(self, env) -> list[int] | None:
        """The shortest way onto the goal the agent knows of, else to the nearest unknown
        cell; None when neither exists."""
        for unknown in (Wall, Goal):  # first: is there a known way? then: explore
            try:
                return plan_on(_Layout(self.map(env, unknown)))
            except RuntimeError:
                continue
        return None

    def map(self, env, unknown: type[WorldObj]) -> SimpleNamespace:
        """The agent's map as an env the search reads: known cells as seen, unknown ones as
        ``unknown`` (walls to plan through known cells only, goals to plan toward them)."""
        grid = Grid(self.width, self.height)
        for x in range(self.width):
            for y in range(self.height):
                seen = self.known.get((x, y))
                if seen is None:
                    grid.set(x, y, unknown())
                elif seen[0] != EMPTY:
                    grid.set(x, y, WorldObj.decode(*seen))
        u = env.unwrapped
        return SimpleNamespace(
            grid=grid, carrying=u.carrying, agent_pos=u.agent_pos, agent_dir=u.agent_dir
        )

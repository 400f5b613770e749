"""An expert that acts only on what the agent has seen.

The shortest-path expert (data/expert.py) plans on the whole grid, so from one egocentric view
a policy often cannot tell what it will do: the goal may be in a room the agent has never
looked into. This expert keeps the map of the cells the agent's views have shown
(data/known_map.py: the observation's own visibility, a cell hidden behind a wall stays
unknown; a policy with ``model.map`` reads the same map) and plans on that map alone, with
the same search and the same rules as the shortest-path expert:

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

from minigrid.core.grid import Grid
from minigrid.core.world_object import Goal, Wall, WorldObj

from data.expert import _Layout, plan_on
from data.known_map import EMPTY, UNSEEN, KnownMap


class Explorer:
    """What one agent has seen in one episode, and the plan that follows from it."""

    def __init__(self, env):
        u = env.unwrapped
        self.width, self.height = u.grid.width, u.grid.height
        self.known = KnownMap.of(env)

    def observe(self, env, image) -> None:
        """Add what the agent's view ``image`` (obs["image"], 7x7x3) shows from where it is."""
        u = env.unwrapped
        self.known.observe(image, u.agent_dir, u.agent_pos)

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
        ``unknown`` (walls to plan through known cells only, goals to plan toward them). The
        search only reads the cells' objects, so equal cells share one object."""
        stand_in, objects = unknown(), {}

        def decoded(cell: tuple[int, ...]) -> WorldObj | None:
            if cell[0] == UNSEEN:
                return stand_in
            if cell[0] == EMPTY:
                return None
            if cell not in objects:
                objects[cell] = WorldObj.decode(*cell)
            return objects[cell]

        grid = Grid(self.width, self.height)
        rows = self.known.area(self.width, self.height).transpose(1, 0, 2)  # [y, x], as grid.grid
        grid.grid = [decoded(tuple(cell)) for cell in rows.reshape(-1, 3).tolist()]
        u = env.unwrapped
        return SimpleNamespace(
            grid=grid, carrying=u.carrying, agent_pos=u.agent_pos, agent_dir=u.agent_dir
        )

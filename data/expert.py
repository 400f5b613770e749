"""The shortest-path expert: breadth-first search over MiniGrid's full state.

The search replays MiniGrid's own step() rules (minigrid_env.py, core/world_object.py) on a
private copy of the layout, so it never touches the environment it plans for:

* forward moves into an empty cell, floor, goal or open door; walls, closed or locked doors
  and objects block it (the agent stays put); stepping onto the goal ends the episode with a
  reward, stepping into lava ends it without one, so lava is never entered;
* pickup takes the object in front when the hands are empty, which empties that cell;
* toggle opens a closed door, and opens a locked door only while carrying a key of its colour.

A state is (cell, direction, what is carried, which doors are open). Because the search stops
at the first way onto the goal and explores states in order of distance, the plan it returns
has the fewest actions; among equally short plans it prefers lower action ids, so it is
deterministic.
"""

from collections import deque
from functools import cache
from types import SimpleNamespace

from minigrid.core.actions import Actions  # the action vocabulary: left 0 ... done 6
from minigrid.core.constants import DIR_TO_VEC
from minigrid.core.grid import Grid
from minigrid.core.world_object import Goal, Lava, Wall

LEFT, RIGHT, FORWARD = int(Actions.left), int(Actions.right), int(Actions.forward)
PICKUP, TOGGLE = int(Actions.pickup), int(Actions.toggle)

# What a cell of the layout is, as far as moving through it goes.
FREE, GOAL, LAVA, WALL, DOOR, ITEM = range(6)
_KIND_OF_TYPE = {"floor": FREE, "goal": GOAL, "lava": LAVA, "wall": WALL, "door": DOOR}
_PICKABLE_TYPES = ("key", "ball")

NOTHING = -1  # "carrying nothing"; otherwise the index of the carried item


class _Layout:
    """The parts of a freshly reset environment that the search needs, copied out of it: its
    ``grid``, ``carrying``, ``agent_pos`` and ``agent_dir`` (an env, or what an agent knows of
    one, data/explorer.py)."""

    def __init__(self, env):
        grid = env.grid
        self.width, self.height = grid.width, grid.height
        self.kind = []  # per flat cell index y * width + x
        self.index = []  # door or item number of the cell, else -1
        self.door_color, self.door_locked = [], []
        self.item_type, self.item_color = [], []
        opened = 0
        for y in range(self.height):
            for x in range(self.width):
                obj = grid.get(x, y)
                number = -1
                if obj is None:
                    kind = FREE
                elif obj.type in _PICKABLE_TYPES:
                    kind, number = ITEM, len(self.item_type)
                    self.item_type.append(obj.type)
                    self.item_color.append(obj.color)
                elif obj.type in _KIND_OF_TYPE:
                    kind = _KIND_OF_TYPE[obj.type]
                    if kind == DOOR:
                        number = len(self.door_color)
                        self.door_color.append(obj.color)
                        self.door_locked.append(bool(obj.is_locked))
                        if obj.is_open:
                            opened |= 1 << number
                else:
                    # Boxes (toggling one swaps in its contents) and agent-made objects do not
                    # occur in the supported families; refuse rather than plan wrongly.
                    raise ValueError(f"shortest_plan does not model {obj.type!r} cells")
                self.kind.append(kind)
                self.index.append(number)

        self.carried = NOTHING
        if env.carrying is not None:
            # Held from the start: an item with no cell of its own.
            self.carried = len(self.item_type)
            self.item_type.append(env.carrying.type)
            self.item_color.append(env.carrying.color)
        if len(self.item_type) > 1:
            # With a single object, holding it never gets in the way, so dropping it is never
            # useful (see shortest_plan). With several, the plan might need to drop one to pick
            # up another, and object positions would have to be part of the state.
            raise ValueError("shortest_plan models at most one pickable object per layout")

        x0, y0 = (int(v) for v in env.agent_pos)
        self.start = (y0 * self.width + x0, int(env.agent_dir), self.carried, opened)
        self.front = _front_table(self.width, self.height)


@cache
def _front_table(width: int, height: int) -> tuple[tuple[int, ...], ...]:
    """front[cell][direction]: the flat index of the cell ahead, or -1 off the grid. The same
    for every layout of one size: made once per size, not once per layout."""
    front = []
    for y in range(height):
        for x in range(width):
            ahead = []
            for dx, dy in DIR_TO_VEC:
                fx, fy = x + int(dx), y + int(dy)
                inside = 0 <= fx < width and 0 <= fy < height
                ahead.append(fy * width + fx if inside else -1)
            front.append(tuple(ahead))
    return tuple(front)


def shortest_plan(env) -> list[int]:
    """The fewest actions that take a just-reset env (wrapped or not) onto its goal.

    Never enters lava and never changes the environment. Drop and done are never part of the
    plan: done does nothing in these families, and drop only puts the single object back on
    the floor, which can block a cell but never opens one (toggling a locked door needs the key
    in hand). Closing an open door is never tried either: a closed door only removes a way
    through, so any plan that closes one is matched by a no-longer plan that leaves it open.
    Raises RuntimeError if the goal cannot be reached.
    """
    return plan_on(_Layout(env.unwrapped))


def plan_on(layout: _Layout) -> list[int]:
    """Breadth-first search over the states of ``layout`` (see ``shortest_plan``)."""
    kind, index, front = layout.kind, layout.index, layout.front

    parent = {layout.start: None}  # state -> (previous state, action taken there)
    queue = deque([layout.start])
    while queue:
        state = queue.popleft()
        cell, direction, carried, opened = state
        ahead = front[cell][direction]
        ahead_kind = kind[ahead] if ahead >= 0 else WALL
        ahead_index = index[ahead] if ahead >= 0 else -1

        if ahead_kind == GOAL:
            # Forward ends the episode with a reward; nothing shorter is still in the queue.
            return _actions_to(state, parent) + [FORWARD]

        successors = [
            (LEFT, (cell, (direction - 1) % 4, carried, opened)),
            (RIGHT, (cell, (direction + 1) % 4, carried, opened)),
        ]
        walkable = (
            ahead_kind == FREE
            or (ahead_kind == DOOR and opened >> ahead_index & 1)
            or (ahead_kind == ITEM and carried == ahead_index)  # picked up: the cell is empty
        )
        if walkable:
            successors.append((FORWARD, (ahead, direction, carried, opened)))
        if ahead_kind == ITEM and carried == NOTHING:
            successors.append((PICKUP, (cell, direction, ahead_index, opened)))
        closed_door = ahead_kind == DOOR and not opened >> ahead_index & 1
        if closed_door and _can_open(layout, ahead_index, carried):
            successors.append((TOGGLE, (cell, direction, carried, opened | 1 << ahead_index)))

        for action, following in successors:
            if following not in parent:
                parent[following] = (state, action)
                queue.append(following)

    raise RuntimeError("no sequence of actions reaches the goal from this layout")


def plan_around(u, target: tuple[int, int], avoid=()) -> list[int] | None:
    """The fewest turns and steps that take the agent of the unwrapped env ``u`` onto the
    cell ``target`` (or to face it, where an object stands there), never onto a cell of
    ``avoid``, every object on the way standing as a wall: for the tasks whose objects are
    not there to be carried (the Memory task's, the moving obstacles). None where there is
    no way."""
    return plan_to(u, [target], avoid)


def plan_to(u, targets, avoid=(), doors: bool = False, cleared=()) -> list[int] | None:
    """``plan_around`` to the nearest of ``targets``; with ``doors``, through the doors the
    agent can open with empty hands (closed, not locked), every other object a wall but on
    the cells ``cleared``."""
    if not targets:
        return None  # without a goal the search would visit every state to say so
    grid = Grid(u.grid.width, u.grid.height)
    wall = Wall()
    grid.grid = [_planned_as(obj, doors, wall) for obj in u.grid.grid]
    for cell in cleared:
        grid.set(*cell, None)
    for cell in avoid:
        grid.set(*cell, Lava())
    for cell in targets:
        grid.set(*cell, Goal())
    me = SimpleNamespace(grid=grid, carrying=None, agent_pos=u.agent_pos, agent_dir=u.agent_dir)
    try:
        return plan_on(_Layout(me))
    except RuntimeError:
        return None


def _planned_as(obj, doors: bool, wall: Wall):
    """A cell as ``plan_to`` plans on it: empty or the goal free, a door itself where doors
    count, anything else ``wall``."""
    if obj is None or obj.type == "goal":
        return None
    if doors and obj.type == "door":
        return obj
    return wall


def _can_open(layout: _Layout, door: int, carried: int) -> bool:
    if not layout.door_locked[door]:
        return True
    return (
        carried != NOTHING
        and layout.item_type[carried] == "key"
        and layout.item_color[carried] == layout.door_color[door]
    )


def _actions_to(state, parent) -> list[int]:
    actions = []
    while parent[state] is not None:
        state, action = parent[state]
        actions.append(action)
    actions.reverse()
    return actions


class PlanCache:
    """The expert's plans from every state of many trajectories, with as few searches as
    the plans allow. A shortest plan's tail is the shortest plan from the state its first
    action leads to, and the same one this search returns (a lexicographically smaller one
    from there, behind the same first action, would be smaller from here too); a state seen
    before, by any trajectory, has its plan already. DAgger labels every state a policy acts
    in, and a wandering policy comes back to the same states again and again."""

    def __init__(self):
        self.known: dict[bytes, tuple[int, ...] | None] = {}

    def plan(self, env, state: bytes) -> tuple[int, ...] | None:
        """The plan from ``env``, whose full state is ``state``; None where the goal cannot
        be reached from it."""
        if state not in self.known:
            try:
                self.known[state] = tuple(shortest_plan(env))
            except RuntimeError:
                self.known[state] = None
        return self.known[state]

    def followed(self, plan: tuple[int, ...] | None, action: int, state: bytes) -> None:
        """The policy took ``action`` where the expert's plan was ``plan``, and reached
        ``state``: if that was the plan's first action, the rest is the plan from there."""
        if plan and action == plan[0] and len(plan) > 1:
            self.known.setdefault(state, plan[1:])

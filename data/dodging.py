"""The expert of MiniGrid's Dynamic-Obstacles tasks: the shortest way to the goal around the
obstacles where they stand now, planned afresh at every step.

Balls move one cell at random at every step, before the agent's move (minigrid/envs/
dynamicobstacles.py); walking into a ball or a wall ends the episode with reward -1, but only
when the cell was taken before the balls moved: a ball that moves into the cell ahead just
blocks the step. So a forward step into a cell free now is always safe, and the expert never
takes another: it plans around the balls where they stand, as walls, and takes the plan's
first action. Where the balls close every way it turns on the spot until one opens.

Its plan past the first action is a guess (the balls will have moved), so nothing of it is
kept: the next state is planned afresh. The agent sees the whole room in these tasks but for
the cells behind it; the expert plans on the whole grid, as the shortest-path expert does on
the other reach-the-goal tasks.
"""

from __future__ import annotations

from data.expert import LEFT, plan_around


def goal_cell(u) -> tuple[int, int]:
    width = u.grid.width
    at = next(i for i, obj in enumerate(u.grid.grid) if obj is not None and obj.type == "goal")
    return at % width, at // width


class Dodging:
    """The expert as the teacher of one episode: its plan from each state (``label``)."""

    def __init__(self, env):
        self.goal = goal_cell(env.unwrapped)

    def label(self, env, obs) -> tuple[int, ...]:
        plan = plan_around(env.unwrapped, self.goal)
        return tuple(plan) if plan else (LEFT,)  # every way closed: wait, turning

    def moved(self, plan, action: int, env) -> None:
        """The balls have moved: the next label is planned afresh."""

"""The map of what the agent has seen so far in one episode, and the square of it around the
agent, turned to the agent's frame: what a policy with a map (``model.map``) reads, and what
the explorer expert plans on.

Each view goes onto the map cell by cell where its cells lie, placed by the agent's position
and direction (odometry, which the agent could keep itself from its actions and views). Only
cells the view shows go on: a cell hidden behind a wall or a closed door keeps what was seen
of it before, or stays unseen (MiniGrid's object 0). The agent's own cell shows what it
carries, not the floor, so it is left as it was last seen from elsewhere (empty at the start).

The square around the agent is laid out as the view is (``tokens.VIEW``): indexed [i, j],
the agent at its centre facing towards j = 0, its right towards larger i. Where the view and
the square overlap they agree (``tests/test_known_map.py``).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from minigrid.core.constants import DIR_TO_VEC, OBJECT_TO_IDX

UNSEEN, EMPTY = OBJECT_TO_IDX["unseen"], OBJECT_TO_IDX["empty"]
VIEW = 7  # MiniGrid's view: VIEW x VIEW cells, the agent at (VIEW // 2, VIEW - 1)


@cache
def frame_offsets(size: int, centre: tuple[int, int], direction: int):
    """For each cell [i, j] of a ``size`` x ``size`` square in the agent's frame (flattened in
    the order of the square's array), the offset (dx, dy) on the grid from the agent, who
    stands at ``centre`` of the square facing ``direction``: the cell lies ``centre[1] - j``
    cells ahead of the agent and ``i - centre[0]`` to its right."""
    forward = DIR_TO_VEC[direction]
    right = np.array([-forward[1], forward[0]])  # MiniGrid's right_vec
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    across, ahead = (i - centre[0]).ravel(), (centre[1] - j).ravel()
    dx = across * right[0] + ahead * forward[0]
    dy = across * right[1] + ahead * forward[1]
    return dx, dy


class KnownMap:
    """What one agent has seen in one episode, on a grid up to ``extent`` cells a side."""

    def __init__(self, extent: int, size: int = 0):
        self.size = size  # the side of the square around the agent that ``around`` returns
        # The view reaches VIEW - 1 cells past the agent and the square size // 2: the margin
        # keeps every cell either shows inside the array (outside the grid stays unseen).
        self.margin = max(VIEW, size // 2 + 1)
        side = extent + 2 * self.margin
        self.cells = np.zeros((side, side, 3), dtype=np.uint8)  # [x, y], as Grid.encode

    @classmethod
    def of(cls, env, size: int = 0) -> KnownMap:
        """An empty map for an episode of ``env`` (any agent cell of its grid fits)."""
        u = env.unwrapped
        return cls(max(u.grid.width, u.grid.height), size)

    def observe(self, image: np.ndarray, direction: int, position) -> None:
        """Add what the view ``image`` (7, 7, 3) shows from ``position`` facing ``direction``."""
        x, y = (int(v) + self.margin for v in position)
        dx, dy = frame_offsets(VIEW, (VIEW // 2, VIEW - 1), int(direction))
        shown = image.reshape(-1, 3)
        seen = shown[:, 0] != UNSEEN
        seen[(VIEW // 2) * VIEW + VIEW - 1] = False  # the agent's cell: what it carries
        self.cells[x + dx[seen], y + dy[seen]] = shown[seen]
        if self.cells[x, y, 0] == UNSEEN:
            self.cells[x, y] = (EMPTY, 0, 0)  # it stands there

    def around(self, direction: int, position) -> np.ndarray:
        """The ``size`` x ``size`` square of the map centred on the agent, in its frame."""
        x, y = (int(v) + self.margin for v in position)
        centre = self.size // 2
        dx, dy = frame_offsets(self.size, (centre, centre), int(direction))
        return self.cells[x + dx, y + dy].reshape(self.size, self.size, 3)

    def area(self, width: int, height: int) -> np.ndarray:
        """What was seen of the grid's cells: (width, height, 3), [x, y], object 0 if unseen."""
        m = self.margin
        return self.cells[m : m + width, m : m + height]

    def cell(self, x: int, y: int) -> np.ndarray:
        """What was seen at grid cell (x, y): its (object, colour, state), object 0 if unseen."""
        return self.cells[x + self.margin, y + self.margin]


def episode_maps(
    image: np.ndarray,
    direction: np.ndarray,
    position: np.ndarray,
    episode_start: np.ndarray,
    size: int,
) -> np.ndarray:
    """(N, size, size, 3) uint8: for every row of whole recorded episodes (views (N, 7, 7, 3),
    directions (N,), positions (N, 2), episode e being rows episode_start[e]:episode_start[e+1]),
    the square around the agent of the map made from that episode's views up to that row."""
    maps = np.zeros((len(image), size, size, 3), dtype=np.uint8)
    if not size:
        return maps
    extent = int(position.max()) + 1 if len(position) else 1
    for first, stop in zip(episode_start[:-1], episode_start[1:], strict=True):
        known = KnownMap(extent, size)
        for row in range(first, stop):
            known.observe(image[row], direction[row], position[row])
            maps[row] = known.around(direction[row], position[row])
    return maps

"""The agent's view and the full state, as MiniGrid encodes them, made several times faster.

MiniGrid builds each observation in Python, cell by cell: it copies the 7x7 square in front
of the agent into a new grid, copies it again once per quarter turn, walks it to find what is
hidden behind walls and closed doors, then writes each cell into an array (minigrid_env.py
``gen_obs_grid`` and ``gen_obs``; core/grid.py ``slice``, ``rotate_left``, ``process_vis``,
``encode``). Rolling a policy out, that was a fifth of the time, and encoding the whole grid
for the loop check and the plan cache (``Grid.encode``) as much again on FourRooms. Here the
same arrays come from one gather of the cells' objects through a precomputed index per
direction, the same visibility sweep on plain lists, and one array built at the end.
``tests/test_view.py`` checks every step of random episodes in every supported family
against MiniGrid's own functions.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from minigrid.core.constants import OBJECT_TO_IDX

EMPTY = (OBJECT_TO_IDX["empty"], 0, 0)
WALL = (OBJECT_TO_IDX["wall"], 5, 0)  # what lies outside the grid: a grey wall (Grid.slice)


@cache
def view_cells(size: int, direction: int) -> tuple[list[int], list[int]]:
    """For each cell of the agent's view (flattened in the order of the view array, [i, j]),
    its offset (dx, dy) from the top-left corner of the square ``get_view_exts`` cuts: the
    slice turned left ``direction + 1`` times, as ``gen_obs_grid`` turns it."""
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    dx, dy = i, j
    for _ in range(direction + 1):  # rotate_left: new[a, b] = old[W - 1 - b, a]
        dx, dy = dx[::-1].T, dy[::-1].T
    return dx.ravel().tolist(), dy.ravel().tolist()


def agent_cell(size: int) -> int:
    """Where the agent stands in its own view, (size // 2, size - 1), as a flat [i, j] index."""
    return (size // 2) * size + size - 1


def agent_view(u) -> np.ndarray:
    """What ``u.gen_obs()["image"]`` is, for the unwrapped env ``u``: (size, size, 3) uint8."""
    size = u.agent_view_size
    top_x, top_y, _, _ = u.get_view_exts(size)
    dxs, dys = view_cells(size, u.agent_dir)
    grid, width, height = u.grid.grid, u.grid.width, u.grid.height
    objects = []
    for dx, dy in zip(dxs, dys, strict=True):
        x, y = top_x + dx, top_y + dy
        objects.append(grid[y * width + x] if 0 <= x < width and 0 <= y < height else WALL)
    cells = [
        EMPTY if obj is None else obj if isinstance(obj, tuple) else obj.encode() for obj in objects
    ]
    if not u.see_through_walls:
        opaque = [obj is WALL or (obj is not None and not obj.see_behind()) for obj in objects]
        visible = visibility(opaque, size)
        cells = [cell if seen else (0, 0, 0) for cell, seen in zip(cells, visible, strict=True)]
    cells[agent_cell(size)] = EMPTY if u.carrying is None else u.carrying.encode()
    return np.array(cells, dtype=np.uint8).reshape(size, size, 3)


def visibility(opaque: list[bool], size: int) -> list[bool]:
    """``Grid.process_vis`` from the agent's cell (size // 2, size - 1), on flat [i, j] lists:
    row by row away from the agent, light spreads sideways and one row on from every visible
    cell that is not opaque."""
    mask = [False] * (size * size)
    mask[agent_cell(size)] = True
    for j in reversed(range(size)):
        for i in range(size - 1):
            if mask[i * size + j] and not opaque[i * size + j]:
                mask[(i + 1) * size + j] = True
                if j > 0:
                    mask[(i + 1) * size + j - 1] = True
                    mask[i * size + j - 1] = True
        for i in reversed(range(1, size)):
            if mask[i * size + j] and not opaque[i * size + j]:
                mask[(i - 1) * size + j] = True
                if j > 0:
                    mask[(i - 1) * size + j - 1] = True
                    mask[i * size + j - 1] = True
    return mask


def observation(u) -> dict:
    """``u.gen_obs()``: the view, the direction and the mission."""
    return {"image": agent_view(u), "direction": u.agent_dir, "mission": u.mission}


def grid_encoding(grid) -> np.ndarray:
    """``grid.encode()``: (width, height, 3) uint8, every cell visible."""
    cells = [EMPTY if obj is None else obj.encode() for obj in grid.grid]  # row by row
    return np.array(cells, dtype=np.uint8).reshape(grid.height, grid.width, 3).transpose(1, 0, 2)

"""The training set as device tensors: each observation with the expert's next actions and
what a policy with memory remembers of the steps before it.

The whole dataset lives on the device and batches are drawn by index, so no per-sample Python
runs in the training loop. Earlier steps are not copied: each row names the rows of its
episode's ``history`` previous steps, and a batch gathers them. The square of the map around
the agent (``model.map``) depends on every earlier view, so each row keeps its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from core.tokens import NO_STEP, Past
from data.demos import Demos
from data.known_map import episode_maps


def earlier_rows(episode: np.ndarray, step: np.ndarray, history: int) -> np.ndarray:
    """(N, history) int64: for each row, the rows holding the ``history`` steps before it in
    its episode (most recent first); -1 where that step came before the episode began or has no
    row. Rows are named by (``episode``, ``step``), in any order: DAgger's rows interleave
    the episodes played side by side."""
    episode, step = np.asarray(episode, dtype=np.int64), np.asarray(step, dtype=np.int64)
    back = np.arange(1, history + 1, dtype=np.int64)[None]  # (1, M)
    if not len(step):
        return np.zeros((0, history), dtype=np.int64)
    key = episode * (int(step.max()) + 1) + step  # (N,) one number per (episode, step)
    order = np.argsort(key, kind="stable")
    wanted = key[:, None] - back  # (N, M)
    at = np.minimum(np.searchsorted(key[order], wanted), len(key) - 1)
    found = (key[order][at] == wanted) & (step[:, None] >= back)
    return np.where(found, order[at], -1)


class Visit(NamedTuple):
    """One state a policy acted in while DAgger's expert watched, and the expert's plan from
    there: a row of the training set to be."""

    image: np.ndarray  # (7, 7, 3) the view
    direction: int
    plan: list[int] | None  # the expert's, padded to PLAN_LENGTH (None until labelled)
    executed: int  # the action the policy took there
    episode: int  # which episode of the rollout
    step: int  # and which step of it
    known: np.ndarray  # (S, S, 3) the square of the map around the agent
    mission: np.ndarray  # (W,) the mission's word ids (W = 0 where the policy reads none)


@dataclass
class Chunks:
    """Observations and the expert's plan from each (its first ``horizon`` actions, padded
    with DONE past the end of the episode), the action taken there, the rows of the steps
    before each (``previous``, -1 where the episode had not begun), the square of the map
    around the agent there (S = 0 without a map) and the episode's mission (W = 0 where the
    policy reads none)."""

    image: torch.Tensor  # (N, 7, 7, 3) uint8
    direction: torch.Tensor  # (N,) long
    actions: torch.Tensor  # (N, H) long
    executed: torch.Tensor  # (N,) long
    previous: torch.Tensor  # (N, M) long
    map: torch.Tensor  # (N, S, S, 3) uint8
    mission: torch.Tensor  # (N, W) uint8

    @classmethod
    def from_arrays(
        cls,
        image: np.ndarray,
        direction: np.ndarray,
        plan: np.ndarray,
        executed: np.ndarray,
        episode: np.ndarray,
        step: np.ndarray,
        known: np.ndarray,
        mission: np.ndarray,
        horizon: int,
        history: int,
        device,
    ) -> Chunks:
        """(N, 7, 7, 3) views, (N,) directions, (N, >= horizon) expert plans, (N,) actions
        taken, each row step ``step`` of episode ``episode``, (N, S, S, 3) squares of the map
        around the agent and (N, W) missions."""
        return cls(
            torch.from_numpy(np.asarray(image, dtype=np.uint8)).to(device),
            torch.from_numpy(np.asarray(direction, dtype=np.int64)).to(device),
            torch.from_numpy(np.asarray(plan, dtype=np.int64)[:, :horizon]).to(device),
            torch.from_numpy(np.asarray(executed, dtype=np.int64)).to(device),
            torch.from_numpy(earlier_rows(episode, step, history)).to(device),
            torch.from_numpy(np.asarray(known, dtype=np.uint8)).to(device),
            torch.from_numpy(np.asarray(mission, dtype=np.uint8)).to(device),
        )

    @classmethod
    def from_demos(
        cls, demos: Demos, horizon: int, history: int, map_size: int, words: int, device
    ) -> Chunks:
        """The rows of ``demos``, each reading the first ``words`` of its episode's mission."""
        lengths = np.diff(demos.episode_start)
        episode = np.repeat(np.arange(demos.episodes), lengths)
        step = np.arange(demos.samples) - np.repeat(demos.episode_start[:-1], lengths)
        known = episode_maps(
            demos.image, demos.direction, demos.position, demos.episode_start, map_size
        )
        return cls.from_arrays(
            demos.image,
            demos.direction,
            demos.plan,
            demos.executed,
            episode,
            step,
            known,
            np.repeat(demos.mission[:, :words], lengths, axis=0),
            horizon,
            history,
            device,
        )

    @classmethod
    def from_visits(cls, visits: list[Visit], horizon: int, history: int, device) -> Chunks:
        columns = {name: [getattr(v, name) for v in visits] for name in Visit._fields}
        return cls.from_arrays(**columns, horizon=horizon, history=history, device=device)

    def __len__(self) -> int:
        return len(self.actions)

    def past(self, index: torch.Tensor) -> Past:
        """The earlier steps of the rows ``index`` (B,)."""
        rows = self.previous[index]  # (B, M)
        known = rows >= 0
        rows = rows.clamp(min=0)  # rows before an episode read row 0, then are marked NO_STEP
        action = torch.where(known, self.executed[rows], NO_STEP)
        return Past(self.image[rows], self.direction[rows], action, self.map[index])

    def extend(self, other: Chunks) -> Chunks:
        """These rows, then ``other``'s (its ``previous`` rows shifted to match)."""
        shifted = torch.where(other.previous >= 0, other.previous + len(self), -1)
        return Chunks(
            torch.cat([self.image, other.image]),
            torch.cat([self.direction, other.direction]),
            torch.cat([self.actions, other.actions]),
            torch.cat([self.executed, other.executed]),
            torch.cat([self.previous, shifted]),
            torch.cat([self.map, other.map]),
            torch.cat([self.mission, other.mission]),
        )

    def tail(self, start: int) -> dict[str, torch.Tensor]:
        """Rows from ``start`` on, as CPU tensors of their own (``torch.save`` of a view would
        write its whole storage, demonstrations included); their ``previous`` rows counted from
        ``start`` (the rows added by relabelling are whole episodes, so they never point before
        it)."""
        previous = self.previous[start:]
        return {
            "image": self.image[start:].cpu().clone(),
            "direction": self.direction[start:].cpu().clone(),
            "actions": self.actions[start:].cpu().clone(),
            "executed": self.executed[start:].cpu().clone(),
            "previous": torch.where(previous >= 0, previous - start, -1).cpu().clone(),
            "map": self.map[start:].cpu().clone(),
            "mission": self.mission[start:].cpu().clone(),
        }

"""The training set as device tensors: each observation with the expert's next actions.

The whole dataset lives on the device and batches are drawn by index, so no per-sample Python
runs in the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from data.demos import Demos


@dataclass
class Chunks:
    """Observations and the expert's shortest plan from each (its first ``horizon`` actions,
    padded with DONE past the end of the episode), as device tensors."""

    image: torch.Tensor  # (N, 7, 7, 3) uint8
    direction: torch.Tensor  # (N,) long
    actions: torch.Tensor  # (N, H) long

    @classmethod
    def from_arrays(
        cls, image: np.ndarray, direction: np.ndarray, plan: np.ndarray, horizon: int, device
    ) -> Chunks:
        """(N, 7, 7, 3) views, (N,) directions and (N, >= horizon) expert plans."""
        return cls(
            torch.from_numpy(np.asarray(image, dtype=np.uint8)).to(device),
            torch.from_numpy(np.asarray(direction, dtype=np.int64)).to(device),
            torch.from_numpy(np.asarray(plan, dtype=np.int64)[:, :horizon]).to(device),
        )

    @classmethod
    def from_demos(cls, demos: Demos, horizon: int, device: torch.device) -> Chunks:
        return cls.from_arrays(demos.image, demos.direction, demos.plan, horizon, device)

    def __len__(self) -> int:
        return len(self.actions)

    def extend(self, other: Chunks) -> Chunks:
        return Chunks(
            torch.cat([self.image, other.image]),
            torch.cat([self.direction, other.direction]),
            torch.cat([self.actions, other.actions]),
        )

    def tail(self, start: int) -> dict[str, torch.Tensor]:
        """Rows from ``start`` on, as CPU tensors of their own (``torch.save`` of a view would
        write its whole storage, demonstrations included)."""
        return {
            "image": self.image[start:].cpu().clone(),
            "direction": self.direction[start:].cpu().clone(),
            "actions": self.actions[start:].cpu().clone(),
        }

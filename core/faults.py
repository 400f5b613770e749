"""Faults injected into search trials, for tests only, off unless ``RUN_SEARCH_FAULT`` is set.

``RUN_SEARCH_FAULT=raise@K,diverge@K`` with ``RUN_SEARCH_FAULT_DIR`` naming an empty folder
every trial process can write. ``raise@K``: the first trial to start iteration K raises, once
(its retry goes on from the checkpoint). ``diverge@K``: the first trial to start iteration K
has its weights set to NaN at every attempt, so its loss diverges each time and it ends as an
error. Which trial a fault belongs to is kept in that folder, so it holds across reused,
restarted and killed processes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from core.trainer import Trainer

FAULT, FAULT_DIR = "RUN_SEARCH_FAULT", "RUN_SEARCH_FAULT_DIR"


def inject_faults(trainer: Trainer, trial_id: str) -> None:
    """The faults of ``RUN_SEARCH_FAULT`` due before the trainer's next iteration."""
    for fault in filter(None, os.environ.get(FAULT, "").split(",")):
        kind, _, at = fault.partition("@")
        if kind not in ("raise", "diverge") or not at.isdigit() or FAULT_DIR not in os.environ:
            raise ValueError(
                f"{FAULT}={fault!r}: use raise@ITERATION or diverge@ITERATION, with {FAULT_DIR}"
            )
        if trainer.iteration + 1 != int(at):
            continue
        owner, times = claim(Path(os.environ[FAULT_DIR]) / fault, trial_id)
        if owner == trial_id and kind == "raise" and times == 1:
            raise RuntimeError(f"injected fault at iteration {at} ({FAULT})")
        if owner == trial_id and kind == "diverge":
            with torch.no_grad():
                for weight in trainer.model.parameters():
                    weight.fill_(math.nan)


def claim(path: Path, trial_id: str) -> tuple[str, int]:
    """A fault belongs to the first trial that reaches it: its id is the file's first line,
    one line is added each time a trial reaches it. Returns the owner and how often the
    owner has reached it. Appends of one short line are atomic, so racing trials agree."""
    with open(path, "a") as file:
        file.write(trial_id + "\n")
    lines = path.read_text().split()
    return lines[0], lines.count(lines[0])

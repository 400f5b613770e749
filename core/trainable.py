"""The Tune trainable: a thin adapter from one trial's parameters to the core trainer.

Everything that learns lives in core/trainer.py and runs without Ray; this file only turns
a trial's parameters into a Config, places the work on what Ray granted, and reports one
result (with a checkpoint) per iteration. Parameters are flat ``section.key`` names; names in
the ``space`` section are the searcher's sampling coordinates (e.g. ``space.log2_hidden``)
and are recorded, not applied: the space also returns the real values they stand for.

Fault injection, for tests only and off unless set: ``RUN_SEARCH_FAULT=raise@K,diverge@K``
with ``RUN_SEARCH_FAULT_DIR`` naming an empty folder every trial process can write.
``raise@K``: the first trial to start iteration K raises, once (its retry goes on from the
checkpoint). ``diverge@K``: the first trial to start iteration K has its weights set to NaN at
every attempt, so its loss diverges each time and it ends as an error. Which trial a fault
belongs to is kept in that folder, so it holds across reused, restarted and killed processes.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import ray
import torch
from ray import tune

from core.checkpoint import load_checkpoint, save_checkpoint
from core.config import Config, from_dict, override, validate
from core.trainer import Trainer
from data.demos import Demos

COORDINATES = "space."  # sampling coordinates of the search space, not configuration keys
CHECKPOINT = "checkpoint.pt"
# Reported first: Ray's live trial table shows the first few metrics of a result.
HEADLINE = ("eval/return", "eval/success", "val/loss", "perf/samples_per_s")
FAULT, FAULT_DIR = "RUN_SEARCH_FAULT", "RUN_SEARCH_FAULT_DIR"


def trial_config(params: dict, base: dict) -> Config:
    """The base configuration (nested dict) with a trial's flat ``section.key`` values set."""
    config = from_dict(base, where="search base configuration")
    for key, value in params.items():
        if not key.startswith(COORDINATES):
            config = override(config, key, value, where="trial parameters")
    return validate(config)


def granted_device(requested: str) -> str:
    """CUDA when Ray granted this trial a GPU (Ray sets CUDA_VISIBLE_DEVICES to it); MPS when
    the search placed trials there (Ray has no MPS resource); otherwise the CPU."""
    if ray.get_gpu_ids():
        return "cuda"
    return "mps" if requested == "mps" else "cpu"


def granted_cpus() -> int:
    resources = tune.get_context().get_trial_resources()
    return max(1, int(resources.required_resources.get("CPU", 1)))


def train_trial(params: dict, demos: Demos, base: dict) -> None:
    """Train one trial to ``train.iters`` iterations, resuming from Tune's checkpoint.

    ``demos`` and ``base`` arrive through ``tune.with_parameters``: the dataset is built once
    per search and shared through Ray's object store. A restored trial may repeat the
    iteration after its checkpoint; its report carries the same ``iteration`` and the
    exports keep the last report of each iteration.
    """
    config = trial_config(params, base)
    torch.set_num_threads(config.train.threads or granted_cpus())
    trainer = Trainer(config, demos, torch.device(granted_device(config.train.device)))
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            trainer.load_state_dict(load_checkpoint(Path(folder) / CHECKPOINT))
    node_id = ray.get_runtime_context().get_node_id()
    while trainer.iteration < config.train.iters:
        inject_faults(trainer, tune.get_context().get_trial_id())
        metrics = trainer.train_iteration()
        with tempfile.TemporaryDirectory() as folder:
            save_checkpoint(Path(folder) / CHECKPOINT, trainer.state_dict())
            headline = {k: metrics[k] for k in HEADLINE if k in metrics}
            tune.report(
                {"iteration": trainer.iteration, **headline, **metrics, "node_id": node_id},
                checkpoint=tune.Checkpoint.from_directory(folder),
            )


def inject_faults(trainer: Trainer, trial_id: str) -> None:
    """The test-only faults of ``RUN_SEARCH_FAULT`` (see the module docstring)."""
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

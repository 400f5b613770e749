"""The Tune trainable: a thin adapter from one trial's parameters to the core trainer.

Everything that learns lives in core/trainer.py and runs without Ray; this file only turns
a trial's parameters into a Config, places the work on what Ray granted, and reports one
result (with a checkpoint) per iteration.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import ray
import torch
from ray import tune

from core.checkpoint import load_checkpoint, save_checkpoint
from core.config import Config, from_dict, from_flat
from core.evaluate import save_tested
from core.faults import inject_faults
from core.metrics import HEADLINE, TIME
from core.trainer import Trainer
from data.demos import Demos, for_data

CHECKPOINT = "checkpoint.pt"


def granted_device(requested: str) -> str:
    """CUDA when Ray granted this trial a GPU (Ray sets CUDA_VISIBLE_DEVICES to it); MPS when
    the search placed trials there (Ray has no MPS resource); otherwise the CPU."""
    if ray.get_gpu_ids():
        return "cuda"
    return "mps" if requested == "mps" else "cpu"


def granted_cpus() -> int:
    resources = tune.get_context().get_trial_resources()
    return max(1, int(resources.required_resources.get("CPU", 1)))


def train_trial(
    params: dict, demos: Demos, base: dict, cache: str, finalists: dict | None = None
) -> None:
    """Train one trial to ``train.iters`` iterations, resuming from Tune's checkpoint.

    A search's trial sets the configuration values ``params`` over ``base``; a finalist's run
    names its finalist (``params["finalist"]``, whose values ``finalists`` holds) and its
    training seed (``params["train.seed"]``). ``demos``, ``base``, ``cache`` (the dataset
    cache's absolute path) and ``finalists`` arrive through ``tune.with_parameters``: the
    dataset is built once per search and shared through Ray's object store. A restored trial
    may repeat the iteration after its checkpoint; its report carries the same ``iteration``
    and the exports keep the last report of each iteration.
    """
    if "finalist" in params:
        params = {**finalists[params["finalist"]], "train.seed": params["train.seed"]}
    base_config = from_dict(base, where="search base configuration")
    train(from_flat(params, base_config, where="trial parameters"), demos, base_config, cache)


def train(config: Config, demos: Demos, base: Config, cache: str) -> None:
    """Train ``config`` in this trial, from its last checkpoint if it has one. ``demos`` are
    the base configuration's; a trial that searches the data itself (count, noise) reads or
    builds its own in the search's dataset cache (Ray runs a trial in its own folder)."""
    if config.data != base.data:
        demos = for_data(config.data, Path(cache))
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
            # With the checkpoint, which Ray keeps in the trial's folder (files written in
            # the trial's working folder need not reach it).
            save_tested(folder, trainer.tested)
            headline = {k: metrics[k] for k in HEADLINE if k in metrics}
            tune.report(
                {TIME: trainer.iteration, **headline, **metrics, "node_id": node_id},
                checkpoint=tune.Checkpoint.from_directory(folder),
            )

"""Training by behaviour cloning with the masked-diffusion objective, and DAgger relabelling.

One iteration is a fixed number of optimiser steps (not a data epoch): some environments
have a handful of distinct episodes, and a search's rungs need a time unit that means the
same in every trial.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from core.chunks import Chunks
from core.config import Config, to_dict
from core.device import pick_device
from core.diffusion import corrupt, make_schedule, masked_loss, sample_t
from core.dit import model_for
from core.evaluate import on_test_episodes, rollout
from core.lr_schedule import make_lr_schedule
from core.policy import Policy
from core.rollout import dagger_visits
from core.tokens import mission_words
from data.demos import Demos


class Trainer:
    def __init__(
        self,
        config: Config,
        demos: Demos,
        device: torch.device | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.config = config
        self.log = log  # hears the progress of a long phase (relabelling, evaluation)
        self.device = device or pick_device(config.train.device)
        training = config.train
        torch.manual_seed(training.seed)
        train, val = demos.split(config.data.val_fraction)
        m, words = config.model, mission_words(config)
        self.train_set = Chunks.from_demos(train, m.horizon, m.history, m.map, words, self.device)
        self.demo_samples = len(self.train_set)  # rows past this were added by relabel()
        self.train_seeds = train.env_seed  # DAgger replays these, never evaluation seeds
        self.relabelled = 0
        self.val_set = Chunks.from_demos(val, m.horizon, m.history, m.map, words, self.device)
        self.schedule = make_schedule(config.diffusion.schedule)
        self.model = model_for(config).to(self.device)
        self.ema = (
            AveragedModel(
                self.model, multi_avg_fn=get_ema_multi_avg_fn(training.ema), use_buffers=True
            )
            if training.ema > 0
            else None
        )
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=training.lr,
            weight_decay=training.weight_decay,
            # One fused kernel for all parameters instead of a loop of per-tensor ops, which on
            # a CPU costs several times the step of a small model (BENCHMARKS.md).
            fused=self.device.type in ("cpu", "cuda"),
        )
        self.scheduler = make_lr_schedule(self.optimizer, training)
        self.generator = torch.Generator(self.device).manual_seed(training.seed)
        self.iteration = 0
        self.metrics: dict[str, float] = {}
        self.tested: list[dict] = []  # each test episode's figures, after the last iteration
        self._val_batch = self._fixed_val_batch()

    @property
    def eval_model(self) -> torch.nn.Module:
        """The weights used for validation and rollouts: the EMA ones when enabled."""
        return self.ema.module if self.ema is not None else self.model

    def _fixed_val_batch(self) -> tuple:
        """The same validation samples, times and masks at every iteration, so val/loss moves
        only when the model does."""
        g = torch.Generator(self.device).manual_seed(1234)
        n = min(len(self.val_set), 2048)
        index = torch.randperm(len(self.val_set), generator=g, device=self.device)[:n]
        actions = self.val_set.actions[index]
        t = sample_t(n, self.config.diffusion, g, self.device)
        z, masked = corrupt(actions, t, self.schedule, g)
        return self.observations(self.val_set, index), actions, z, masked, t

    def observations(self, chunks: Chunks, index: torch.Tensor) -> tuple:
        """What the model reads of the rows ``index``: view, direction, with memory the
        earlier steps and the map, and the mission's words."""
        past = chunks.past(index) if self.config.model.remembers else None
        return chunks.image[index], chunks.direction[index], past, chunks.mission[index]

    def loss(self, observed, actions, z, masked, t, model) -> tuple:
        image, direction, past, mission = observed
        autocast = self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(image, direction, z, t, past, mission)
        d = self.config.diffusion
        return masked_loss(logits, actions, masked, t, self.schedule, d.weighting)

    def step(self) -> float:
        training = self.config.train
        index = torch.randint(
            len(self.train_set),
            (training.batch_size,),
            generator=self.generator,
            device=self.device,
        )
        actions = self.train_set.actions[index]
        times = sample_t(training.batch_size, self.config.diffusion, self.generator, self.device)
        z, masked = corrupt(actions, times, self.schedule, self.generator)
        observed = self.observations(self.train_set, index)
        loss, _ = self.loss(observed, actions, z, masked, times, self.model)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss diverged ({loss.item()}) in iteration {self.iteration + 1}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if training.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), training.grad_clip)
        self.optimizer.step()
        if training.lr_schedule == "cosine":
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return loss.item()

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        model = self.eval_model
        model.eval()
        loss, acc = self.loss(*self._val_batch, model)
        model.train()
        return loss.item(), acc.item()

    @property
    def policy(self) -> Policy:
        return Policy(self.eval_model, self.config, self.device)

    def relabel(self, episodes: int) -> float:
        """DAgger (Ross et al. 2011): the policy plays training-seed episodes, the expert labels
        every state it acted in with its shortest plan from there, and those samples join the
        training set. Behaviour cloning alone never sees the states its own mistakes lead to;
        this is where a cloned policy loops. Returns the new training-set size."""
        # The next training episodes in turn, wrapping around.
        seeds = self.train_seeds[(self.relabelled + np.arange(episodes)) % len(self.train_seeds)]
        self.relabelled = (self.relabelled + episodes) % len(self.train_seeds)
        data, m = self.config.data, self.config.model
        # Labelled by as many processes as torch has threads: the cores this run is given.
        jobs = torch.get_num_threads()
        visits = dagger_visits(self.policy, data.env, seeds, data.expert, m.horizon, jobs, self.log)
        if visits:
            new = Chunks.from_visits(visits, m.horizon, m.history, self.device)
            self.train_set = self.train_set.extend(new)
        return float(len(self.train_set))

    def train_iteration(self) -> dict[str, float]:
        """Run ``steps_per_iter`` optimiser steps, validate, and roll out every ``eval_every``
        iterations and at the last one. Returns the metrics ``core/metrics.py`` names."""
        training = self.config.train
        self.model.train()
        start = time.perf_counter()
        losses = [self.step() for _ in range(training.steps_per_iter)]
        elapsed = time.perf_counter() - start
        self.iteration += 1
        val_loss, val_acc = self.validate()
        if training.lr_schedule == "plateau":
            self.scheduler.step(val_loss)
        metrics = {
            "train/loss": sum(losses) / len(losses),
            "val/loss": val_loss,
            "val/acc": val_acc,
            "perf/samples_per_s": training.batch_size * training.steps_per_iter / elapsed,
            "train/lr": self.optimizer.param_groups[0]["lr"],
        }
        if (
            training.dagger_every
            and self.iteration % training.dagger_every == 0
            and self.iteration < training.iters
        ):
            metrics["train/samples"] = self.relabel(training.dagger_episodes)
        data = self.config.data
        if self.iteration % training.eval_every == 0 or self.iteration == training.iters:
            # Selection episodes picked by the data seed: every training seed and every
            # configuration on the same data is scored on the same episodes.
            selection = rollout(
                self.policy, data.env, training.eval_episodes, data.seed, log=self.log
            )
            metrics.update(selection)
        if self.iteration == training.iters and training.test_episodes:
            # The final figures, on episodes nothing was selected on; each episode's own
            # figures are kept for paired comparisons (``tested``).
            self.tested = []
            test = on_test_episodes(
                self.policy, training.test_episodes, data, played=self.tested, log=self.log
            )
            metrics.update(test)
        self.metrics = metrics
        return metrics

    def state_dict(self) -> dict:
        return {
            "config": to_dict(self.config),
            "iteration": self.iteration,
            "metrics": self.metrics,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            # Dropout draws from torch's global generator (the device's own on CUDA): without
            # its state a resumed run with dropout > 0 would not repeat the straight one.
            "global_rng": global_rng(self.device),
            "relabelled": self.relabelled,
            "relabelled_samples": self.train_set.tail(self.demo_samples),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        if state.get("global_rng") is not None:
            set_global_rng(self.device, state["global_rng"])
        self.iteration = state["iteration"]
        self.metrics = state["metrics"]
        self.relabelled = state.get("relabelled", 0)
        extra = state.get("relabelled_samples")
        if extra is not None and len(extra["actions"]):
            n = len(extra["actions"])
            if "previous" not in extra:  # saved before memory existed: a policy without it
                none = torch.empty((n, 0), dtype=torch.long)
                extra = {**extra, "executed": extra["actions"][:, 0], "previous": none}
            if "map" not in extra:  # saved before the map existed: a policy without one
                extra = {**extra, "map": torch.empty((n, 0, 0, 3), dtype=torch.uint8)}
            if "mission" not in extra:  # saved before missions were read: a task without one
                extra = {**extra, "mission": torch.empty((n, 0), dtype=torch.uint8)}
            added = Chunks(**{k: v.to(self.device) for k, v in extra.items()})
            self.train_set = self.train_set.extend(added)


def global_rng(device: torch.device) -> torch.Tensor:
    """The state of the generator dropout draws from on ``device``."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def set_global_rng(device: torch.device, state: torch.Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)

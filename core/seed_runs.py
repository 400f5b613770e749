"""The `train` command without Ray: train a configuration from scratch on one or several seeds,
log each iteration, checkpoint, and summarise the seeds."""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tensorboardX import SummaryWriter
from tqdm import tqdm

from core.checkpoint import jsonable, load_checkpoint, save_checkpoint, write_json
from core.config import Config, flat, to_dict
from core.console import progress_line
from core.evaluate import save_tested
from core.metrics import TIME
from core.statistics import mean_interval
from core.threads import FreeCores
from core.tracking import Track, Tracker
from core.trainer import Trainer
from data.demos import Demos, for_data


def train_one(
    config: Config,
    demos: Demos,
    out: Path,
    log: Callable[[str], None] = print,
    prefix: str = "",
    resume: bool = False,
    track: Track = "none",
) -> dict[str, float]:
    """Train ``config`` into ``out``: TensorBoard events, history.jsonl (one line of metrics
    per iteration), checkpoint.pt and its .json after every iteration. With ``resume`` it goes
    on from the checkpoint there (the lines and events after it are dropped, so an iteration
    repeated after a crash is written once). Returns the last iteration's metrics, which
    include a rollout and, with ``train.test_episodes``, the test figures."""
    free = None if config.train.threads > 0 else FreeCores()
    if free is None:
        torch.set_num_threads(config.train.threads)
    start = time.perf_counter()
    trainer = Trainer(config, demos)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"
    before = 0.0  # seconds the earlier sittings of a resumed run took
    if resume and checkpoint.exists():
        trainer.load_state_dict(load_checkpoint(checkpoint))
        lines = (out / "history.jsonl").read_text().splitlines(keepends=True)[: trainer.iteration]
        (out / "history.jsonl").write_text("".join(lines))
        before = json.loads(lines[-1]).get(SECONDS, 0.0) if lines else 0.0
    done, total = trainer.iteration, config.train.iters
    tracker = Tracker(track, f"{out.parent.name}-{out.name}", flat(config), out)
    bar = tqdm(
        total=total,
        initial=done,
        desc=prefix.strip() or "train",
        unit="iter",
        disable=not sys.stdout.isatty(),
        leave=False,
    )

    def phase(line: str) -> None:
        """A long phase of an iteration (relabelling, evaluation) says how far it is."""
        if bar.disable:
            log(f"{prefix}iter {trainer.iteration:>3}/{total}  {line}")
        else:
            bar.set_postfix_str(line)

    trainer.log = phase

    with (
        SummaryWriter(str(out / "tb"), purge_step=done + 1) as writer,
        open(out / "history.jsonl", "a") as history,
        bar,
    ):
        metrics = trainer.metrics
        while trainer.iteration < total:
            if free is not None:  # the cores others leave free, after every iteration
                torch.set_num_threads(free.threads())
            metrics = {**trainer.train_iteration(), "perf/threads": torch.get_num_threads()}
            line = {TIME: trainer.iteration, **metrics, SECONDS: before + since(start)}
            history.write(json.dumps(jsonable(line)) + "\n")
            history.flush()
            for key, value in metrics.items():
                if math.isfinite(value):  # len_ratio is NaN until an episode succeeds
                    writer.add_scalar(key, value, trainer.iteration)
            save_tested(out, trainer.tested)
            save_checkpoint(checkpoint, trainer.state_dict())
            tracker.log(metrics, trainer.iteration)
            elapsed = since(start)
            eta = elapsed / (trainer.iteration - done) * (total - trainer.iteration)
            bar.update()
            bar.set_postfix(
                {k: f"{metrics[k]:.3f}" for k in ("val/loss", "eval/return") if k in metrics}
            )
            if bar.disable:  # a log or a pipe: one line an iteration
                log(progress_line(prefix, trainer.iteration, total, metrics, eta))
    tracker.close()
    return {**metrics, "time/minutes": (before + since(start)) / 60}


SECONDS = "time/seconds"  # in each history line: the run's time so far, every sitting of it


def since(start: float) -> float:
    return time.perf_counter() - start


def train_seeds(
    config: Config,
    seeds: int,
    out: Path,
    log: Callable[[str], None] = print,
    demos: Demos | None = None,
    resume: bool = False,
    track: Track = "none",
    jobs: int = 1,
) -> dict:
    """Train ``seeds`` runs (train.seed, train.seed + 1, ...) on the same demonstrations (the
    cached ones of ``config.data`` unless given) and write ``out/metrics.json``: per-seed
    metrics, their mean, standard deviation and the half-width of the mean's 95% interval.
    With ``jobs`` > 1 that many seeds train side by side, each in its own process."""
    cores = os.cpu_count() or 1  # the demonstrations come first, on every core
    demos = demos if demos is not None else for_data(config.data, log=log, jobs=cores)
    jobs = min(jobs, seeds)
    threads = config.train.threads
    if jobs > 1 and threads == 0:  # the processes share the cores evenly from the start
        threads = max(1, (os.cpu_count() or 1) // jobs)
    runs = []
    for i in range(seeds):
        seed = config.train.seed + i
        train = dataclasses.replace(config.train, seed=seed, threads=threads)
        prefix = f"[seed {seed}] " if seeds > 1 else ""
        runs.append(
            (str(seed), dataclasses.replace(config, train=train), out / f"seed{seed}", prefix)
        )
    if jobs == 1:
        per_seed = {
            seed: train_one(run, demos, folder, log, prefix, resume, track)
            for seed, run, folder, prefix in runs
        }
    else:
        # Spawned, not forked: a fork of a process holding torch's (or CUDA's) threads can hang.
        # Each process prints its own lines, prefixed by its seed.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            started = {
                seed: pool.submit(train_one, run, demos, folder, print, prefix, resume, track)
                for seed, run, folder, prefix in runs
            }
            per_seed = {seed: future.result() for seed, future in started.items()}
    keys = sorted({k for m in per_seed.values() for k in m})
    values = {k: [m.get(k) for m in per_seed.values()] for k in keys}
    intervals = {k: mean_interval(v) for k, v in values.items()}
    summary = {
        "config": to_dict(config),
        "seeds": per_seed,
        "mean": {k: mean for k, (mean, _) in intervals.items()},
        "std": {k: nan_stat(np.std, v) for k, v in values.items()},
        "ci95": {k: half for k, (_, half) in intervals.items()},
    }
    write_json(out / "metrics.json", summary)
    return summary


def nan_stat(stat, values: list) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(stat(finite)) if finite else float("nan")

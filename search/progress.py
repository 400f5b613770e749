"""One line on the terminal each time a trial (or a finalist's run) starts, ends or fails: how
far the stage is, how many run now, the best figure so far and when the stage should end.
Ray's own status tables and per-trial boxes are there with ``--ray-progress``."""

from __future__ import annotations

import math
import time

from ray.tune import Callback

from core.metrics import TIEBREAK, TIEBREAK_SCALE, TIME

ENDED = ("TERMINATED", "ERROR")


class ProgressLines(Callback):
    """The lines of one stage (``trials`` or ``finalists``) of ``total`` runs of up to
    ``max_iters`` iterations, judged on ``metric`` (``mode``: max or min)."""

    def __init__(self, stage: str, total: int, max_iters: int, metric: str, mode: str):
        self.stage, self.total, self.max_iters = stage, total, max_iters
        self.metric, self.mode = metric, mode
        self.start = time.monotonic()
        self.iterations: dict[str, int] = {}  # run -> iterations reported (this run of it)
        self.started: dict[str, float] = {}  # run -> when it started
        self.reported: dict[str, float] = {}  # run -> when it last reported
        self.ended: list[int] = []  # the iterations of each run that ended
        self.best: tuple[float, str, float] | None = None  # (judged, run, value)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.trial_id] = time.monotonic()
        values = ", ".join(f"{k}={shown(v)}" for k, v in sorted(trial.config.items()))
        self.say(trials, trial, f"{name(trial)} started ({values})")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.iterations[trial.trial_id] = int(result.get(TIME, 0))
        self.reported[trial.trial_id] = time.monotonic()
        value = result.get(self.metric)
        if isinstance(value, int | float) and math.isfinite(value):
            sign = 1 if self.mode == "max" else -1
            loss = result.get(TIEBREAK)
            score = sign * value - TIEBREAK_SCALE * (loss if isinstance(loss, float) else 0.0)
            better = self.best is None or score > self.best[0]
            if better:
                self.best = (score, name(trial), value)

    def on_trial_complete(self, iteration, trials, trial, **info):
        done = self.iterations.get(trial.trial_id, 0)
        self.ended.append(done)
        how = "ran its budget" if done >= self.max_iters else f"stopped at iteration {done}"
        last = trial.last_result.get(self.metric) if trial.last_result else None
        figure = f", {self.metric} {last:.3f}" if isinstance(last, int | float) else ""
        self.say(trials, trial, f"{name(trial)} {how}{figure}", ended=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.say(trials, trial, f"{name(trial)} failed, its retries spent", ended=True)

    def say(self, trials, trial, event: str, ended: bool = False) -> None:
        finished = sum(t.status in ENDED for t in trials if t is not trial) + ended
        running = sum(t.status == "RUNNING" for t in trials if t is not trial) + (not ended)
        elapsed = time.monotonic() - self.start
        best = f"best {self.metric} {self.best[2]:.3f} ({self.best[1]})" if self.best else ""
        parts = [
            f"[{clock(elapsed)}] {self.stage} {finished}/{self.total} ended, {running} running",
            event,
            best,
            # Ray marks a run ended only after its callbacks: the one ending here is not left.
            self.eta(
                finished,
                elapsed,
                [t for t in trials if t.status == "RUNNING" and not (ended and t is trial)],
            ),
        ]
        print(" | ".join(p for p in parts if p), flush=True)

    def eta(self, finished: int, elapsed: float, running: list) -> str:
        """The stage's time left: iterations still to run (at the mean count of the runs that
        ended, or the whole budget before any has) at the rate so far; but no sooner than
        each running run can end at its own pace (a large model left alone at the end runs
        at its pace, not at the stage's)."""
        done = sum(self.iterations.values())
        if not done or finished >= self.total:
            return ""
        left = max(0.0, self.per_run * self.total - done) * elapsed / done
        return f"ETA {clock(max([left, *map(self.own_time_left, running)]))}"

    def own_time_left(self, trial) -> float:
        """A running run's time left at its own pace: at least the iteration under way (its
        seconds an iteration so far, less what has passed since it last reported)."""
        run = trial.trial_id
        iterations = self.iterations.get(run, 0)
        if not iterations or run not in self.started:
            return 0.0
        pace = (self.reported[run] - self.started[run]) / iterations
        still = max(self.per_run - iterations, 1.0) * pace - (time.monotonic() - self.reported[run])
        return max(0.0, still)

    @property
    def per_run(self) -> float:
        """Iterations a run takes: the mean of those that ended, the budget before any has."""
        return sum(self.ended) / len(self.ended) if self.ended else self.max_iters


def name(trial) -> str:
    config = trial.config
    if "finalist" in config:
        return f"{config['finalist']} seed {config['train.seed']}"
    return f"trial_{trial.trial_id}"


def shown(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"

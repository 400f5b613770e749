"""What a search says on the terminal: where to look when it starts, what it found at the end."""

from __future__ import annotations

import logging
from pathlib import Path

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, LoggerCallback
from ray.tune.logger.tensorboardx import TBXLoggerCallback

from data.errors import command
from search import cluster, upstream
from search.export import pm, verdict
from search.outcome import Outcome
from search.placement import Placement
from search.settings import Settings


class WrongResumeHint(logging.Filter):
    """Ray's 'Resume experiment with: Tuner.restore(...)' after an interruption is not how
    this tool resumes; the console's last line says how (``--name N --resume``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Resume experiment with" not in record.getMessage()


class TokenOnNotice(logging.Filter):
    """Ray warns on every start that token authentication is on (its default): the search's
    first lines already say the dashboard asks for the token. A warning that it is *off* is
    kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled")


def quiet_wrong_hints() -> None:
    logging.getLogger("ray.tune.tune").addFilter(WrongResumeHint())
    token = "ray._private.authentication.authentication_token_setup"
    logging.getLogger(token).addFilter(TokenOnNotice())


class TensorBoardEvents(LoggerCallback):
    """Ray's own TensorBoard logger, under another class: each trial's events land in its
    folder as before, but Ray, which looks for its class by name, no longer prints "To
    visualize your results with TensorBoard, run: tensorboard --logdir /tmp/ray/...", a
    temporary copy; the search prints the folder to give TensorBoard instead."""

    def __init__(self):
        self.events = TBXLoggerCallback()

    def log_trial_start(self, trial) -> None:
        self.events.log_trial_start(trial)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        self.events.log_trial_result(iteration, trial, result)

    def log_trial_end(self, trial, failed: bool = False) -> None:
        self.events.log_trial_end(trial, failed)


def loggers() -> list[LoggerCallback]:
    """What Ray writes into each trial's folder: progress.csv, result.json and params.json,
    TensorBoard events. (Ray adds its own loggers unless told not to: see search/tuner.py.)"""
    return [CSVLoggerCallback(), JsonLoggerCallback(), TensorBoardEvents()]


def restore_loggers(tuner) -> None:
    """Give a restored search its loggers when its saved experiment has none: Ray restores
    only the callbacks saved with it, and Ray's own loggers are off here, so a search saved
    by a version that did not give them explicitly would resume writing no result.json."""
    callbacks = upstream.restored_callbacks(tuner)
    if not any(isinstance(callback, JsonLoggerCallback) for callback in callbacks):
        callbacks.extend(loggers())


def announce(
    settings: Settings, folder: Path, placement: Placement, url: str, preset_first: bool
) -> None:
    print(
        f"search {folder.name}: {settings.num_samples} trials of {settings.space} space on "
        f"{settings.env}, {settings.searcher} + {settings.scheduler}, up to "
        f"{settings.max_iters} iterations each, optimising {settings.metric} ({settings.mode}) "
        "on selection episodes"
    )
    first = (
        f"the first trial is the {settings.preset} preset's own values"
        if preset_first
        else f"the {settings.preset} preset lies outside the {settings.space} space: no trial has"
        " its values"
    )
    then = (
        f"then the top {settings.finalists} and the preset retrained on "
        f"{settings.finalist_seeds} fresh seeds each, judged on {settings.test_episodes} test "
        "episodes"
        if settings.finalists
        else "no finalists (--finalists 0)"
    )
    print(f"{first}; {then}")
    print(f"placement: {placement.describe()}")
    if url:
        token = " (it asks for a token: paste the output of `ray get-auth-token`)"
        print(f"Ray dashboard: {url}{token if cluster.token_auth() else ''}")
    print(f"TensorBoard:   tensorboard --logdir {folder}")
    print(f"results:       {folder}")


def report(outcome: Outcome) -> None:
    """The counts by status, the best trial's figures and values; the finalists' test figures
    and whether the winner beats the incumbent; then how to retrain the exported winner."""
    folder, best = outcome.folder, outcome.best
    counts = ", ".join(f"{n} {s}" for s, n in outcome.counts.items() if n)
    print(f"\ntrials: {counts or 'none'}")
    if best is None:
        print("no trial reported a result yet")
        return
    print(f"best trial {best.trial_id} ({best.status}, {best.iterations} iterations):")
    for key in ("eval/return", "eval/success", "eval/len_ratio", "val/loss"):
        print(f"  {key:<15} {best.last(key):.3f}")
    for key, value in sorted(best.params.items()):
        print(f"  {key:<25} {value:.4g}" if isinstance(value, float) else f"  {key:<25} {value}")
    retrained = outcome.retrained
    seeds = 3
    if retrained:
        print("\nfinalists on test episodes (mean ± 95% interval over seeds):")
        for f in retrained:
            print(
                f"  {f.name:<16} test/return {pm(*f.interval('test/return')):<15} "
                f"test/success {pm(*f.interval('test/success')):<15} seeds {len(f.runs)}  "
                f"search eval/return {f.search_figure:.3f}"
            )
        print(verdict(retrained))
        seeds = max(1, len(retrained[0].runs))
    print(f"wrote {folder / 'best_config.yaml'}, trials.csv, summary.md, plots/")
    config = folder / "best_config.yaml"
    print(f"retrain: {command()} train --config {config} --seeds {seeds}")

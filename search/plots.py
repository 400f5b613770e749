"""Plots of a search: learning curves by status, the metric against each parameter, and
parameter importances from an Optuna study rebuilt from the trials on disk."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402

from core import config as cfg  # noqa: E402
from core.config import COORDINATES  # noqa: E402
from core.metrics import TIME, mode_of  # noqa: E402
from data.errors import BadInput  # noqa: E402
from data.files import write_atomically  # noqa: E402
from search.results import Trial  # noqa: E402
from search.settings import Settings  # noqa: E402
from search.spaces import point_of, space  # noqa: E402

COLOURS = {
    "completed": "tab:green",
    "pruned": "tab:gray",
    "error": "tab:red",
    "unfinished": "tab:blue",
}
LOG_SCALE = ("train.lr", "train.weight_decay")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def plot_search(
    folder: Path, trials: list[Trial], settings: Settings, retrained: list | None = None
) -> list[str]:
    """Write the plots into ``folder``; returns the names written."""
    metric = settings.metric
    written = []
    for name, draw in (
        ("curves.png", curves),
        ("params.png", params),
        ("importance.png", importance),
        ("finalists.png", lambda *_: finalists(retrained or [])),
    ):
        figure = draw(trials, metric, settings)
        if figure is None:
            continue
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(figure)
        write_atomically(folder / name, buffer.getvalue())
        written.append(name)
    return written


def curves(trials: list[Trial], metric: str, settings: Settings):
    figure, ax = plt.subplots(figsize=(7, 4.2))
    for status, colour in COLOURS.items():
        shown = [t for t in trials if t.status == status and t.history]
        for i, t in enumerate(shown):
            x = [r[TIME] for r in t.history]
            y = [t.at(it, metric) for it in x]
            ax.plot(
                x,
                y,
                color=colour,
                alpha=0.8,
                marker=".",
                lw=1.2,
                label=f"{status} ({len(shown)})" if i == 0 else None,
            )
    ax.set_xlabel("iteration (optimiser steps / steps_per_iter)")
    ax.set_ylabel(metric)
    ax.set_title(f"{len(trials)} trials on {settings.env}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return figure


def params(trials: list[Trial], metric: str, settings: Settings):
    names = sorted({k for t in trials for k in t.params})
    if not names:
        return None
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    figure, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        for status, colour in COLOURS.items():
            shown = [t for t in trials if t.status == status and name in t.params and t.history]
            xs = [t.params[name] for t in shown]
            if any(isinstance(x, str) for x in xs):
                xs = [str(x) for x in xs]
            ax.scatter(xs, [t.last(metric) for t in shown], color=colour, s=18, label=status)
        if name in LOG_SCALE:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel(f"last {metric}")
    figure.suptitle(f"last {metric} against each parameter (colour: status)", fontsize=10)
    figure.tight_layout()
    return figure


def importance(trials: list[Trial], metric: str, settings: Settings):
    """fANOVA importances on a study rebuilt from the trials. With ASHA few trials run the
    full budget, so every trial is scored at the first rung, which all of them reached."""
    at = settings.grace_period if settings.scheduler == "asha" else settings.max_iters
    study = rebuild_study(trials, metric, at, settings.space)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 3 or len({t.value for t in complete}) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
        )
    figure, ax = plt.subplots(figsize=(6, 0.35 * len(scores) + 1.2))
    names = list(scores)[::-1]
    ax.barh(names, [scores[n] for n in names], color="tab:purple")
    ax.set_xlabel("fANOVA importance")
    ax.set_title(f"{metric} at iteration {at}, {len(complete)} trials", fontsize=10)
    ax.tick_params(labelsize=8)
    return figure


def coordinates(trial: Trial, space_name: str) -> dict | None:
    """Where the searcher sampled a trial: recorded by searches of earlier versions, else
    found again from its configuration values."""
    if any(k.startswith(COORDINATES) for k in trial.coordinates):
        return trial.coordinates
    try:
        return point_of(space_name, cfg.from_flat(trial.params, cfg.DEFAULT))
    except BadInput:
        return None


def rebuild_study(trials: list[Trial], metric: str, at: int, space_name: str) -> optuna.Study:
    """An in-memory study with one COMPLETE trial per trial that reached iteration ``at``,
    valued there, with the distributions the space function declares."""
    fn = space(space_name)
    study = optuna.create_study(direction="maximize" if mode_of(metric) == "max" else "minimize")
    for t in trials:
        value = t.at(at, metric)
        if not math.isfinite(value):
            continue
        point = coordinates(t, space_name)
        if point is None:
            continue
        fixed = optuna.trial.FixedTrial(point)
        try:
            fn(fixed)
        except ValueError:  # a parameter this version of the space no longer has
            continue
        study.add_trial(
            optuna.trial.create_trial(
                params=fixed.params, distributions=fixed.distributions, value=value
            )
        )
    return study


def finalists(retrained: list) -> plt.Figure | None:
    """Each finalist's test return per seed (dots) and mean with its 95% interval (bar)."""
    shown = [f for f in retrained if f.runs]
    if not shown:
        return None
    figure, ax = plt.subplots(figsize=(1.6 * len(shown) + 2.5, 3.6))
    for x, f in enumerate(shown):
        mean, half = f.interval("test/return")
        colour = "tab:gray" if f.name == "incumbent" else "tab:green"
        ax.errorbar(
            x,
            mean,
            yerr=half if math.isfinite(half) else None,
            fmt="o",
            ms=9,
            capsize=6,
            color=colour,
        )
        values = [run["test/return"] for run in f.runs.values()]
        ax.scatter([x + 0.12] * len(values), values, s=14, color=colour, alpha=0.6)
        if math.isfinite(f.search_figure):
            ax.scatter(x - 0.12, f.search_figure, marker="x", color="black", s=30)
    ax.set_xticks(range(len(shown)), [f.name.removeprefix("trial_") for f in shown], fontsize=8)
    ax.set_ylabel("test/return")
    ax.set_title("finalists: mean and 95% interval over seeds (x: the search's figure)", fontsize=9)
    ax.grid(alpha=0.3)
    return figure

"""Exports of a search folder, finished or interrupted: ``best_config.yaml``, ``trials.csv``,
``summary.md`` and ``plots/``. Every file is rebuilt from the trials on disk, so exporting
twice gives the same files and an interrupted search can be exported at any time.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter
from pathlib import Path

from core import config as cfg
from core.metrics import EXPORTED, TIEBREAK, judged, mode_of
from data.errors import BadInput
from data.files import write_atomically
from search.plots import plot_search
from search.record import read_record
from search.results import STATUSES, Trial, read_trials
from search.settings import Settings

TOP = 5


def rank(trials: list[Trial], metric: str) -> list[Trial]:
    """Best first: trials that ran the full budget before those that did not (a pruned
    trial's low-budget figure is not comparable), then by their last value of ``metric``
    with the tie-break of ``core/metrics.py`` (e.g. several policies that solve every
    episode are told apart by validation loss)."""
    sign = -1 if mode_of(metric) == "max" else 1

    def key(trial: Trial):
        last = trial.last(metric)
        score = judged(metric, last, trial.last(TIEBREAK))
        return (trial.status != "completed", sign * score if math.isfinite(last) else math.inf)

    return sorted((t for t in trials if t.history), key=key)


def export(folder: Path) -> dict:
    """(Re)write the exports of ``folder``; returns the folder, whether the search finished,
    the counts by status and the best trial."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"{folder} is not a folder; pass results/NAME of a search")
    settings, record = read_record(folder)
    trials = read_trials(folder, settings.max_iters)
    ranked = rank(trials, settings.metric)
    counts = Counter(t.status for t in trials)
    finished = len(trials) >= settings.num_samples and counts["unfinished"] == 0
    write_atomically(folder / "trials.csv", trials_csv(trials, settings.metric).encode())
    best = ranked[0] if ranked else None
    if best is not None:
        write_atomically(folder / "best_config.yaml", best_config(best, record, folder).encode())
    plots = plot_search(folder / "plots", trials, settings)
    summary = summary_md(folder, settings, record, trials, ranked, counts, finished, plots)
    write_atomically(folder / "summary.md", summary.encode())
    return {
        "folder": folder,
        "finished": finished,
        "counts": {s: counts[s] for s in STATUSES},
        "best": best,
    }


def trials_csv(trials: list[Trial], metric: str) -> str:
    params = sorted({k for t in trials for k in t.params})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["trial_id", "status", "iterations", f"best {metric}"]
    header += [f"last {m}" for m in EXPORTED] + ["busy_s", "node_id", "error"] + params
    writer.writerow(header)
    for t in trials:
        row = [t.trial_id, t.status, t.iterations, fmt(t.best(metric, mode_of(metric)))]
        row += [fmt(t.last(m)) for m in EXPORTED]
        row += [f"{t.busy_s:.1f}", t.node, t.error]
        row += [t.params.get(p, "") for p in params]
        writer.writerow(row)
    return buffer.getvalue()


def fmt(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else ""


def best_config(best: Trial, record: dict, folder: Path) -> str:
    """Exactly what ``train --config`` consumes (the four sections), plus where it came from."""
    base = cfg.from_dict(record["base"], where="search base configuration")
    config = cfg.from_flat(best.coordinates, base, where="trial parameters")
    checkpoint = best.checkpoint
    result = {
        "search": folder.name,
        "trial_id": best.trial_id,
        "status": best.status,
        "iterations": best.iterations,
        "metrics": {m: best.last(m) for m in EXPORTED if math.isfinite(best.last(m))},
        "checkpoint": str(checkpoint.relative_to(folder)) if checkpoint else None,
    }
    header = (
        f"# Best configuration of search {folder.name}. Retrain it from scratch with\n"
        f"#   python run_search.py train --config {shown(folder) / 'best_config.yaml'} --seeds 3\n"
        "# `result` records the trial that earned it; `train` ignores that section.\n"
    )
    return header + cfg.dump_yaml(config, {"result": result})


def shown(folder: Path) -> Path:
    """The folder as the user would type it: relative to here when inside it."""
    relative = os.path.relpath(folder.resolve())
    return Path(relative) if not relative.startswith("..") else folder.resolve()


def summary_md(
    folder: Path,
    s: Settings,
    record: dict,
    trials: list[Trial],
    ranked: list[Trial],
    counts: Counter,
    finished: bool,
    plots: list[str],
) -> str:
    metric, max_iters = s.metric, s.max_iters
    wall = float(record.get("wall_s", 0.0))
    cpus = float(record.get("cpus", 0.0))
    busy = sum(t.busy_s for t in trials)
    spent = sum(t.iterations for t in trials)
    full = len(trials) * max_iters
    lines = [
        f"# Search {folder.name}",
        "",
        f"{s.num_samples} trials of the `{s.space}` space on {s.env}: "
        f"{s.searcher} searcher, {s.scheduler} scheduler, up to {max_iters} iterations "
        f"a trial, optimising `{metric}` ({mode_of(metric)}).",
        "",
        "State: " + ("finished." if finished else "**interrupted** (resume with `--resume`)."),
        "",
        "| status | trials |",
        "|---|---|",
        *(f"| {status} | {counts[status]} |" for status in STATUSES),
        "",
        f"- Wall time: {wall / 60:.1f} min"
        + (
            f"; utilisation {busy / (wall * cpus):.2f} (trial busy time {busy / 60:.1f} "
            f"min / (wall x {cpus:g} CPUs))"
            if wall > 0 and cpus > 0
            else ""
        ),
        f"- Compute: {spent} trial-iterations against {full} for the same {len(trials)} trials "
        f"run to the full budget (FIFO): {1 - spent / full:.0%} saved by pruning."
        if full
        else "- Compute: no trial ran.",
        "",
        f"## Top {TOP}",
        "",
    ]
    columns = sorted({k for t in ranked[:TOP] for k in t.params})
    lines += [
        "| trial | status | iters | "
        + " | ".join(f"last {m}" for m in EXPORTED[:4])
        + " | "
        + " | ".join(columns)
        + " |",
        "|---" * (7 + len(columns)) + "|",
    ]
    for t in ranked[:TOP]:
        cells = [t.trial_id, t.status, str(t.iterations)]
        cells += [fmt(t.last(m)) for m in EXPORTED[:4]]
        cells += [fmt_param(t.params.get(k, "")) for k in columns]
        lines.append("| " + " | ".join(cells) + " |")
    failures = [(t, n, reason) for t in trials for n, reason in enumerate(t.failures, 1)]
    if failures:
        retries = f"up to {s.max_failures} times"
        lines += [
            "",
            "## Failures",
            "",
            f"A failed trial is retried from its last checkpoint, {retries}.",
            "",
        ]
        lines += [
            f"- {t.trial_id} ({t.status}), failure {n}: {reason}" for t, n, reason in failures
        ]
    lines += ["", "Plots: " + ", ".join(f"`plots/{p}`" for p in plots), ""]
    return "\n".join(lines)


def fmt_param(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)

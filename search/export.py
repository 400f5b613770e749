"""Exports of a search folder, finished or interrupted: ``best_config.yaml``, ``trials.csv``,
``summary.md`` and ``plots/``. Every file is rebuilt from the trials on disk, so exporting
twice gives the same files and an interrupted search can be exported at any time.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from core import config as cfg
from core.checkpoint import jsonable
from core.metrics import EXPORTED, TEST, mode_of
from core.statistics import rank_agreement
from data.errors import command
from data.files import write_atomically
from search import finalists
from search.finalists import Finalist
from search.outcome import Outcome, read_outcome
from search.plots import plot_search
from search.results import STATUSES, Trial
from search.settings import Settings

TOP = 5


def export(folder: Path) -> Outcome:
    """(Re)write the exports of ``folder``; returns what they were written from."""
    outcome = read_outcome(folder)
    folder, record, trials = outcome.folder, outcome.record, outcome.trials
    settings, base = record.settings, record.base_config
    retrained, best = outcome.retrained, outcome.best
    write_atomically(folder / "trials.csv", trials_csv(trials, settings.metric).encode())
    winner = retrained[0] if retrained and retrained[0].runs else None
    if winner is not None:
        exported = finalist_config(winner, retrained, settings, base, folder)
        write_atomically(folder / "best_config.yaml", exported.encode())
    elif best is not None:
        exported = best_config(best, settings, base, folder)
        write_atomically(folder / "best_config.yaml", exported.encode())
    plots = plot_search(folder / "plots", trials, settings, retrained)
    summary = summary_md(outcome, plots)
    summary = summary.replace(
        f"## Top {TOP}", finalists_md(retrained, record.chosen, settings) + f"## Top {TOP}"
    )
    write_atomically(folder / "summary.md", summary.encode())
    return outcome


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


def best_config(best: Trial, settings: Settings, base: cfg.Config, folder: Path) -> str:
    """Exactly what ``train --config`` consumes (the four sections), plus where it came from:
    the best trial, when no finalist has finished. A retrain repeats the trial and then rolls
    out the test episodes."""
    config = cfg.from_flat(best.coordinates, base, where="trial parameters")
    config = cfg.override(config, "train.test_episodes", settings.test_episodes)
    checkpoint = best.checkpoint
    result = {
        "search": folder.name,
        "trial_id": best.trial_id,
        "status": best.status,
        "iterations": best.iterations,
        "metrics": {m: best.last(m) for m in EXPORTED if math.isfinite(best.last(m))},
        "checkpoint": str(checkpoint.relative_to(folder)) if checkpoint else None,
    }
    return header(folder, 3, "the trial that earned it") + cfg.dump_yaml(config, {"result": result})


def header(folder: Path, seeds: int, what: str) -> str:
    return (
        f"# Best configuration of search {folder.name}. Retrain it from scratch with\n"
        f"#   {command()} train --config {shown(folder) / 'best_config.yaml'} "
        f"--seeds {seeds}\n"
        f"# `result` records {what}; `train` ignores that section.\n"
    )


def finalist_config(
    winner: Finalist, retrained: list[Finalist], settings: Settings, base: cfg.Config, folder
) -> str:
    """The winning finalist's configuration, with its first training seed (so ``--seeds N``
    repeats its N runs), and what it earned: each seed's test figures, their mean and 95%
    interval, the search's own figure and the gap, and the incumbent's figures beside."""
    seeds = sorted(winner.runs)
    values = {**winner.values, "train.seed": seeds[0]}
    config = cfg.from_flat(values, finalists.finalist_base(base, settings), where="finalist")
    incumbent = next(f for f in retrained if f.name == finalists.INCUMBENT)
    result = {
        "search": folder.name,
        "finalist": winner.name,
        "seeds": {seed: reported(winner.runs[seed]) for seed in seeds},
        **{m: interval(winner, m) for m in TEST},
        "search eval/return": jsonable(winner.search_figure),
        "gap (test/return - search eval/return)": jsonable(winner.gap),
        "incumbent": {m: interval(incumbent, m) for m in TEST},
        **compared(winner, incumbent),
    }
    what = f"finalist {winner.name}, retrained on {len(seeds)} seeds and judged on test episodes"
    return header(folder, len(seeds), what) + cfg.dump_yaml(config, {"result": result})


def compared(winner: Finalist, incumbent: Finalist) -> dict:
    """The verdict's figures for best_config.yaml: paired, or (a search of an earlier
    version, without each episode's figures) whether the unpaired intervals overlap."""
    c = finalists.compared(winner, incumbent)
    if c is None:
        return {"beats the incumbent beyond the 95% intervals": finalists.beats(winner, incumbent)}
    return {
        "against the incumbent (paired test/return)": {
            "verdict": c.verdict,
            "difference": c.difference,
            "ci95": [c.low, c.high],
            "probability of improvement": c.improvement,
            "iqm": {"winner": c.iqm[0], "incumbent": c.iqm[1]},
            "seeds": c.seeds,
        }
    }


def reported(result: dict) -> dict:
    return {m: jsonable(result.get(m, math.nan)) for m in finalists.REPORTED}


def interval(finalist: Finalist, metric: str) -> dict:
    mean, half = finalist.interval(metric)
    return {"mean": jsonable(mean), "ci95": jsonable(half), "seeds": len(finalist.runs)}


SHOWN = ("test/return", "test/success", "test/len_ratio")  # the ranking metric first


def finalists_md(retrained: list[Finalist], chosen, settings: Settings) -> str:
    """The finalists' table: test figures over seeds with 95% intervals, the search's own
    figure and the gap; then the verdict of the winner against the incumbent."""
    if not retrained:
        return ""
    raced = (
        f" The race added {len(chosen.races)} round(s) of one seed to the finalists still "
        "undecided against the incumbent."
        if chosen.races
        else ""
    )
    lines = [
        "## Finalists",
        "",
        f"Each retrained from scratch on seeds {chosen.seeds} and rolled out on "
        f"{settings.test_episodes} test episodes a seed (never used to choose).{raced} Mean ± "
        "95% interval over seeds; `search eval/return` is what its trial scored on the "
        "selection episodes in the search, and `gap` is test/return minus that.",
        "",
        f"| finalist | seeds | {' | '.join(SHOWN)} | unseen layouts | search eval/return | gap "
        "| values |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in retrained:
        cells = [f.name, f"{len(f.runs)}/{len(chosen.seeds_of(f.name))}"]
        cells += [pm(*f.interval(m)) for m in SHOWN]
        unseen = f.interval("test/unseen_episodes")[0]
        cells += [f"{unseen:.0f} of {settings.test_episodes}" if math.isfinite(unseen) else ""]
        cells += [fmt(f.search_figure), fmt(f.gap)]
        cells += [", ".join(f"{k}={fmt_param(v)}" for k, v in sorted(f.values.items())) or "preset"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", verdict(retrained), "", ""]
    return "\n".join(lines)


def verdict(retrained: list[Finalist]) -> str:
    """One line: is the winner better than the incumbent, worse, or is it undecided?"""
    winner = retrained[0]
    incumbent = next(f for f in retrained if f.name == finalists.INCUMBENT)
    if not winner.runs:
        return "No finalist has finished a run yet."
    w, i = winner.interval("test/return"), incumbent.interval("test/return")
    if winner is incumbent:
        return f"The incumbent (the preset) is the best finalist: test/return {pm(*w)}."
    c = finalists.compared(winner, incumbent)
    if c is not None:
        return (
            f"Verdict: {c.verdict}. {winner.name} against the incumbent, paired on {c.seeds} "
            f"seeds and the same test episodes: test/return {c.shown} "
            f"(95%, stratified bootstrap), P(improvement) "
            f"{c.improvement:.2f}, IQM over seeds {c.iqm[0]:.3f} against {c.iqm[1]:.3f}."
        )
    if min(len(winner.runs), len(incumbent.runs)) < 2:
        return (
            f"{winner.name} has the best mean test/return, {pm(*w)} against the incumbent's "
            f"{pm(*i)}; one seed gives no interval, so whether it is better stays open "
            "(--finalist-seeds 3 tells)."
        )
    if finalists.beats(winner, incumbent):
        return (
            f"{winner.name} beats the incumbent beyond the 95% intervals: test/return "
            f"{pm(*w)} against {pm(*i)}."
        )
    return (
        f"{winner.name} has the best mean test/return, {pm(*w)} against the incumbent's "
        f"{pm(*i)}, but the 95% intervals overlap: not a demonstrated improvement."
    )


def pm(mean: float, half: float) -> str:
    if not math.isfinite(mean):
        return ""
    return f"{mean:.3f} ± {half:.3f}" if math.isfinite(half) else f"{mean:.3f}"


def shown(folder: Path) -> Path:
    """The folder as the user would type it: relative to here when inside it."""
    relative = os.path.relpath(folder.resolve())
    return Path(relative) if not relative.startswith("..") else folder.resolve()


def summary_md(outcome: Outcome, plots: list[str]) -> str:
    folder, record, trials, ranked = outcome.folder, outcome.record, outcome.trials, outcome.ranked
    s = record.settings
    metric, max_iters = s.metric, s.max_iters
    wall, cpus = record.trials_wall_s, record.cpus
    busy = sum(t.busy_s for t in trials)
    counts = outcome.counts
    lines = [
        f"# Search {folder.name}",
        "",
        f"{s.num_samples} trials of the `{s.space}` space on {s.env}: "
        f"{s.searcher} searcher, {s.scheduler} scheduler, up to {max_iters} iterations "
        f"a trial, optimising `{metric}` ({mode_of(metric)}).",
        "",
        "State: "
        + ("finished." if outcome.finished else "**interrupted** (resume with `--resume`).")
        + (
            f" The time budget ({s.time_budget:g} s) ended the trials after {len(trials)} "
            f"of {s.num_samples}."
            if record.budget_spent
            else ""
        ),
        "",
        "| status | trials |",
        "|---|---|",
        *(f"| {status} | {counts[status]} |" for status in STATUSES),
        "",
        f"- Wall time of the trials: {wall / 60:.1f} min"
        + (
            f"; utilisation {busy / (wall * cpus):.2f} (trial busy time {busy / 60:.1f} "
            f"min / (wall x {cpus:g} CPUs))"
            if wall > 0 and cpus > 0
            else ""
        ),
        compute_line(trials, max_iters),
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
    lines += pruning_md(outcome)
    lines += ["", "Plots: " + ", ".join(f"`plots/{p}`" for p in plots), ""]
    return "\n".join(lines)


def compute_line(trials: list[Trial], max_iters: int) -> str:
    """Trial-iterations spent, and what pruning saved: only trials the scheduler stopped count
    (an unfinished trial's missing iterations were not saved, just not yet run)."""
    if not trials:
        return "- Compute: no trial ran."
    spent = sum(t.iterations for t in trials)
    pruned = [t for t in trials if t.status == "pruned"]
    if not pruned:
        return f"- Compute: {spent} trial-iterations; no trial was stopped early."
    saved = sum(max_iters - t.iterations for t in pruned)
    return (
        f"- Compute: {spent} trial-iterations; stopping {len(pruned)} trial(s) early saved "
        f"{saved} of the {spent + saved} the same trials would have spent run to the full "
        f"budget ({saved / (spent + saved):.0%})."
    )


def fmt_param(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def rungs(settings: Settings) -> list[int]:
    """The iterations at which ASHA judges trials (its milestones below the full budget)."""
    found, milestone = [], settings.grace_period
    while settings.scheduler == "asha" and milestone < settings.max_iters:
        found.append(int(milestone))
        milestone *= settings.reduction_factor
    return sorted(set(found))


def pruning_md(outcome: Outcome) -> list[str]:
    """Is pruning sound on this task? Kendall's tau (95% bootstrap interval over trials)
    between the metric at each rung and at the end, over the trials that ran the full budget;
    and between the search's figure and the test return, over the finalists."""
    s = outcome.record.settings
    full = [t for t in outcome.trials if t.status == "completed"]
    rows = []
    for milestone in rungs(s):
        early = [t.at(milestone, s.metric) for t in full]
        final = [t.last(s.metric) for t in full]
        kept = [(a, b) for a, b in zip(early, final, strict=True) if math.isfinite(a + b)]
        rows.append((f"{s.metric} at iteration {milestone}", f"{s.metric} at the end", kept))
    ran = [f for f in outcome.retrained if f.runs and math.isfinite(f.search_figure)]
    pairs = [(f.search_figure, f.interval("test/return")[0]) for f in ran]
    rows.append(("the search's eval/return", "the finalists' mean test/return", pairs))
    lines = [
        "",
        "## Is pruning sound here?",
        "",
        "Kendall's tau between what was known early and what came out, with its 95% bootstrap "
        "interval over trials: near 1, the early figure orders the trials as the final one "
        "does, and stopping the low ones early loses little; near 0 or below, ASHA stops "
        "trials on noise.",
        "",
        "| early | final | trials | Kendall's tau |",
        "|---|---|---|---|",
    ]
    for early, final, kept in rows:
        tau, low, high = rank_agreement([a for a, _ in kept], [b for _, b in kept])
        shown = f"{tau:+.2f} [{low:+.2f}, {high:+.2f}]" if math.isfinite(tau) else "too few"
        lines.append(f"| {early} | {final} | {len(kept)} | {shown} |")
    return lines

"""Compare runs side by side: the finalists of searches and the seeds of `train` runs, on their
test figures (one row each, mean and 95% interval over seeds) and their learning curves, as
one table and one plot (rl-baselines3-zoo's all_plots, for this tool's folders).

A *run* is a search folder (``results/NAME``: each finalist is a row, its seeds those it was
retrained on) or a `train` output folder (``--out``: one row, its seeds). Every figure is a
test figure: episodes nothing was chosen on. Each row after the first is also set against the
first, paired on the training seeds and test episodes both played (the finalists' verdict,
core/statistics.py): is it better, worse, or is that undecided?
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from core.metrics import TEST, TIME  # noqa: E402
from core.statistics import Comparison, mean_interval, paired_comparison  # noqa: E402
from data.errors import BadInput  # noqa: E402
from data.files import write_atomically  # noqa: E402
from search.outcome import read_outcome  # noqa: E402
from search.record import SETTINGS_FILE  # noqa: E402
from search.results import read_tested, read_trials  # noqa: E402

CURVE = "eval/return"  # the learning curves: selection return by iteration


@dataclass
class Compared:
    """One row: a name, each seed's last (test) figures, its curve and its test episodes."""

    name: str
    env: str
    seeds: dict[str, dict]  # seed -> last result
    curves: dict[str, list[tuple[int, float]]]  # seed -> [(iteration, value)]
    tested: dict[str, list[dict]] = field(default_factory=dict)  # seed -> each test episode

    def interval(self, metric: str) -> tuple[float, float]:
        return mean_interval([r.get(metric, math.nan) for r in self.seeds.values()])


def read_runs(folders: list[Path]) -> list[Compared]:
    rows: list[Compared] = []
    names = short_names(folders)
    for folder in folders:
        if (folder / SETTINGS_FILE).is_file():
            rows.extend(from_search(folder, names[folder]))
        elif (folder / "metrics.json").is_file():
            rows.append(from_train(folder, names[folder]))
        else:
            raise BadInput(
                f"{folder} is neither a search folder (results/NAME) nor a finished `train` run "
                "(its --out, with metrics.json): pass those"
            )
    return rows


def short_names(folders: list[Path]) -> dict[Path, str]:
    """Each folder's name: its last part, or as many of its last parts as tell it from the
    others (results/a/default/ENV and results/b/default/ENV: a/default/ENV, b/default/ENV)."""
    parts = {folder: Path(folder).resolve().parts for folder in folders}
    distinct = len(set(parts.values()))
    for k in range(1, max(map(len, parts.values())) + 1):
        names = {folder: "/".join(p[-k:]) for folder, p in parts.items()}
        if len(set(names.values())) == distinct:
            return names
    return {folder: str(folder) for folder in folders}


def from_search(folder: Path, label: str) -> list[Compared]:
    outcome = read_outcome(folder)
    if not outcome.retrained:
        raise BadInput(
            f"{folder} has no finalists retrained yet (a search with --finalists 0, or one not "
            "finished): compare searches whose finalists ran"
        )
    max_iters = outcome.record.settings.max_iters
    runs = [
        run
        for name in outcome.record.chosen.experiments()
        if (folder / name).is_dir()
        for run in read_trials(folder / name, max_iters)
    ]
    rows = []
    for finalist in outcome.retrained:
        mine = [r for r in runs if r.params.get("finalist") == finalist.name and r.history]
        curves = {str(r.params["train.seed"]): points(r.history) for r in mine}
        seeds = {str(seed): result for seed, result in finalist.runs.items()}
        tested = {
            str(r.params["train.seed"]): episodes
            for r in mine
            if r.checkpoint is not None and (episodes := read_tested(r.checkpoint.parent))
        }
        env = outcome.record.settings.env
        rows.append(Compared(f"{label}/{finalist.name}", env, seeds, curves, tested))
    return rows


def from_train(folder: Path, label: str) -> Compared:
    try:
        summary = json.loads((folder / "metrics.json").read_text())
        seeds, env = summary["seeds"], summary["config"]["data"]["env"]
    except (OSError, ValueError, KeyError, TypeError):
        raise BadInput(f"{folder}/metrics.json is damaged; pass a finished `train` run") from None
    curves, tested = {}, {}
    for seed in seeds:
        history = folder / f"seed{seed}" / "history.jsonl"
        if history.is_file():
            lines = [json.loads(line) for line in history.read_text().splitlines() if line]
            curves[seed] = points(lines)
        episodes = read_tested(folder / f"seed{seed}")
        if episodes:
            tested[seed] = episodes
    return Compared(label, env, seeds, curves, tested)


def points(history: list[dict]) -> list[tuple[int, float]]:
    return [
        (int(r[TIME]), float(r[CURVE]))
        for r in history
        if isinstance(r.get(CURVE), int | float) and math.isfinite(r[CURVE])
    ]


FIGURES = ("success", "return")  # each test episode's figures set against the first row's


def paired(row: Compared, base: Compared) -> dict[str, Comparison] | str:
    """``row`` against ``base`` on each test episode's figures, over the training seeds both
    have and the same test episodes; or why they cannot be paired."""
    if row.env != base.env:
        return "another environment"
    seeds = sorted(set(row.tested) & set(base.tested))
    if not seeds:
        return "no training seed that both kept test episodes of"
    for seed in seeds:
        if [e.get("seed") for e in row.tested[seed]] != [e.get("seed") for e in base.tested[seed]]:
            return "other test episodes (another data seed or episode count)"
    try:
        return {
            figure: paired_comparison(
                {s: [float(e[figure]) for e in row.tested[s]] for s in seeds},
                {s: [float(e[figure]) for e in base.tested[s]] for s in seeds},
            )
            for figure in FIGURES
        }
    except (KeyError, TypeError, ValueError):
        return "its test episodes are damaged"


def paired_table(rows: list[Compared]) -> str:
    """Markdown: each row after the first against the first, paired; the verdict on return."""
    base = rows[0]
    lines = [
        f"Paired against {base.name}: the same training seeds and test episodes, each figure's "
        "mean difference and its 95% interval (stratified bootstrap over seeds and episodes; "
        "with one seed it holds the episodes' luck, not another training's).",
        "",
        "| run | seeds | Δ test/success | Δ test/return | P(improvement) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows[1:]:
        c = paired(row, base)
        if isinstance(c, str):
            lines.append(f"| {row.name} | | | | | not paired: {c} |")
            continue
        cells = [x.shown for x in c.values()]
        ret = c["return"]
        lines.append(
            f"| {row.name} | {ret.seeds} | {' | '.join(cells)} | {ret.improvement:.2f} | "
            f"{ret.verdict} |"
        )
    return "\n".join(lines) + "\n"


def table(rows: list[Compared]) -> str:
    """Markdown: each row's test figures, mean ± 95% interval over its seeds; then each row
    after the first paired against it."""
    lines = [
        f"| run | environment | seeds | {' | '.join(TEST)} |",
        "|---|---|---|" + "---|" * len(TEST),
    ]
    for row in rows:
        cells = [row.name, row.env, str(len(row.seeds))]
        for metric in TEST:
            mean, half = row.interval(metric)
            cells.append(
                ""
                if not math.isfinite(mean)
                else f"{mean:.3f} ± {half:.3f}"
                if math.isfinite(half)
                else f"{mean:.3f}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    return text + "\n" + paired_table(rows) if len(rows) > 1 else text


def plot(rows: list[Compared]) -> bytes:
    """Left: each row's test return by seed (dots), mean and 95% interval; right: its mean
    learning curve over seeds (selection return by iteration)."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = plt.get_cmap("tab10")
    for i, row in enumerate(rows):
        colour = colours(i % 10)
        values = [r.get("test/return", math.nan) for r in row.seeds.values()]
        left.scatter([i] * len(values), values, color=colour, s=12, alpha=0.6)
        mean, half = row.interval("test/return")
        if math.isfinite(mean):
            left.errorbar(
                i,
                mean,
                yerr=half if math.isfinite(half) else 0,
                color=colour,
                marker="o",
                capsize=4,
            )
        curves = [dict(curve) for curve in row.curves.values() if curve]
        iterations = sorted({x for curve in curves for x in curve})
        means = [
            sum(c[x] for c in curves if x in c) / sum(x in c for c in curves) for x in iterations
        ]
        right.plot(iterations, means, color=colour, marker=".", label=row.name)
    left.set_xticks(
        range(len(rows)), [row.name for row in rows], rotation=30, ha="right", fontsize=8
    )
    left.set_ylabel("test/return (per seed; mean ± 95% interval)")
    left.grid(alpha=0.3)
    right.set_xlabel("iteration")
    right.set_ylabel(f"{CURVE} (mean over seeds)")
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def compare(folders: list[Path], out: Path) -> list[Compared]:
    """Write ``out``/compare.md and compare.png for the runs in ``folders``."""
    rows = read_runs(folders)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "compare.md", table(rows).encode())
    write_atomically(out / "compare.png", plot(rows))
    return rows

"""Quality table: each preset trained on each environment with the real `train` command, on
several training seeds, and judged on the test episodes (never used to choose anything).
Prints JSON and writes OUT/table.md and OUT/curves.png.

    python -m bench.quality                      # 7 envs; default and bc on 3 seeds, seed on 1
    python -m bench.quality --envs MiniGrid-FourRooms-v0 --presets default --seeds 3
    python -m bench.quality --report             # the table of what has finished so far
    python -m bench.quality --report --plan diffusion.temperature=0.25   # the finished runs'
        # checkpoints planning otherwise (`evaluate --set`), on the same test episodes

Runs share the machine (``--jobs`` at a time, one torch thread each; with ``--seed-jobs S``
each run trains S of its seeds side by side, so jobs x S processes), so samples/s is that of
one run beside another. A finished run (its metrics.json exists) is not trained again; an
interrupted one is resumed, so the table can be built over several sittings.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.statistics import mean_interval
from run_search import RUN_FILE
from search.compare import from_train, paired

ROOT = Path(__file__).resolve().parents[1]

ENVS = [
    "MiniGrid-Empty-8x8-v0",
    "MiniGrid-DoorKey-5x5-v0",
    "MiniGrid-DoorKey-8x8-v0",
    "MiniGrid-SimpleCrossingS9N1-v0",
    "MiniGrid-LavaCrossingS9N3-v0",
    "MiniGrid-MultiRoom-N4-S5-v0",
    "MiniGrid-FourRooms-v0",
]
SEEDS = {"default": 3, "bc": 3, "memory": 3, "seed": 1}  # seed: a reference point, not a rival

# (metric, header, format): mean over seeds; the quality figures with their 95% interval.
COLUMNS = [
    ("test/success", "test success", ".2f"),
    ("test/return", "test return", ".2f"),
    ("test/len_ratio", "length / expert", ".2f"),
    ("test/unseen_episodes", "unseen layouts", ".0f"),
    ("perf/samples_per_s", "samples/s", ".0f"),
    ("time/minutes", "minutes a seed", ".1f"),
]
WITH_INTERVAL = {"test/success", "test/return", "test/len_ratio"}


def command(
    preset: str, env: str, seeds: int, out: Path, sets: list[str], seed_jobs: int = 1
) -> list[str]:
    train = [sys.executable, "run_search.py", "train", "--out", str(out), "--jobs", str(seed_jobs)]
    if (out / RUN_FILE).exists():  # an interrupted run: go on from its checkpoints
        return [*train, "--resume"]
    extra = [arg for item in ["train.threads=1", *sets] for arg in ("--set", item)]
    return [*train, "--preset", preset, "--env", env, "--seeds", str(seeds), *extra]


def run(
    preset: str,
    env: str,
    seeds: int,
    root: Path,
    sets: list[str],
    train: bool,
    plan: list[str],
    seed_jobs: int = 1,
) -> dict:
    """One row of the table: trains the run first unless it is finished or ``train`` is off
    (then an unfinished run is an empty row). With ``plan`` (``key=value`` of how a policy
    plans), the test figures are those of the run's checkpoints planning so."""
    out = root / preset / env
    row = {"env": env, "preset": preset, "seeds": seeds}
    if not (out / "metrics.json").exists() and not train:
        return row
    if not (out / "metrics.json").exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(root / f"{preset}-{env}.log", "a") as log:
            done = subprocess.run(
                command(preset, env, seeds, out, sets, seed_jobs), cwd=ROOT, stdout=log, stderr=log
            )
        if done.returncode != 0:  # reported in the table as n/a; the other runs go on
            return row
    summary = json.loads((out / "metrics.json").read_text())
    row["seeds"] = len(summary["seeds"])
    for key, _, _ in COLUMNS:
        half = summary["ci95"].get(key) if key in WITH_INTERVAL else None
        row[key] = [summary["mean"].get(key), half]
    if plan:
        replanned = [replan(out / f"seed{seed}", plan) for seed in summary["seeds"]]
        for key in WITH_INTERVAL | {"test/unseen_episodes"}:
            if None in replanned:  # not every seed planned again: n/a, not a partial mean
                row[key] = None
                continue
            mean, half = mean_interval([metrics.get(key) for metrics in replanned])
            row[key] = [mean, half if key in WITH_INTERVAL else None]
    return row


def replan(folder: Path, plan: list[str]) -> dict | None:
    """The test figures of ``folder``'s checkpoint planning as ``plan`` says, on the test
    episodes its run reported on (kept in ``folder``, computed once); None, and evaluate's
    one line on stderr, where it cannot (a run whose checkpoints were not kept)."""
    path = folder / f"test-{'-'.join(plan)}.json"
    if not path.exists():
        episodes = json.loads((folder / "checkpoint.json").read_text())["metrics"]
        count = int(episodes["test/episodes"])
        evaluate = [sys.executable, "run_search.py", "evaluate", str(folder / "checkpoint.pt")]
        evaluate += ["--episodes", str(count), *(a for item in plan for a in ("--set", item))]
        done = subprocess.run(evaluate, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{folder}: {done.stderr.strip()}", file=sys.stderr)
            return None
        metrics, _ = json.JSONDecoder().raw_decode(done.stdout)
        path.write_text(json.dumps(metrics, indent=2) + "\n")
    return json.loads(path.read_text())


def cell(value: list | None, fmt: str) -> str:
    if value is None or value[0] is None or not math.isfinite(value[0]):
        return "n/a"
    mean, half = value
    return (
        f"{mean:{fmt}} ± {half:{fmt}}"
        if half is not None and math.isfinite(half)
        else f"{mean:{fmt}}"
    )


def table(rows: list[dict]) -> str:
    headers = ["env", "preset", "seeds", *(header for _, header, _ in COLUMNS)]
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    for row in rows:
        cells = [row["env"].removeprefix("MiniGrid-"), row["preset"], str(row["seeds"])]
        cells += [cell(row.get(key), fmt) for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def versus(root: Path, envs: list[str], preset: str = "default", rival: str = "bc") -> str:
    """Per environment: ``preset``'s test figures against ``rival``'s, paired on the training
    seeds and test episodes both played (`compare`'s verdict, on return)."""
    lines = [
        f"| env | seeds | {preset} − {rival}: test success | test return | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for env in envs:
        a, b = root / preset / env, root / rival / env
        if not (a / "metrics.json").exists() or not (b / "metrics.json").exists():
            continue
        c = paired(from_train(a, preset), from_train(b, rival))
        if isinstance(c, str):
            lines.append(f"| {env} | | | | not paired: {c} |")
            continue
        cells = " | ".join(x.shown for x in c.values())
        lines.append(f"| {env} | {c['return'].seeds} | {cells} | {c['return'].verdict} |")
    return "\n".join(lines) + "\n"


def plot(root: Path, envs: list[str], presets: list[str], path: Path) -> None:
    """Success on the selection episodes against training iterations, mean over seeds, one
    panel per environment (four to a row) and one legend for all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(4, len(envs))
    rows = -(-len(envs) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    colours = dict(zip(presets, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    for ax, env in zip(axes.flat, envs, strict=False):
        for preset in presets:
            curves: dict[int, list[float]] = {}
            for history in sorted((root / preset / env).glob("seed*/history.jsonl")):
                for line in history.read_text().splitlines():
                    r = json.loads(line)
                    if "eval/success" in r:
                        curves.setdefault(r["iteration"], []).append(r["eval/success"])
            if curves:
                means = [np.mean(v) for v in curves.values()]
                ax.plot(list(curves), means, marker="o", color=colours[preset], label=preset)
        ax.set_title(env.removeprefix("MiniGrid-"), fontsize=9)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("iteration (100 updates)")
    for ax in axes[:, 0]:
        ax.set_ylabel("success, selection episodes")
    for ax in axes.flat[len(envs) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colours[p], marker="o", label=p) for p in presets]
    title = "preset (mean over seeds)"
    if len(envs) < axes.size:  # an empty panel holds the legend
        axes.flat[-1].legend(handles=handles, loc="center", title=title)
        fig.tight_layout()
    else:  # every panel is used: the legend goes below them, in a strip kept free for it
        fig.legend(handles=handles, loc="lower center", ncol=len(presets), title=title)
        fig.tight_layout(rect=(0, 0.75 / fig.get_figheight(), 1, 1))
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=ENVS)
    parser.add_argument("--presets", nargs="+", default=list(SEEDS))
    parser.add_argument(
        "--seeds", type=int, help="training seeds for every preset (default: SEEDS)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs (table rows) at a time")
    parser.add_argument(
        "--seed-jobs", type=int, default=1, help="seeds of a run side by side (`train --jobs`)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "quality")
    parser.add_argument("--set", action="append", default=[], help="extra overrides, all runs")
    parser.add_argument(
        "--report", action="store_true", help="train nothing: the table of the finished runs"
    )
    parser.add_argument(
        "--plan",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="test figures of the checkpoints planning otherwise (evaluate --set)",
    )
    args = parser.parse_args()
    # Preset by preset, so that a table cut short has whole presets rather than whole envs.
    jobs = [(p, e, args.seeds or SEEDS.get(p, 3)) for p in args.presets for e in args.envs]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(
            pool.map(
                lambda job: run(
                    *job, args.out, args.set, not args.report, args.plan, args.seed_jobs
                ),
                jobs,
            )
        )
    rows.sort(key=lambda row: (args.envs.index(row["env"]), args.presets.index(row["preset"])))
    tag = f"-{'-'.join(args.plan)}" if args.plan else ""
    versus_bc = versus(args.out, args.envs)  # on each run's own test episodes, not replanned
    (args.out / f"table{tag}.md").write_text(table(rows) + "\n" + versus_bc)
    plot(args.out, args.envs, args.presets, args.out / "curves.png")
    print(json.dumps(rows, indent=2))
    print(table(rows))
    print(versus_bc)


if __name__ == "__main__":
    main()

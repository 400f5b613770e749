"""Quality table: each preset trained on each environment with the real `train` command, then
rolled out on 100 held-out seeds. Prints JSON and writes OUT/table.md.

    python bench/quality.py                      # 5 envs x 3 presets, 2 runs at a time
    python bench/quality.py --envs MiniGrid-DoorKey-8x8-v0 --presets default bc

Runs share the machine (``--jobs`` at a time, one torch thread each), so samples/s is that of
one run beside another. A run whose metrics.json exists is not trained again.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENVS = [
    "MiniGrid-Empty-8x8-v0",
    "MiniGrid-DoorKey-5x5-v0",
    "MiniGrid-DoorKey-8x8-v0",
    "MiniGrid-SimpleCrossingS9N1-v0",
    "MiniGrid-FourRooms-v0",
]
PRESETS = ["default", "seed", "bc"]


def command(preset: str, env: str, out: Path, sets: list[str]) -> list[str]:
    extra = [arg for item in sets for arg in ("--set", item)]
    return [
        sys.executable,
        "run_search.py",
        "train",
        "--preset",
        preset,
        "--env",
        env,
        "--set",
        "train.eval_episodes=100",
        "--set",
        "train.threads=1",
        *extra,
        "--out",
        str(out),
    ]


def run(preset: str, env: str, root: Path, sets: list[str]) -> dict:
    out = root / preset / env
    if not (out / "metrics.json").exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(root / f"{preset}-{env}.log", "w") as log:
            done = subprocess.run(command(preset, env, out, sets), cwd=ROOT, stdout=log, stderr=log)
        if done.returncode != 0:  # reported in the table; the other runs go on
            return {"env": env, "preset": preset, **dict.fromkeys(COLUMNS)}
    mean = json.loads((out / "metrics.json").read_text())["mean"]
    return {"env": env, "preset": preset, **{k: mean.get(k) for k in COLUMNS}}


COLUMNS = ["eval/success", "eval/return", "eval/len_ratio", "perf/samples_per_s", "time/minutes"]


def table(rows: list[dict]) -> str:
    lines = [
        "| env | preset | success | return | length / expert | samples/s | minutes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = [
            "n/a"
            if row[k] is None
            else f"{row[k]:.0f}"
            if k.startswith("perf")
            else f"{row[k]:.2f}"
            for k in COLUMNS
        ]
        lines.append(
            f"| {row['env'].removeprefix('MiniGrid-')} | {row['preset']} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def plot(root: Path, envs: list[str], presets: list[str], path: Path) -> None:
    """Held-out success against training iterations, one panel per environment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(envs), figsize=(3.2 * len(envs), 3), sharey=True)
    for ax, env in zip(np.atleast_1d(axes), envs, strict=True):
        for preset in presets:
            history = root / preset / env / "seed0" / "history.jsonl"
            if not history.exists():
                continue
            rows = [json.loads(line) for line in history.read_text().splitlines()]
            points = [(r["iteration"], r["eval/success"]) for r in rows if "eval/success" in r]
            ax.plot(*zip(*points, strict=True), marker="o", label=preset)
        ax.set_title(env.removeprefix("MiniGrid-"), fontsize=9)
        ax.set_xlabel("iteration (100 updates)")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("success, 100 held-out episodes")
    np.atleast_1d(axes)[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=ENVS)
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "quality")
    parser.add_argument("--set", action="append", default=[], help="extra overrides, all runs")
    args = parser.parse_args()
    jobs = [(p, e) for e in args.envs for p in args.presets]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda job: run(*job, args.out, args.set), jobs))
    (args.out / "table.md").write_text(table(rows))
    plot(args.out, args.envs, args.presets, args.out / "curves.png")
    print(json.dumps(rows, indent=2))
    print(table(rows))


if __name__ == "__main__":
    main()

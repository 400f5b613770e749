"""What a search says on the terminal: where to look when it starts, what it found at the end."""

from __future__ import annotations

from pathlib import Path

from search import cluster
from search.settings import Settings


def announce(settings: Settings, folder: Path, placement: cluster.Placement, url: str) -> None:
    print(
        f"search {folder.name}: {settings.num_samples} trials of {settings.space} space on "
        f"{settings.env}, {settings.searcher} + {settings.scheduler}, up to "
        f"{settings.max_iters} iterations each, optimising {settings.metric} ({settings.mode})"
    )
    print(f"placement: {placement.describe()}")
    if url:
        token = " (it asks for a token: paste the output of `ray get-auth-token`)"
        print(f"Ray dashboard: {url}{token if cluster.token_auth() else ''}")
    print(f"TensorBoard:   tensorboard --logdir {folder}")
    print(f"results:       {folder}")


def report(outcome: dict) -> None:
    """The counts by status, the best trial's figures and values, and how to retrain it."""
    folder, best = outcome["folder"], outcome["best"]
    counts = ", ".join(f"{n} {s}" for s, n in outcome["counts"].items() if n)
    print(f"\ntrials: {counts or 'none'}")
    if best is None:
        print("no trial reported a result yet")
        return
    print(f"best trial {best.trial_id} ({best.status}, {best.iterations} iterations):")
    for key in ("eval/return", "eval/success", "eval/len_ratio", "val/loss"):
        print(f"  {key:<15} {best.last(key):.3f}")
    for key, value in sorted(best.params.items()):
        print(f"  {key:<25} {value:.4g}" if isinstance(value, float) else f"  {key:<25} {value}")
    print(f"wrote {folder / 'best_config.yaml'}, trials.csv, summary.md, plots/")
    print(f"retrain: python run_search.py train --config {folder / 'best_config.yaml'} --seeds 3")

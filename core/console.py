"""What `train` and `evaluate` print: one line an iteration, and what a test report says of
the layouts training never had."""

from __future__ import annotations

from core.metrics import PROGRESS


def progress_line(prefix: str, iteration: int, total: int, metrics: dict, eta_s: float) -> str:
    parts = [f"{prefix}iter {iteration:>3}/{total}"]
    for key in PROGRESS:
        if key in metrics:
            value = metrics[key]
            parts.append(f"{key} {value:.0f}" if key.startswith("perf") else f"{key} {value:.3f}")
    parts.append(f"eta {eta_s // 60:.0f}m{eta_s % 60:02.0f}s")
    return "  ".join(parts)


def describe_unseen(metrics: dict) -> str:
    """One line on how much of a test report is on layouts training never had."""
    n, unseen = int(metrics["test/episodes"]), int(metrics["test/unseen_episodes"])
    if unseen:
        return (
            f"{unseen} of {n} test episodes start from a layout no training episode had; "
            f"success on those: {metrics['test/success_unseen']:.3f}"
        )
    return (
        f"none of the {n} test episodes starts from a layout training lacked (they show "
        f"{int(metrics['test/layouts'])} distinct layout(s), all in the demonstrations): the "
        "environment has too few layouts for any to be unseen"
    )

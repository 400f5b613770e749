"""The search as a Python function, for notebooks and for tools that already run Ray.

    import ray
    from search.api import search
    from search.settings import Settings

    ray.init()                        # your own session (or a cluster's): it stays running
    found = search(Settings(env="MiniGrid-DoorKey-6x6-v0", num_samples=8), name="mine")
    found.results.get_best_result()   # Ray's ResultGrid of the trials
    found.finalist_results            # ... and of the finalists' runs
    found.best_config                 # results/mine/best_config.yaml, for `train --config`

Without a running session, ``search`` starts a local Ray and shuts it down again, as the
command line does. Bad settings raise ``data.errors.BadInput`` before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ray.tune import ResultGrid

from search import tuner
from search.outcome import Outcome
from search.settings import Settings, check


@dataclass
class Found:
    folder: Path  # results_dir/name: Ray Tune's experiment folder and the exports
    results: ResultGrid | None  # the trials (None when a resume found them already done)
    finalist_results: ResultGrid | None  # the finalists' runs (None with finalists=0)
    best_config: Path  # what `train --config` retrains: the winning finalist (or best trial)
    outcome: Outcome  # what was exported: the record, trials ranked, finalists retrained

    @property
    def finished(self) -> bool:
        return self.outcome.finished


def search(
    settings: Settings | None = None,
    results_dir: Path | str = "results",
    name: str = "search",
    resume: bool = False,
    **placement,
) -> Found:
    """Run (or with ``resume=True`` continue) the search ``results_dir/name`` with
    ``settings`` (the defaults are the main job). ``placement`` takes the command line's
    resources: ``cpus_per_trial``, ``gpus_per_trial``, ``max_concurrent``, ``address``
    (and ``extend_to=N`` with ``resume=True`` extends a finished search to N trials)."""
    if settings is not None:
        check(settings)
    outcome, grids = tuner.run(settings or Settings(), Path(results_dir), name, resume, **placement)
    return Found(
        folder=outcome.folder,
        results=grids.get("results"),
        finalist_results=grids.get("finalist_results"),
        best_config=outcome.folder / "best_config.yaml",
        outcome=outcome,
    )

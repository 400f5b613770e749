"""Experiment tracking for `train`: every iteration's metrics to Weights & Biases or MLflow,
the run's configuration as its parameters. (A search logs through Ray's own callbacks, in
search/tuner.py.) Both are optional extras: ``pip install -e ".[track]"``.

Where runs go is each tool's own setting: ``MLFLOW_TRACKING_URI`` (default: an SQLite file
``mlflow.db`` in the run's folder); ``WANDB_MODE=offline`` logs without an account, into
``WANDB_DIR`` (default: the run's folder).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

from data.errors import BadInput

Track = Literal["none", "wandb", "mlflow"]


def mlflow_uri(folder: Path) -> str:
    """The user's MLFLOW_TRACKING_URI, or an SQLite file in the run's folder (MLflow 3 keeps
    its plain-file store in maintenance only)."""
    database = (Path(folder) / "mlflow.db").resolve()
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{database}"


def require(kind: str) -> None:
    """Refuse early, in one line, when the tracker's package is missing."""
    package = {"wandb": "wandb", "mlflow": "mlflow"}.get(kind)
    if package is None:
        return
    try:
        __import__(package)
    except ImportError:
        raise BadInput(
            f"--track {kind} needs the {package} package: pip install -e '.[track]'"
        ) from None
    online = os.environ.get("WANDB_MODE", "online") not in ("offline", "disabled")
    if kind == "wandb" and online and not os.environ.get("WANDB_API_KEY"):
        import wandb

        if not wandb.api.api_key:
            raise BadInput(
                "--track wandb needs an account: `wandb login` or WANDB_API_KEY, or set "
                "WANDB_MODE=offline to log locally and `wandb sync` later"
            )


class Tracker:
    """One tracked run: ``log`` an iteration's metrics, ``close`` at the end."""

    def __init__(self, kind: Track, name: str, params: dict, folder: Path):
        self.kind = kind
        require(kind)
        if kind == "mlflow":
            import mlflow

            mlflow.set_tracking_uri(mlflow_uri(folder))
            mlflow.set_experiment("train")
            self.run = mlflow.start_run(run_name=name)
            mlflow.log_params(params)
        elif kind == "wandb":
            import wandb

            directory = os.environ.get("WANDB_DIR") or str(Path(folder).resolve())
            self.run = wandb.init(project="train", name=name, config=params, dir=directory)

    def log(self, metrics: dict, step: int) -> None:
        finite = {k: float(v) for k, v in metrics.items() if math.isfinite(v)}
        if self.kind == "mlflow":
            import mlflow

            mlflow.log_metrics(finite, step=step)
        elif self.kind == "wandb":
            self.run.log(finite, step=step)

    def close(self) -> None:
        if self.kind == "mlflow":
            import mlflow

            mlflow.end_run()
        elif self.kind == "wandb":
            self.run.finish()

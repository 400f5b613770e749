"""Experiment tracking, offline and read back: an MLflow SQLite store and W&B's offline runs,
for `train` and for a search (through Ray's logger callbacks). No account is needed."""

import glob
import json
import os
import struct
from pathlib import Path

import pytest

from conftest import cli

pytestmark = pytest.mark.slow  # subprocesses, a real search

SETS = [
    "model.hidden=32",
    "model.depth=1",
    "model.heads=2",
    "model.horizon=4",
    "train.steps_per_iter=5",
    "train.iters=3",
    "train.eval_every=1",
    "train.eval_episodes=3",
    "train.test_episodes=3",
    "data.episodes=12",
    "train.threads=1",
    "train.dagger_episodes=4",
]
TINY = [*(a for item in SETS for a in ("--set", item)), "--env", "MiniGrid-Empty-5x5-v0"]


def offline(tmp_path: Path) -> dict:
    return {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }


def mlflow_runs(tmp_path: Path, experiment: str) -> dict[str, dict[str, list[float]]]:
    """Run name -> metric -> its values by step, from MLflow's file store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    found = {}
    for run in client.search_runs([client.get_experiment_by_name(experiment).experiment_id]):
        name = run.info.run_name
        found[name] = {
            key: [
                m.value
                for m in sorted(
                    client.get_metric_history(run.info.run_id, key), key=lambda m: m.step
                )
            ]
            for key in run.data.metrics
        }
    return found


def wandb_history(run_file: str) -> list[dict]:
    """The logged rows of an offline W&B run, read from its .wandb file: a LevelDB-style log
    (32 KiB blocks of records with a 7-byte header) of wandb's own protobuf records."""
    from wandb.proto import wandb_internal_pb2

    data = Path(run_file).read_bytes()
    block, position, rows, pending = 32768, 7, [], b""  # a 7-byte file header first
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header: padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "history":
                rows.append(
                    {
                        "/".join(item.nested_key) or item.key: json.loads(item.value_json)
                        for item in record.history.item
                    }
                )
        if length == 0 and kind == 0:
            break
    return rows


def test_train_logs_every_iteration_to_mlflow_and_wandb(tmp_path):
    for track in ("mlflow", "wandb"):
        out = tmp_path / f"run-{track}"
        done = cli(
            "train", *TINY, "--track", track, "--out", out, cwd=tmp_path, env=offline(tmp_path)
        )
        assert done.returncode == 0, done.stderr[-2000:]
    runs = mlflow_runs(tmp_path, "train")
    (metrics,) = runs.values()
    assert len(metrics["val/loss"]) == 3 and len(metrics["eval/return"]) == 3
    assert "test/return" in metrics, "the last iteration's test figures are logged too"
    (run_file,) = glob.glob(
        str(tmp_path / "run-wandb" / "seed0" / "wandb" / "offline-run-*" / "*.wandb")
    )
    rows = [row for row in wandb_history(run_file) if "val/loss" in row]
    assert len(rows) == 3 and "test/return" in rows[-1]


def test_a_search_hands_ray_a_logger_callback_for_each_tracker(tmp_path):
    """A tracked search's trials are logged by Ray's own callbacks (tests/test_search.py runs
    MLflow's for real)."""
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.air.integrations.wandb import WandbLoggerCallback

    from search.settings import Settings
    from search.tuner import callbacks

    for track, kind in (("mlflow", MLflowLoggerCallback), ("wandb", WandbLoggerCallback)):
        given = callbacks(Settings(track=track), tmp_path / "w")
        assert sum(isinstance(callback, kind) for callback in given) == 1
        assert any(type(callback).__name__ == "JsonLoggerCallback" for callback in given)


def test_wandb_without_an_account_is_bad_input(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    env |= {"HOME": str(tmp_path), "WANDB_CONFIG_DIR": str(tmp_path)}
    result = cli("train", *TINY, "--track", "wandb", "--out", tmp_path / "r", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "WANDB_MODE=offline" in result.stderr
    assert not (tmp_path / "r").exists()

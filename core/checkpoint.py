"""Checkpoints: tensors and plain values only, so ``torch.load(weights_only=True)`` reads them
(no pickle of arbitrary objects), written atomically, with a JSON metadata file beside."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import torch

from data.errors import BadInput
from data.files import write_atomically

FORMAT_VERSION = 1


def write_json(path: Path, data: dict) -> None:
    write_atomically(path, (json.dumps(jsonable(data), indent=2) + "\n").encode())


def jsonable(value):
    """NaN/inf become null: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def save_checkpoint(path: Path, payload: dict) -> None:
    """``payload`` holds state dicts, ``config`` (nested dict), ``iteration`` and ``metrics``."""
    payload = {"format_version": FORMAT_VERSION, **payload}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomically(path, buffer.getvalue())
    meta = {k: payload[k] for k in ("format_version", "iteration", "config", "metrics")}
    write_json(Path(path).with_suffix(".json"), meta)


def load_checkpoint(path: Path) -> dict:
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("**/checkpoint.pt"))
        hint = f" (it holds {found[0]})" if found else ""
        raise BadInput(f"checkpoint {path} is a folder{hint}; pass a checkpoint.pt file")
    if not path.is_file():
        raise BadInput(f"checkpoint {path} does not exist; pass the checkpoint.pt of a train run")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises IndexError, RuntimeError, ... on bytes it cannot read
        raise BadInput(f"checkpoint {path} cannot be read: {what_it_is(path)}") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise BadInput(f"checkpoint {path} is not a checkpoint of this tool; pass another file")
    if payload["format_version"] != FORMAT_VERSION:
        raise BadInput(
            f"checkpoint {path} has format version {payload['format_version']}, this tool reads "
            f"version {FORMAT_VERSION}: retrain with this version"
        )
    missing = {"config", "model", "iteration", "metrics"} - set(payload)
    if missing:
        raise BadInput(f"checkpoint {path} lacks {sorted(missing)}; retrain or pass another file")
    return payload


def what_it_is(path: Path) -> str:
    """Why a file is not a checkpoint, in the user's terms (torch's own message names its
    internals: 'enforce fail at inline_container.cc', 'weights_only')."""
    with open(path, "rb") as file:
        head = file.read(4096)
    if head.startswith(b"PK") and b".npy" in head:
        return "it is a demonstrations file (.npz); pass the checkpoint.pt of a train run"
    if not head.startswith(b"PK"):
        return "it is not a PyTorch checkpoint at all; pass the checkpoint.pt of a train run"
    return "it is truncated or corrupt, or not a checkpoint of this tool; retrain or pass another"

"""A search's folder and its record: where a search lives (``RESULTS_DIR/NAME``), and the file
that holds its settings, base configuration, placement and the wall time spent, which a
resume reuses and the exports read."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import yaml

from data.errors import BadInput
from data.files import write_atomically
from search.settings import Settings

# YAML, because Ray rolls back the experiment folder's *.json files from its staging copies on
# a resume.
SETTINGS_FILE = "search.yaml"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def search_folder(results_dir: Path, name: str) -> Path:
    """``results_dir/name``, refusing names that would leave the results folder."""
    if not NAME.match(name):  # a first letter or digit rules out "." and ".."
        raise BadInput(
            f"--name {name!r} must be one folder name (letters, digits, '.', '_', '-'), not a path"
        )
    return results_dir / name


def read_record(folder: Path) -> tuple[Settings, dict]:
    """The search's settings and its whole record (base configuration, placement, wall time)."""
    path = folder / SETTINGS_FILE
    try:
        record = yaml.safe_load(path.read_text())
        record["settings"], record["base"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        raise BadInput(
            f"{folder} is not a search folder of this tool ({SETTINGS_FILE} is missing or "
            "damaged); pass results/NAME of a search"
        ) from None
    return Settings.from_record(record["settings"], folder), record


def write_record(folder: Path, record: dict) -> None:
    write_atomically(folder / SETTINGS_FILE, yaml.safe_dump(record, sort_keys=False).encode())


class WallClock:
    """Adds the wall time of this run to the search's record every few seconds, so a search
    killed outright still knows how long it ran (utilisation needs it)."""

    def __init__(self, folder: Path, record: dict, every_s: float = 5.0):
        self.folder, self.record, self.every_s = folder, record, every_s
        self.before = float(record.get("wall_s", 0.0))
        self.stopped = threading.Event()

    def tick(self) -> None:
        self.record["wall_s"] = self.before + time.monotonic() - self.start
        write_record(self.folder, self.record)

    def loop(self) -> None:
        while not self.stopped.wait(self.every_s):
            self.tick()

    def __enter__(self) -> WallClock:
        self.start = time.monotonic()
        self.tick()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()
        self.tick()

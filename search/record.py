"""A search's folder and its record: where a search lives (``RESULTS_DIR/NAME``), and the one
file that says what it is and how far it got (``search.yaml``), which a resume continues
from and the exports read.

A search goes through stages: its ``trials``, then its ``finalists``, then it is ``done``.
The record names the stage it is in and carries what the next one needs: the settings, the
configuration every trial starts from, the finalists chosen (before they start, so a resume
retrains the same ones) and the wall time spent.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from core import config as cfg
from data.errors import BadInput
from data.files import write_atomically
from search.settings import Settings

# YAML, because Ray rolls back the experiment folder's *.json files from its staging copies on
# a resume.
SETTINGS_FILE = "search.yaml"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
FINALISTS = "finalists"  # the finalists' Ray experiment, inside the search folder

Stage = Literal["trials", "finalists", "done"]


@dataclass(frozen=True)
class Chosen:
    """The finalists a search chose when its trials ended, the training seeds each is
    retrained on, and the rounds of its race: the seeds added, round by round, to the
    finalists whose verdict was still undecided (each round its own Ray experiment)."""

    configs: dict[str, dict]  # name -> the values laid over the base (the incumbent: none)
    seeds: list[int]
    folder: str = FINALISTS  # their Ray experiment (finalists-K after the K-th extension)
    races: list[dict[str, list[int]]] = field(default_factory=list)  # name -> seeds added

    def seeds_of(self, name: str) -> list[int]:
        """Every seed the finalist ``name`` is to be retrained on, its race's included."""
        return [*self.seeds, *(s for race in self.races for s in race.get(name, []))]

    def experiments(self) -> list[str]:
        """The finalists' Ray experiments: the first round's, then each race round's."""
        return [self.folder, *(f"{self.folder}-race{k}" for k in range(1, len(self.races) + 1))]


@dataclass(frozen=True)
class SearchRecord:
    settings: Settings
    stage: Stage = "trials"
    base: dict = field(default_factory=dict)  # the trials' configuration (core.config.to_dict)
    placement: dict = field(default_factory=dict)  # what one trial is given, how many at once
    cpus: float = 0.0  # the CPUs of the Ray cluster it ran on
    wall_s: float = 0.0  # wall time of every run of the search so far
    search_wall_s: float | None = None  # the trials' part of it (set when they end)
    extensions: int = 0  # times it was extended (--resume --num-samples N)
    budget_spent: bool = False  # the time budget ended the trials
    chosen: Chosen | None = None  # its finalists, once chosen

    @property
    def base_config(self) -> cfg.Config:
        return cfg.from_dict(self.base, where="search base configuration")

    @property
    def trials_wall_s(self) -> float:
        return self.wall_s if self.search_wall_s is None else self.search_wall_s

    def to_dict(self) -> dict:
        raw = dataclasses.asdict(self)
        raw["settings"] = self.settings.to_dict()
        return raw


def search_folder(results_dir: Path, name: str) -> Path:
    """``results_dir/name``, refusing names that would leave the results folder."""
    if not NAME.match(name):  # a first letter or digit rules out "." and ".."
        raise BadInput(
            f"--name {name!r} must be one folder name (letters, digits, '.', '_', '-'), not a path"
        )
    return results_dir / name


def read_record(folder: Path) -> SearchRecord:
    """The record of the search in ``folder``; BadInput when there is none or it is damaged."""
    path = folder / SETTINGS_FILE
    damaged = BadInput(
        f"{folder} is not a search folder of this tool ({SETTINGS_FILE} is missing or "
        "damaged); pass results/NAME of a search"
    )
    try:
        raw = yaml.safe_load(path.read_text())
        settings, base = raw["settings"], raw["base"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        raise damaged from None
    # Records written before stages were named: a search with finalists chosen is at them.
    chosen = raw.get("chosen", raw.get("finalists"))
    try:
        return SearchRecord(
            settings=Settings.from_record(settings, folder),
            stage=raw.get("stage", "finalists" if chosen else "trials"),
            base=base,
            placement=raw.get("placement") or {},
            cpus=float(raw.get("cpus", 0.0)),
            wall_s=float(raw.get("wall_s", 0.0)),
            search_wall_s=raw.get("search_wall_s"),
            extensions=int(raw.get("extensions", 0)),
            budget_spent=bool(raw.get("budget_spent", False)),
            chosen=Chosen(**chosen) if chosen else None,
        )
    except (TypeError, ValueError):
        raise damaged from None


def write_record(folder: Path, record: SearchRecord) -> None:
    write_atomically(
        folder / SETTINGS_FILE, yaml.safe_dump(record.to_dict(), sort_keys=False).encode()
    )


class WallClock:
    """Adds the wall time of this run to the search's record every few seconds, so a search
    killed outright still knows how long it ran (utilisation needs it). A stage that moves the
    search on hands it the new record to keep writing (``write``)."""

    def __init__(self, folder: Path, record: SearchRecord, every_s: float = 5.0):
        self.folder, self.record, self.every_s = folder, record, every_s
        self.before = record.wall_s
        self.stopped = threading.Event()
        self.lock = threading.Lock()

    def wall_s(self) -> float:
        """The search's wall time so far, this run's included."""
        return self.before + time.monotonic() - self.start

    def write(self, record: SearchRecord | None = None) -> SearchRecord:
        """Write the record (``record`` from now on, when given) with the wall time now."""
        with self.lock:
            self.record = dataclasses.replace(record or self.record, wall_s=self.wall_s())
            write_record(self.folder, self.record)
            return self.record

    def loop(self) -> None:
        while not self.stopped.wait(self.every_s):
            self.write()

    def __enter__(self) -> WallClock:
        self.start = time.monotonic()
        self.write()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()
        self.write()

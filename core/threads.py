"""Torch's CPU threads for a training that leaves them to us (``train.threads: 0``): as many as
the cores the rest of the machine leaves free, looked at again after every iteration.

Torch's own default, a thread per core, is right for a training alone and wrong beside
anything else: OpenMP's threads wait, spinning, for a core another process holds. On the
2-core machine (``python -m bench.threads``) a `default` training alone ran at 956 samples/s
on two threads and 642 on one, while two side by side ran at 367 each on two threads and 629
each on one. So the count follows what the others use.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

STAT = Path("/proc/stat")
MIN_WINDOW = 0.5  # seconds: /proc/stat counts in ticks of 10 ms


class Reading(NamedTuple):
    wall: float  # seconds, monotonic
    machine: float | None  # CPU seconds the whole machine has been busy (None: unknown)
    own: float  # CPU seconds this process has used, all its threads, and its ended children


def machine_busy() -> float | None:
    """CPU seconds every core together has spent busy since boot, from /proc/stat (Linux);
    None where the system does not say."""
    try:
        fields = STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal: idle and iowait are free time;
    # steal (another virtual machine's) is not ours to use.
    ticks = [int(x) for x in fields[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def read() -> Reading:
    times = os.times()
    # The processes it started (DAgger's labellers, data/blocks.py) are its own work, not
    # another's: their time counts once they have ended, as they have by the next look.
    own = times.user + times.system + times.children_user + times.children_system
    return Reading(time.monotonic(), machine_busy(), own)


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # the cores this process may run on
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class FreeCores:
    """How many threads the next stretch of work should run on: the cores this process may
    use, less what the other processes used over the last stretch (rounded to the nearest
    core, at least one)."""

    def __init__(self, cores: int | None = None, reader: Callable[[], Reading] = read):
        self.cores = cores or usable_cores()
        self.reader = reader
        self.last = reader()

    def threads(self) -> int:
        wait = MIN_WINDOW - (time.monotonic() - self.last.wall)
        if wait > 0:  # a shorter look is mostly the clock's ticks
            time.sleep(wait)
        now, last = self.reader(), self.last
        self.last = now
        if now.machine is None or last.machine is None or now.wall <= last.wall:
            return self.cores
        others = ((now.machine - last.machine) - (now.own - last.own)) / (now.wall - last.wall)
        return max(1, min(self.cores, math.floor(self.cores - others + 0.5)))

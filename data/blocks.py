"""Work done episode by episode, in blocks of episodes across processes, with lines of progress.

The demonstrations (data/demos.py) and DAgger's labels (data/teachers.py) are built one
episode at a time, each from its own env seed (and, for labels, the actions taken), so blocks
of episodes can go to several processes and come back in order: the result is the same, byte
for byte, as one process's.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor

PROGRESS_EVERY = 10.0  # seconds between two lines of progress: a quick phase says one


class Progress:
    """Lines of progress of one long phase (``what``, out of ``total`` units) for ``log``: at
    most one every PROGRESS_EVERY seconds, and one at the end. A phase that ends sooner says
    its one line at the end only if ``closing``: a build once, but not a phase of every
    iteration."""

    def __init__(
        self,
        what: str,
        total: int,
        log: Callable[[str], None] | None,
        unit: str,
        closing: bool = True,
    ):
        self.what, self.total, self.log, self.unit = what, total, log, unit
        self.start = self.last_said = time.monotonic()
        self.said = closing  # as if a line had been said: the end gets its own
        self.finished = False  # the end is said once

    def __call__(self, done: int, left_s: float | None = None, bound: bool = False) -> None:
        """Say that ``done`` units are done; the time left is ``left_s`` (an upper bound if
        ``bound``), or extrapolated from the pace so far."""
        now, finishing = time.monotonic(), done >= self.total
        due = now - self.last_said >= PROGRESS_EVERY or (finishing and self.said)
        if self.log is None or self.finished or not due:
            return
        self.last_said, self.said, self.finished = now, True, finishing
        elapsed = now - self.start
        if left_s is None:
            left_s = elapsed / done * (self.total - done) if done else 0.0
        self.log(
            f"{self.what}: {done}/{self.total} {self.unit}, {elapsed / 60:.1f} min so far, "
            f"{'at most' if bound else 'about'} {left_s / 60:.1f} min left"
        )


def in_blocks(
    work: Callable[[Sequence], object],
    blocks: Sequence[Sequence],
    jobs: int,
    progress: Progress,
) -> Iterator:
    """``work(block)`` of each block, in order, by ``jobs`` processes where there are several
    blocks; ``progress`` hears how many episodes are done after each block."""
    done = 0
    with contextlib.ExitStack() as stack:
        if jobs > 1 and len(blocks) > 1:
            # Spawned, not forked: the caller may hold torch's threads.
            context = multiprocessing.get_context("spawn")
            workers = min(jobs, len(blocks))
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=context))
            results = pool.map(work, blocks)
        else:
            results = map(work, blocks)
        for block, result in zip(blocks, results, strict=True):
            yield result
            done += len(block)
            progress(done)

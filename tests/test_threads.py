"""train.threads 0: the cores the other processes leave free (core/threads.py)."""

import json
import subprocess
import sys

import pytest

from conftest import tiny
from core.seed_runs import train_one
from core.threads import FreeCores, Reading, machine_busy, read, usable_cores
from data.demos import for_data


def readings(*values):
    it = iter(Reading(*v) for v in values)
    return lambda: next(it)


@pytest.mark.parametrize(
    "busy, own, expected",
    [
        (0.0, 0.0, 4),  # an idle machine: every core
        (3.0, 3.0, 4),  # only this process at work: every core, whatever it used
        (1.0, 0.0, 3),  # one core busy elsewhere
        (2.6, 0.2, 2),  # 2.4 cores elsewhere: 1.6 free, rounded to 2
        (9.0, 0.0, 1),  # the machine is full: one thread, never none
    ],
)
def test_the_threads_are_the_cores_the_others_leave(busy, own, expected):
    # Seconds of CPU over one second of wall time, on 4 cores.
    free = FreeCores(4, readings((0.0, 100.0, 10.0), (1.0, 100.0 + busy, 10.0 + own)))
    assert free.threads() == expected


def test_where_the_system_does_not_say_every_core():
    free = FreeCores(4, readings((0.0, None, 0.0), (1.0, None, 1.0)))
    assert free.threads() == 4


def test_each_look_is_over_the_stretch_since_the_last():
    free = FreeCores(
        2, readings((0.0, 0.0, 0.0), (1.0, 1.0, 0.0), (2.0, 1.0, 0.0), (3.0, 1.5, 0.5))
    )
    assert [free.threads(), free.threads(), free.threads()] == [1, 2, 2]


def test_the_machine_reading_is_cpu_seconds():
    first = machine_busy()
    if first is None:
        pytest.skip("no /proc/stat here")
    assert 0 < first <= machine_busy()


def test_train_says_how_many_threads_each_iteration_had(tmp_path):
    config = tiny(**{"train.iters": 1, "train.threads": 0})
    train_one(config, for_data(config.data), tmp_path, log=lambda line: None)
    lines = [json.loads(x) for x in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert all(1 <= line["perf/threads"] <= usable_cores() for line in lines)
    pinned = tiny(**{"train.iters": 1, "train.threads": 1})
    train_one(pinned, for_data(pinned.data), tmp_path / "one", log=lambda line: None)
    assert json.loads((tmp_path / "one" / "history.jsonl").read_text())["perf/threads"] == 1


@pytest.mark.slow  # a process of its own
def test_a_process_that_keeps_a_core_busy_takes_a_thread_away():
    cores = usable_cores()
    if cores < 2 or machine_busy() is None:
        pytest.skip("needs two cores and /proc/stat")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        free = FreeCores()
        free.threads()  # the look over the busy process's start
        assert free.threads() <= cores - 1
    finally:
        busy.kill()
        busy.wait()


@pytest.mark.slow  # a process of its own
def test_the_processes_it_started_count_as_its_own_work():
    """DAgger's labellers (data/blocks.py) are this run's work: once ended, their CPU time is
    its own, so the next look does not take their cores for another's."""
    before = read().own
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
    subprocess.run([sys.executable, "-c", spin], check=True)
    assert read().own - before >= 0.45

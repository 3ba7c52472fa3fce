"""arraybragg.concurrency: one call beside the caller, and work items over a few threads."""
from __future__ import annotations

import threading

import pytest

from arraybragg.concurrency import beside, each


@pytest.mark.parametrize("threads", [1, 2])
def test_beside_returns_the_result_or_raises_the_error(threads):
    assert beside(lambda x: x * 3, 7, threads)() == 21
    wait = beside(lambda x: 1 / x, 0, threads)
    with pytest.raises(ZeroDivisionError):
        wait()


def test_beside_runs_on_another_thread():
    assert beside(lambda _: threading.get_ident(), None, 2)() != threading.get_ident()


@pytest.mark.parametrize("threads", [1, 3])
def test_each_does_every_item_once(threads):
    done, lock = [], threading.Lock()

    def work(item):
        with lock:
            done.append(item)

    each(work, range(50), threads)
    assert sorted(done) == list(range(50))


def test_each_stops_taking_after_an_error_and_raises_it():
    taken = []

    def work(item):
        taken.append(item)
        if item == 3:
            raise ValueError("item 3")

    with pytest.raises(ValueError, match="item 3"):
        each(work, range(1000), 2)
    assert len(taken) < 20


def test_each_helpers_wait_for_the_gate():
    opened, seen = threading.Event(), []

    def work(item):
        if threading.current_thread().name == "arraybragg-each":
            seen.append(opened.is_set())
        if item == 5:
            opened.set()

    each(work, range(200), 3, gate=opened.wait)
    assert all(seen)

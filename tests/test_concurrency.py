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


def test_each_error_does_not_wait_for_helpers_at_the_gate():
    """An error in the calling thread (or Ctrl-C) is raised at once while the helpers still wait at the
    gate; once through it, they take no item."""
    opened, taken = threading.Event(), []

    def work(item):
        taken.append((item, threading.current_thread().name))
        raise KeyboardInterrupt

    safety = threading.Timer(5.0, opened.set)  # (a helper waited for would hold each() 5 s, then fail below)
    safety.start()
    with pytest.raises(KeyboardInterrupt):
        each(work, range(50), 3, gate=opened.wait)
    assert not opened.is_set() and taken == [(0, threading.current_thread().name)]
    safety.cancel()
    helpers = [thread for thread in threading.enumerate() if thread.name == "arraybragg-each"]
    opened.set()
    for thread in helpers:
        thread.join(timeout=10)
    assert taken == [(0, threading.current_thread().name)] and not any(thread.is_alive() for thread in helpers)


def test_each_starts_no_helper_without_an_item(monkeypatch):
    """threads may be any number (--threads): no more threads than items are started."""
    created, real = [], threading.Thread

    class Counted(real):
        def __init__(self, *args, **kwargs):
            created.append(kwargs.get("name"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(threading, "Thread", Counted)
    barrier = threading.Barrier(3, timeout=10)
    each(lambda item: barrier.wait(), range(3), 50)  # all three items at once: three threads, no fewer
    assert created == ["arraybragg-each"] * 2

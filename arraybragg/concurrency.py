"""Two small ways of running work on threads, for NumPy work that releases the GIL.

``beside(function, argument, threads)`` runs one call in another thread while the caller goes on;
``each(work, items, threads)`` runs ``work`` on every item with a few threads taking the items in
order.  Both hand the first error back to the caller, and both run in the calling thread alone
when ``threads`` is 1.
"""
from __future__ import annotations

import threading
from typing import Callable, Iterable

__all__ = ["beside", "each"]


def beside(function: Callable, argument, threads: int = 2) -> Callable:
    """function(argument) in another thread when ``threads`` > 1 (else now): returns a call that waits
    for its result, or raises its error."""
    outcome = {}

    def run():
        try:
            outcome["result"] = function(argument)
        except BaseException as error:  # raised by the waiting call
            outcome["error"] = error

    worker = threading.Thread(target=run, name="arraybragg-beside", daemon=True) if threads > 1 else None
    if worker is None:
        run()
    else:
        worker.start()

    def wait():
        if worker is not None:
            worker.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]
    return wait


def each(work: Callable, items: Iterable, threads: int, gate: Callable = None) -> None:
    """work(item) for every item, the items taken in order by this thread and ``threads`` - 1
    helpers; each helper first calls ``gate()`` (when given).  The first error stops the taking
    and is raised here, once the helpers at work have finished their items: helpers still waiting
    at the gate are not waited for (they take nothing once through it), so an error here, or
    Ctrl-C, does not wait on what the gate waits for."""
    items = list(items)
    threads = min(threads, len(items))  # (no helper without an item: --threads may be any number)
    pending, lock, errors, working = iter(items), threading.Lock(), [], []

    def take():
        with lock:
            return None if errors else next(pending, None)

    def worker(first=None):
        try:
            if first is not None:
                first()
                with lock:
                    working.append(threading.current_thread())
            while (item := take()) is not None:
                work(item)
        except BaseException as error:
            with lock:
                errors.append(error)

    helpers = [threading.Thread(target=worker, args=(gate,), name="arraybragg-each", daemon=True)
               for _ in range(threads - 1)]
    for thread in helpers:
        thread.start()
    worker()
    with lock:
        waited = helpers if gate is None or not errors else list(working)
    for thread in waited:
        thread.join()
    if errors:
        raise errors[0]

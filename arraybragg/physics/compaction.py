"""Working on a subset of columns without boolean indexing or data-dependent shapes.

The columns to work on are moved to the front by a stable sort of their mask;
their count (one host number) fixes the size of the slice taken.  Results go
back by each column's rank among the selected ones (a cumulative sum).  Every step is in the array API standard, so
namespaces without boolean indexing (array_api_strict's flag, some compilers)
run the same code.
"""
from __future__ import annotations

from ..backend import array_namespace


def front(mask):
    """(order, count): a permutation of the columns putting those where ``mask`` (N,) holds first, in
    their order, and how many there are (the one host number this needs)."""
    xp = array_namespace(mask)
    order = xp.argsort(xp.astype(~mask, xp.int8), stable=True)
    return order, int(xp.sum(xp.astype(mask, xp.int64)))


def take_front(array, order, count: int):
    """array (..., N) at the first ``count`` columns of ``order``: (..., count), C-ordered."""
    xp = array_namespace(array)
    return xp.take(array, order[:count], axis=array.ndim - 1)


def spread(mask, values, array):
    """``array`` (..., N) with the columns where ``mask`` (N,) holds replaced, in order, by the columns of
    ``values`` (..., M): each masked column's rank among the masked ones picks its value."""
    xp = array_namespace(mask)
    rank = xp.cumulative_sum(xp.astype(mask, xp.int64)) - 1
    picked = xp.take(values, xp.clip(rank, 0, None), axis=values.ndim - 1)
    return xp.where(mask, picked, array)

"""The heap keeper freezes what survives a batch and reclaims frozen cycles in its sweep."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from stream_apps.heap import HeapKeeper


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_survivors_of_a_batch_are_frozen_and_a_frozen_cycle_stays() -> None:
    keeper = HeapKeeper(sweep_s=3600)
    node = _Node()
    ref = weakref.ref(node)
    keeper.after_batch()
    assert gc.get_freeze_count() > 0
    del node
    gc.collect()  # a full collection does not look at frozen objects
    assert ref() is not None
    assert keeper.sweeps == 0


def test_the_sweep_reclaims_cycles_that_became_garbage_after_they_were_frozen() -> None:
    keeper = HeapKeeper(sweep_s=0.0)
    node = _Node()
    ref = weakref.ref(node)
    gc.freeze()
    del node
    keeper.after_batch()
    assert ref() is None
    assert keeper.sweeps == 1
    assert gc.get_freeze_count() > 0  # frozen again after the sweep

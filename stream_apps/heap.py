"""Keep Python's cyclic garbage collector from rescanning the dossier states.

The worker holds every dossier's state: hundreds of thousands of long-lived objects
(states, datetimes, fingerprints). CPython's collector scans all tracked objects in a
full (oldest-generation) collection, and it runs one whenever the heap has grown by a
quarter, so with a large store those scans cost more than parsing the events
(BENCHMARKS.md). The states hold no reference cycles: they are freed by reference
counting when replaced.

`HeapKeeper.after_batch` runs after each applied batch: a young-generation collection
(cheap: only objects made since the last batch), then `gc.freeze()`, which moves every
surviving object to the permanent generation, where collections do not look. A cycle
that becomes garbage after it was frozen would stay; once every `sweep_s` seconds the
keeper unfreezes and runs one full collection to reclaim such cycles, then freezes again.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


class HeapKeeper:
    """Freeze what survives each batch; a full collection every `sweep_s` seconds."""

    def __init__(self, *, sweep_s: float = 600.0) -> None:
        self.sweep_s = sweep_s
        self._last_sweep = time.monotonic()
        self.sweeps = 0

    def after_batch(self) -> None:
        gc.collect(1)
        now = time.monotonic()
        if now - self._last_sweep >= self.sweep_s:
            self._last_sweep = now
            gc.unfreeze()
            started = time.perf_counter()
            found = gc.collect()
            self.sweeps += 1
            log.debug(
                "full garbage collection: %d unreachable objects in %.2f s",
                found,
                time.perf_counter() - started,
            )
        gc.freeze()

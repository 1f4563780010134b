"""Garbage-collector settings for the long-running processes (``assistd serve``, ``assistd worker``).

With CPython's defaults a busy server pauses for 35-130 ms in full (generation 2) collections: each
one walks every object of the process, most of which are the imported modules, the ORM's mappings,
the OpenAPI models and the tokenizer tables made at start-up and never freed. Streams of every run
stall meanwhile (``bench/runs.py``'s stream lag). So, once the process has started:

- ``gc.freeze()`` moves everything alive then into the permanent generation, which collections
  skip (start-up garbage is collected first);
- generation 0 is collected every ``GEN0_THRESHOLD`` allocations instead of 700, so fewer of the
  short-lived objects of a request or an event are still alive when a collection looks, fewer of
  them are promoted, and the older generations fill (and are walked) less often. Much higher
  values make each young collection itself a pause: measured with 200 streams, 2,000 gave a
  stream-lag p99 of 23 ms, 700 gave 42-49 ms and 5,000 gave 87-96 ms (generation-1 pauses of
  40-50 ms).

Reference cycles are still collected; only the schedule changes.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 2_000
GEN1_THRESHOLD = 10
GEN2_THRESHOLD = 10


def tune_after_startup() -> None:
    """Collect start-up garbage, freeze what is left and set the server thresholds (idempotent)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)

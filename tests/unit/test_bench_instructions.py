"""bench.instructions reads callgrind_annotate's inclusive listing and reports per event."""

from __future__ import annotations

from bench.instructions import PHASES, Count, parse_annotate, table

ANNOTATE = """\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
29,117,245,366 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                      file:function
--------------------------------------------------------------------------------
12,405,813,709 (42.61%)  n.c:CPyDef_store___PartitionStore___process [x.so]
12,400,000,000 (42.60%)  n.c:CPyPy_store___PartitionStore___process [x.so]
 5,547,608,300 (19.05%)  n.c:CPyDef_lifecycle___Lifecycle___apply [x.so]
   668,649,552 ( 2.30%)  n.c:CPyDef_partials___merged_snapshot [x.so]
   100,000,000 ( 0.34%)  n.c:CPyDef_partials___PartialMerger___accept_round [x.so]
     5,000,000 ( 0.02%)  n.c:CPyDef_partials___merged_snapshot [x.so]
"""


def test_the_listing_gives_the_total_and_each_functions_largest_count() -> None:
    total, functions = parse_annotate(ANNOTATE)
    assert total == 29_117_245_366
    assert functions["CPyDef_store___PartitionStore___process"] == 12_405_813_709
    assert functions["CPyDef_partials___merged_snapshot"] == 668_649_552
    assert "PROGRAM" not in functions


def test_phases_are_per_event_sums_and_missing_ones_are_dashes() -> None:
    total, functions = parse_annotate(ANNOTATE)
    before = Count("a", "aaaaaaaa", 60_000, total, functions)
    after = Count("b", "bbbbbbbb", 60_000, total // 2, {})
    assert before.per_event(PHASES["merge"]) == (668_649_552 + 100_000_000) / 60_000
    assert after.per_event(PHASES["merge"]) is None
    rows = table([before, after]).splitlines()
    merge = next(r for r in rows if r.startswith("| merge |"))
    assert merge == f"| merge | {768_649_552 / 60_000:,.0f} | – | – |"
    assert rows[-1].endswith("| -50.0% |")

"""The figure books under test: the Python book always, the Rust one with the compiled core.

`make test` runs these tests twice: with the Python sources (the Python book only), then
under `common.native run` with DOSSIER_NATIVE=require, where the compiled core is active
and `domain.native_figures.NativeFigureBook` (counters in Rust) must import; there every
test of a module marked `usefixtures("each_book")` runs once per book.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from common import native
from domain.figures import FigureBook


def book_classes() -> list[type[Any]]:
    """FigureBook, and NativeFigureBook when the compiled core with its Rust book is active."""
    if not native.active or importlib.util.find_spec(native.RUST_MODULE) is None:
        return [FigureBook]  # the Python sources, or a build made without cargo
    from domain.native_figures import NativeFigureBook  # must import: the build holds it

    return [FigureBook, NativeFigureBook]


BOOKS = book_classes()
# The Rust book against the Python one: only when there is a Rust book to load.
collect_ignore = [] if len(BOOKS) > 1 else ["test_native_figures.py"]


@pytest.fixture(scope="module", params=BOOKS, ids=[cls.__name__ for cls in BOOKS])
def each_book(request: pytest.FixtureRequest) -> Iterator[type[Any]]:
    """Every test of the module with `FigureBook` standing for each book in turn."""
    module = request.module
    saved = module.FigureBook
    module.FigureBook = request.param
    yield request.param
    module.FigureBook = saved

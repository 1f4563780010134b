"""The connection budget's split between a process's pools (db/budget.py)."""

from __future__ import annotations

import pytest

from assistd.db.budget import no_slot, split


def test_the_default_budget_is_the_one_the_readme_states() -> None:
    b = split(20)
    assert (b.listen, b.writer, b.bus, b.fast, b.urgent, b.main) == (1, 1, 2, 4, 4, 8)


@pytest.mark.parametrize("total", [6, 7, 11, 12, 20, 33, 100])
def test_every_pool_gets_a_share_and_together_they_hold_the_budget(total: int) -> None:
    b = split(total)
    assert min(b.listen, b.writer, b.bus, b.fast, b.urgent, b.main) >= 1
    assert b.listen + b.writer + b.bus + b.fast + b.urgent + b.main == total
    without_fast = split(total, fast_reads=False)
    assert without_fast.fast == 0 and without_fast.main > b.main


def test_a_budget_below_six_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 6"):
        split(5)


def test_only_a_missing_slot_is_waited_for() -> None:
    class PgError(Exception):
        def __init__(self, sqlstate: str) -> None:
            super().__init__(sqlstate)
            self.sqlstate = sqlstate

    assert no_slot(PgError("53300"))  # too many clients / a role's connection limit
    assert no_slot(PgError("57P03"))  # the server is starting
    wrapped = RuntimeError("wrapped")
    wrapped.orig = PgError("53300")  # type: ignore[attr-defined]  # as SQLAlchemy wraps driver errors
    assert no_slot(wrapped)
    assert not no_slot(PgError("28P01"))  # a wrong password is not waited out
    assert not no_slot(OSError("connection refused"))

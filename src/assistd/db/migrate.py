"""Run the Alembic migrations programmatically (``assistd migrate`` and ``serve`` at start-up)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _in_thread(fn: Callable[[], None]) -> None:
    """Alembic's env.py runs its own event loop; run it on a thread so callers may be async."""
    errors: list[BaseException] = []

    def _run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=_run, name="assistd-migrate")
    t.start()
    t.join()
    if errors:
        raise errors[0]


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate up to ``revision``. Safe to call from inside a running event loop."""
    _in_thread(lambda: command.upgrade(alembic_config(url), revision))


def downgrade(url: str, revision: str) -> None:
    """Migrate down to ``revision`` (``"base"`` drops everything)."""
    _in_thread(lambda: command.downgrade(alembic_config(url), revision))

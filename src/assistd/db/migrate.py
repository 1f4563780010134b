"""Run the Alembic migrations programmatically (``assistd migrate`` and ``serve`` at start-up)."""

from __future__ import annotations

import threading
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


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate to ``revision``. Safe to call from inside a running event loop (runs in a thread)."""
    errors: list[BaseException] = []

    def _run() -> None:
        try:
            command.upgrade(alembic_config(url), revision)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=_run, name="assistd-migrate")
    t.start()
    t.join()
    if errors:
        raise errors[0]

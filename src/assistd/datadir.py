"""Where a command's data is: its database and its files, said in one line, checked before a
command that should not create them, and copied by ``assistd backup``.

The default data directory is ``./data`` *relative to where the command runs*, so two commands run
from two directories use two databases. Every command prints the database it uses, and ``assistd
keys`` refuses to create a database that does not exist yet: a key made in the wrong ``./data``
would leave the real server without keys, open to anyone.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from assistd.config import Settings

__all__ = ["backup", "describe", "sqlite_path"]


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite file, or None on PostgreSQL."""
    url = make_url(settings.resolved_database_url)
    if not url.drivername.startswith("sqlite"):
        return None
    return Path(url.database or "").resolve()


def describe(settings: Settings) -> str:
    """``SQLite database /abs/data/assistd.db, files in /abs/data/files``, or the PostgreSQL one (no password)."""
    files = settings.files_dir.resolve()
    path = sqlite_path(settings)
    if path is not None:
        return f"SQLite database {path}, files in {files}"
    url = make_url(settings.resolved_database_url)
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    return f"PostgreSQL database {url.database!r} on {where} (user {url.username or '?'}), files in {files}"


def backup(settings: Settings, dest: Path) -> list[str]:
    """Copy the database and the files directory into ``dest`` (created; must be empty); answers
    what was written, one line each. SQLite: the online backup API, consistent while the server
    runs. PostgreSQL: ``pg_dump --format=custom`` (PostgreSQL's client tools must be installed)."""
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty: back up into a new directory")
    done: list[str] = []
    path = sqlite_path(settings)
    if path is not None:
        if not path.exists():
            raise FileNotFoundError(f"no database at {path}")
        target = dest / "assistd.db"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as src, sqlite3.connect(target) as out:
            src.backup(out)
        done.append(f"database: {target}")
    else:
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise FileNotFoundError("pg_dump is not installed (Debian/Ubuntu: apt-get install postgresql-client)")
        url = make_url(settings.resolved_database_url).set(drivername="postgresql")
        target = dest / "assistd.pgdump"
        subprocess.run(
            [pg_dump, "--format=custom", f"--file={target}", url.render_as_string(hide_password=False)],
            check=True,
            capture_output=True,
            text=True,
        )
        done.append(f"database: {target} (restore with pg_restore --dbname=URL {target})")
    files = settings.files_dir
    if files.exists():
        shutil.copytree(files, dest / "files")
        done.append(f"files: {dest / 'files'} ({sum(1 for p in (dest / 'files').rglob('*') if p.is_file())} files)")
    return done

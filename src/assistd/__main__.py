"""Command line: ``assistd serve | setup | migrate | keys | backup | sandbox | fake-llm``. Thin: builds Settings
and calls into the package."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from assistd import __version__
from assistd.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in (
        "host",
        "port",
        "data_dir",
        "database_url",
        "max_upload_bytes",
        "log_level",
    ):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "no_migrate", False):
        overrides["auto_migrate"] = False
    return Settings(**overrides)


def _logging(settings: Settings) -> None:
    from assistd.logs import configure

    configure(settings.log_level, settings.log_format)


def _say_database(settings: Settings) -> None:
    """Every command that uses the database says which (on stderr: stdout stays the command's output;
    with JSON logs, as a log line)."""
    from assistd.datadir import describe

    if settings.log_format == "json":
        from assistd.logs import JSONFormatter

        line = logging.LogRecord("assistd", logging.INFO, __file__, 0, "using the %s", (describe(settings),), None)
        print(JSONFormatter().format(line), file=sys.stderr)
    else:
        print(f"assistd: {describe(settings)}", file=sys.stderr)


def _migrate(settings: Settings) -> None:
    from assistd.db.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from assistd.app import create_app

    settings = _settings(args)
    _logging(settings)
    if settings.auto_migrate:
        _migrate(settings)
    from assistd.datadir import describe

    log = logging.getLogger("assistd")
    log.info("using the %s", describe(settings))
    log.info("serving the Assistants API at http://%s:%d/v1", settings.host, settings.port)
    from uvicorn.config import LOGGING_CONFIG

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
        # JSON logs: no config of uvicorn's own, so its lines (access log included) reach the JSON handler
        log_config=None if settings.log_format == "json" else LOGGING_CONFIG,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _logging(settings)
    if settings.is_sqlite:
        print(
            "assistd worker needs PostgreSQL (set ASSISTD_DATABASE_URL); with SQLite, runs execute "
            "inside `assistd serve`.",
            file=sys.stderr,
        )
        return 2
    _say_database(settings)
    if settings.auto_migrate:
        _migrate(settings)
    if args.concurrency is not None:
        settings = settings.model_copy(update={"executor_concurrency": args.concurrency})
    if args.metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": args.metrics_port})
    _run_loop(_run_worker(settings))
    return 0


def _run_loop(coro: Any) -> None:
    """``asyncio.run`` on uvloop when it is installed (it comes with uvicorn[standard], and ``serve``
    runs on it through uvicorn): with many streams, a worker spends much of its CPU in the event
    loop itself, which uvloop runs in C."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    uvloop.run(coro)


async def _run_worker(settings: Settings) -> None:
    import signal

    from assistd.gctune import tune_after_startup
    from assistd.state import AppState

    state = await AppState.start(settings, background=True, executor=True, relay=False)
    assert state.executor is not None
    tune_after_startup()
    from assistd.catalog.service import log_upstreams

    state.spawn(log_upstreams(state.llm))
    log = logging.getLogger("assistd")
    log.info("worker %s executing runs (concurrency %d)", state.executor.owner, settings.executor_concurrency)
    metrics_server = None
    if settings.metrics_port is not None:
        from assistd.metrics.endpoint import start_server

        metrics_server = await start_server(state, settings.host, settings.metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("worker stopping: handing running runs back")
    if metrics_server is not None:
        metrics_server.close()
    await state.stop()


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _logging(settings)
    _say_database(settings)
    _migrate(settings)
    print("database is at the latest revision")
    return 0


async def _with_session(settings: Settings, fn: Any) -> Any:
    from assistd.db.session import Database

    db = Database(settings.resolved_database_url, pool_size=1)
    try:
        async with db.session(write=True) as s:
            return await fn(s)
    finally:
        await db.dispose()


def cmd_keys(args: argparse.Namespace) -> int:
    from assistd import auth

    settings = _settings(args)
    _say_database(settings)
    if not args.init and not _database_exists(settings):
        from assistd.datadir import describe

        print(
            f"assistd keys: there is no assistd database here ({describe(settings)}).\n"
            "Keys must go into the database your server uses, or the server stays open to anyone: run this "
            "where `assistd serve` runs, with the same --data-dir / ASSISTD_DATA_DIR or ASSISTD_DATABASE_URL "
            "(its start-up log names its database). To create a new database here, add --init.",
            file=sys.stderr,
        )
        return 1
    _migrate(settings)
    if args.keys_cmd == "create":
        key, row, project = asyncio.run(_with_session(settings, lambda s: auth.create_key(s, args.project, args.name)))
        print(key)
        print(
            f"# key id {row.id}, project '{project.name}' ({project.id}). Shown once: store it now.",
            file=sys.stderr,
        )
        return 0
    if args.keys_cmd == "list":
        rows = asyncio.run(_with_session(settings, auth.list_keys))
        print(f"{'ID':<30} {'PROJECT':<24} {'KEY':<16} {'NAME':<20} STATUS")
        for k, pname in rows:
            status = "revoked" if k.revoked_at else "active"
            print(f"{k.id:<30} {pname:<24} {k.redacted:<16} {(k.name or ''):<20} {status}")
        return 0
    if args.keys_cmd == "revoke":
        ok = asyncio.run(_with_session(settings, lambda s: auth.revoke_key(s, args.key_id)))
        if not ok:
            print(f"no active key with id {args.key_id}", file=sys.stderr)
            return 1
        print(f"revoked {args.key_id}")
        return 0
    return 2


def _database_exists(settings: Settings) -> bool:
    """Whether the database exists and has assistd's tables (its migrations have run)."""
    from assistd.datadir import sqlite_path

    path = sqlite_path(settings)
    if path is not None and not path.exists():
        return False

    async def check() -> bool:
        from sqlalchemy import inspect

        from assistd.db.session import Database

        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            async with db.engine.connect() as conn:
                return bool(await conn.run_sync(lambda c: inspect(c).has_table("alembic_version")))
        except Exception as exc:
            print(f"assistd keys: cannot open the database: {exc}", file=sys.stderr)
            return False
        finally:
            await db.dispose()

    return asyncio.run(check())


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from assistd.datadir import backup

    settings = _settings(args)
    _say_database(settings)
    try:
        for line in backup(settings, Path(args.dest)):
            print(line)
    except (FileExistsError, FileNotFoundError) as exc:
        print(f"assistd backup: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"assistd backup failed: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from pathlib import Path

    from assistd.sandbox import SandboxConfig, probe

    settings = _settings(args)
    venv = Path(args.path) if getattr(args, "path", None) else settings.resolved_sandbox_venv
    if args.sandbox_cmd == "install":
        import subprocess

        from assistd.sandbox.install import install

        try:
            install(venv, python=args.python, packages=args.package or [], clear=args.clear)
        except subprocess.CalledProcessError as e:
            print(f"failed: {e}", file=sys.stderr)
            return 1
    config = SandboxConfig.from_settings(settings.model_copy(update={"sandbox_venv": venv}))
    status = probe(config)
    if status.available:
        from assistd.sandbox.cgroup import Cgroups

        print(f"code interpreter sandbox: available ({status.reason}; {Cgroups.discover().reason})")
        return 0
    print(f"code interpreter sandbox: unavailable: {status.reason}", file=sys.stderr)
    return 1


def cmd_setup(args: argparse.Namespace) -> int:
    from assistd.setup import run_setup

    return run_setup(_settings(args), check=args.check, probe=not args.no_probe)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="data directory (env ASSISTD_DATA_DIR, default ./data)")
    p.add_argument(
        "--database-url",
        help="SQLAlchemy async URL (env ASSISTD_DATABASE_URL, default SQLite in the data dir)",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error", "critical"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistd", description="Self-hosted OpenAI Assistants API v2 server.")
    parser.add_argument("--version", action="version", version=f"assistd {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True)

    serve = sub.add_parser("serve", help="migrate the database, then serve the API")
    _common(serve)
    serve.add_argument("--host", help="bind address (env ASSISTD_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env ASSISTD_PORT, default 8000)")
    serve.add_argument(
        "--max-upload-bytes",
        type=int,
        help="file upload cap (env ASSISTD_MAX_UPLOAD_BYTES, default 512 MB)",
    )
    serve.add_argument("--no-migrate", action="store_true", help="do not run migrations at start-up")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="execute runs in this process (PostgreSQL; no HTTP)")
    _common(worker)
    worker.add_argument("--concurrency", type=int, help="runs executed at once (env ASSISTD_EXECUTOR_CONCURRENCY)")
    worker.add_argument(
        "--metrics-port", type=int, help="serve GET /metrics on this port (env ASSISTD_METRICS_PORT; default: off)"
    )
    worker.add_argument("--host", help="bind address of the metrics port (env ASSISTD_HOST, default 127.0.0.1)")
    worker.add_argument("--no-migrate", action="store_true", help="do not run migrations at start-up")
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="run database migrations and exit")
    _common(migrate)
    migrate.set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="manage API keys")
    ksub = keys.add_subparsers(dest="keys_cmd", required=True)
    kc = ksub.add_parser("create", help="create a key for a project (printed once)")
    kc.add_argument("--project", required=True, help="project name (created if new)")
    kc.add_argument("--name", help="a label for the key")
    kl = ksub.add_parser("list", help="list keys")
    kr = ksub.add_parser("revoke", help="revoke a key by id")
    kr.add_argument("key_id")
    for p in (kc, kl, kr):
        _common(p)
        p.add_argument("--init", action="store_true", help="create the database if there is none (by default: refuse)")
    keys.set_defaults(func=cmd_keys)

    bk = sub.add_parser(
        "backup", help="copy the database (SQLite online backup, or pg_dump) and the uploaded files into DEST"
    )
    bk.add_argument("dest", help="a new or empty directory")
    _common(bk)
    bk.set_defaults(func=cmd_backup)

    setup = sub.add_parser(
        "setup",
        help="install what file_search and code_interpreter need (model weights, bubblewrap as root, "
        "the kernel venv); idempotent",
    )
    _common(setup)
    setup.add_argument("--check", action="store_true", help="install nothing; exit 1 unless everything is ready")
    setup.add_argument("--no-probe", action="store_true", help="do not start a test sandbox (image builds)")
    setup.set_defaults(func=cmd_setup)

    sandbox = sub.add_parser("sandbox", help="the code interpreter's sandbox: install its kernel venv, check it")
    ssub = sandbox.add_subparsers(dest="sandbox_cmd", required=True)
    si = ssub.add_parser("install", help="create or update the kernel venv (ipykernel, numpy, pandas, matplotlib)")
    si.add_argument("--python", help="interpreter to build it from (default /usr/bin/python3)")
    si.add_argument("--package", action="append", help="another package for the kernel (repeatable)")
    si.add_argument("--clear", action="store_true", help="delete the venv first")
    sc = ssub.add_parser("check", help="start a test sandbox and print whether code can run")
    for p in (si, sc):
        _common(p)
        p.add_argument("--path", help="the venv (env ASSISTD_SANDBOX_VENV, default DATA_DIR/sandbox/venv)")
    sandbox.set_defaults(func=cmd_sandbox)

    from assistd.fakellm.cli import configure_parser, run

    fake = sub.add_parser("fake-llm", help="serve a scripted fake upstream model (OpenAI chat completions)")
    configure_parser(fake)
    fake.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ValidationError as exc:  # a bad ASSISTD_* value: say which, without a traceback
        if exc.title != "Settings":
            raise
        for err in exc.errors():
            name = "ASSISTD_" + ".".join(str(x) for x in err["loc"]).upper()
            print(f"assistd: invalid {name}: {err['msg']}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

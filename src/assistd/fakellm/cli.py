"""``assistd fake-llm`` / ``python -m assistd.fakellm``: serve a script on a real port until stopped."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from collections.abc import Sequence

__all__ = ["DEFAULT_PORT", "build_parser", "configure_parser", "main", "run"]

log = logging.getLogger("assistd.fakellm")

# Ollama's port: assistd's default upstream (http://127.0.0.1:11434/v1) reaches the fake unconfigured.
DEFAULT_PORT = 11434


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``fake-llm`` arguments to ``parser`` (e.g. an ``assistd`` sub-command parser)."""
    parser.add_argument(
        "--script",
        metavar="FILE",
        help="the script to play: JSON, or YAML when PyYAML is installed (default: echo every request)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port to listen on, 0 for any free one (default: %(default)s)"
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="ID",
        help="a model id to list on /v1/models besides the script's (repeatable)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="(default: %(default)s)"
    )
    return parser


def build_parser(prog: str = "assistd fake-llm") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A scripted fake OpenAI-compatible chat-completions server, for testing offline.",
    )
    return configure_parser(parser)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM. Exit status: 0, 1 (cannot listen) or 2 (bad script)."""
    from assistd.fakellm.runner import bind_socket, serve
    from assistd.fakellm.script import Script, ScriptError, load_script
    from assistd.fakellm.server import create_fake_llm_app

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    try:
        script = load_script(args.script) if args.script else Script()
    except ScriptError as exc:
        log.error("bad script: %s", exc)
        return 2
    if args.model:
        script = dataclasses.replace(script, models=tuple(dict.fromkeys([*script.models, *args.model])))
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc.strerror or exc)
        return 1
    app = create_fake_llm_app(script)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host

    def ready() -> None:
        log.info(
            "fake LLM serving http://%s:%d/v1 (%d turns, models: %s)",
            shown,
            port,
            len(script.turns),
            ", ".join(script.models),
        )

    try:
        asyncio.run(serve(app, sock, handle_signals=True, on_ready=ready))
    except KeyboardInterrupt:
        return 130
    finally:
        sock.close()
    return 0


def main(argv: Sequence[str] | None = None, *, prog: str = "assistd fake-llm") -> int:
    return run(build_parser(prog).parse_args(argv))

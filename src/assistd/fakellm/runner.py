"""Running the fake upstream on a real uvicorn server: :class:`FakeLLM` for tests, :func:`serve` for the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Generator, Iterable
from types import FrameType, TracebackType
from typing import Any, Self

import uvicorn

from assistd.fakellm.script import Script, Turn, as_script
from assistd.fakellm.server import FakeLLMState, RecordedRequest, create_fake_llm_app

__all__ = ["FakeLLM", "bind_socket", "serve"]


class _Server(uvicorn.Server):
    """uvicorn, told when it is listening, and ending scripted streams at once when asked to exit."""

    def __init__(
        self,
        config: uvicorn.Config,
        state: FakeLLMState,
        *,
        handle_signals: bool,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._state = state
        self._handle_signals = handle_signals
        self._on_ready = on_ready
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if self._handle_signals:
            with super().capture_signals():
                yield
        else:  # embedded in a test process: leave its signal handlers alone
            yield

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._state.begin_shutdown)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()

    def request_exit(self) -> None:
        """Stop (call on the server's loop): end running streams, then shut down."""
        self._state.begin_shutdown()
        self.should_exit = True


def _config(app: Any) -> uvicorn.Config:
    # log_config=None and no log_level: never reconfigure the logging of the host process.
    return uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=5,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0: a free one). Raises OSError."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


async def serve(
    app: Any,
    sock: socket.socket,
    *,
    handle_signals: bool = True,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve the fake's ``app`` on ``sock`` until SIGINT/SIGTERM (the CLI's loop)."""
    from assistd.gctune import tune_after_startup

    tune_after_startup()  # its own pauses would count as lag of the streams it paces
    state: FakeLLMState = app.state.fakellm
    server = _Server(_config(app), state, handle_signals=handle_signals, on_ready=on_ready)
    await server.serve(sockets=[sock])


class FakeLLM:
    """The scripted fake upstream on a real loopback port, for tests.

    ``async with FakeLLM(script) as llm:`` runs it as a task on the running event loop;
    ``with FakeLLM(script) as llm:`` runs it in a background thread with its own loop (for
    synchronous code, or to keep its work off the loop under test). Either way
    ``llm.base_url`` is ``http://127.0.0.1:PORT/v1``.

    ``script`` is a :class:`Script`, its dict/list form, a file path, or None (echo every request).
    """

    def __init__(self, script: Any = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = FakeLLMState(as_script(script))
        self.app = create_fake_llm_app(state=self.state)
        self.host = host
        self._port = port
        self._sock: socket.socket | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- where ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._sock is None:
            raise RuntimeError("the fake LLM is not running")
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (no ``/v1``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``: the ``base_url`` for an OpenAI client or an upstream setting."""
        return self.url + "/v1"

    # -- the script ------------------------------------------------------------------------------
    @property
    def script(self) -> Script:
        return self.state.script

    def load(self, script: Any) -> None:
        """Replace the whole script and play it from its first turn (the request log is kept)."""
        self.state.load(script)

    def reset(self, script: Any = None) -> None:
        """Replace the script and clear the request log."""
        self.state.load(script)
        self.state.clear_requests()

    def add_turns(self, *turns: Turn | dict[str, Any] | str) -> None:
        """Append turns after the pending ones."""
        self.state.add_turns(*turns)

    def set_turns(self, turns: Iterable[Turn | dict[str, Any] | str]) -> None:
        """Replace the pending turns."""
        self.state.set_turns(turns)

    def set_default(self, turn: Turn | dict[str, Any] | str) -> None:
        """Replace the turn that answers requests no pending turn matches."""
        self.state.set_default(turn)

    @property
    def remaining_turns(self) -> list[Turn]:
        return self.state.remaining_turns

    # -- the request log -------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, oldest first (a copy)."""
        return self.state.requests

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The ``POST /v1/chat/completions`` requests only."""
        return [r for r in self.state.requests if r.path.endswith("/chat/completions")]

    @property
    def last_request(self) -> RecordedRequest:
        requests = self.state.requests
        if not requests:
            raise LookupError("the fake LLM has received no request")
        return requests[-1]

    def clear_requests(self) -> None:
        self.state.clear_requests()

    @property
    def active_responses(self) -> int:
        """Answers being sent right now (a stalled stream counts until its client goes away)."""
        return self.state.active_responses

    # -- running on the current event loop -----------------------------------------------------
    async def start(self) -> None:
        if self._sock is not None:
            raise RuntimeError("the fake LLM is already running")
        self.state.closing = False
        self._sock = sock = bind_socket(self.host, self._port)
        ready = asyncio.Event()
        self._server = server = _Server(_config(self.app), self.state, handle_signals=False, on_ready=ready.set)
        self._task = task = asyncio.create_task(server.serve(sockets=[sock]), name="assistd-fakellm")
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.is_set():
            waiter.cancel()
            self._cleanup()
            await task  # re-raises the start-up error
            raise RuntimeError("the fake LLM did not start")

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.request_exit()
        try:
            await self._task
        finally:
            self._cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- running in a background thread ----------------------------------------------------------
    def start_in_thread(self, timeout: float = 10.0) -> None:
        if self._sock is not None:
            raise RuntimeError("the fake LLM is already running")
        self.state.closing = False
        self._sock = sock = bind_socket(self.host, self._port)
        ready = threading.Event()
        failure: list[BaseException] = []

        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._server = _Server(_config(self.app), self.state, handle_signals=False, on_ready=ready.set)
            await self._server.serve(sockets=[sock])

        def target() -> None:
            try:
                asyncio.run(run())
            except BaseException as exc:
                failure.append(exc)
            finally:
                ready.set()

        self._thread = threading.Thread(target=target, name="assistd-fakellm", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure or self._server is None or not self._server.started:
            self.stop_thread()
            raise RuntimeError("the fake LLM did not start") from (failure[0] if failure else None)

    def stop_thread(self, timeout: float = 10.0) -> None:
        thread, loop, server = self._thread, self._loop, self._server
        if thread is None:
            return
        if loop is not None and server is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just finished
                loop.call_soon_threadsafe(server.request_exit)
        thread.join(timeout)
        self._thread = self._loop = None
        self._cleanup()

    def __enter__(self) -> Self:
        self.start_in_thread()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_thread()

    def _cleanup(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._server = None
        self._task = None

"""Kernels per thread: started on first use, reaped when idle, capped, with a warm pool."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import shutil
import time
from collections import OrderedDict
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq
import zmq.asyncio

from assistd import metrics
from assistd.sandbox.cgroup import Cgroups
from assistd.sandbox.config import SandboxConfig
from assistd.sandbox.kernel import WAIT_CHILDREN, Kernel
from assistd.sandbox.probe import preflight, probe
from assistd.sandbox.result import ExecutionResult, SandboxError, SandboxStatus, SandboxUnavailableError

if TYPE_CHECKING:
    from assistd.config import Settings

log = logging.getLogger("assistd.sandbox")

_PRELOAD_TIMEOUT = 120.0
_HEALTH_SECONDS = 3.0
_EXPIRED_MEMORY = 10_000
REPROBE_SECONDS = 30.0  # an unavailable sandbox whose test sandbox failed is probed again at most this often


class SandboxBusyError(SandboxError):
    """Every kernel slot was executing for longer than the execution timeout."""


@dataclass(eq=False)
class _Session:
    key: str
    kernel: Kernel | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = field(default_factory=time.monotonic)
    lost: str | None = None
    """Why the previous kernel is gone, told to the model with the next execution."""
    starting: bool = False
    """A kernel is being started (or taken from the pool) for it: it holds a slot."""


def _seconds(s: float) -> str:
    return f"{s:g} second{'s' if s != 1 else ''}"


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


class SandboxManager:
    """One per process. See the package docstring for the contract."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._status = SandboxStatus(False, "the sandbox has not been started")
        self._started = False
        self._start_lock = asyncio.Lock()
        self._cgroups: Cgroups | None = None
        self._ctx: zmq.asyncio.Context | None = None
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._expired: OrderedDict[str, str] = OrderedDict()
        self._pool: list[Kernel] = []
        self._starting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._freed = asyncio.Condition()
        self._outbox: Path | None = None
        self._results = itertools.count(1)
        self._closed = False
        self._background = True
        self._probed_at = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxManager:
        return cls(SandboxConfig.from_settings(settings))

    @property
    def status(self) -> SandboxStatus:
        return self._status

    @property
    def sessions(self) -> int:
        """Threads that have a live kernel in this process."""
        return sum(1 for s in self._sessions.values() if s.kernel is not None or s.starting)

    @property
    def pool_size(self) -> int:
        """Warm kernels, ready or still importing ``preload``."""
        return len(self._pool)

    @property
    def warm_ready(self) -> int:
        """Warm kernels done importing ``preload``."""
        return sum(1 for k in self._pool if k.ready is None or k.ready.done())

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, *, background: bool = True) -> SandboxStatus:
        """Probe, then (if available) fill the warm pool and start the idle reaper. When unavailable,
        logs one WARNING per missing part, with the command that fixes it."""
        async with self._start_lock:
            if self._started:
                return self._status
            self._background = background
            status = await self._bring_up()
            if not status.available:
                for problem in preflight(self.config) if status.quick else [status.reason]:
                    log.warning("code_interpreter is unavailable: %s", problem)
            self._started = True
            return status

    async def ensure_available(self) -> SandboxStatus:
        """The status, probed again first while the sandbox is unavailable, so that a part installed
        since (bubblewrap, the kernel environment) is used without a restart: at once when the last
        probe failed on a quick check (a missing tool or environment), at most every
        ``REPROBE_SECONDS`` when it failed in a test sandbox (which costs ~1 s of CPU)."""
        if not self._started:
            return await self.start(background=self._background)
        if self._status.available or self._closed:
            return self._status
        wait = 0.0 if self._status.quick else REPROBE_SECONDS
        if time.monotonic() - self._probed_at < wait:
            return self._status
        async with self._start_lock:
            if self._status.available or self._closed or time.monotonic() - self._probed_at < wait:
                return self._status
            status = await self._bring_up()
            if status.available:
                log.info("code_interpreter is available now: %s", status.reason)
            return status

    async def _bring_up(self) -> SandboxStatus:
        """Probe; when available, set up what kernels need (under ``_start_lock``)."""
        status = await asyncio.to_thread(probe, self.config)
        self._probed_at = time.monotonic()
        if status.available:
            self._cgroups = await asyncio.to_thread(Cgroups.discover)
            limits = (
                self._cgroups.reason
                if self._cgroups.available
                else f"no cgroups ({self._cgroups.reason}): rlimits only"
            )
            status = SandboxStatus(True, f"{status.reason}; {limits}")
            self._ctx = zmq.asyncio.Context()
            self._ctx.setsockopt(zmq.LINGER, 0)
            root = self.config.runtime_dir or Path(os.environ.get("TMPDIR", "/tmp"))
            self._outbox = root / f"{os.getpid()}-{secrets.token_hex(4)}"
            self._outbox.mkdir(parents=True, exist_ok=True)
            if self._background:
                self._spawn(self._reaper())
                self._refill()
        self._status = status
        return status

    async def close(self) -> None:
        """Kill every kernel (bound or pooled); later calls to :meth:`execute` raise."""
        self._closed = True
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        kernels = [s.kernel for s in self._sessions.values() if s.kernel is not None] + self._pool
        self._sessions.clear()
        self._pool.clear()
        await asyncio.gather(*(k.kill() for k in kernels), return_exceptions=True)
        if self._ctx is not None:
            self._ctx.destroy(linger=0)
            self._ctx = None
        if self._outbox is not None:
            await asyncio.to_thread(shutil.rmtree, self._outbox, True)
        self._status = SandboxStatus(False, "the sandbox manager is closed")

    async def close_session(self, session_key: str) -> None:
        """Stop a thread's kernel now (e.g. the thread was deleted)."""
        session = self._sessions.pop(session_key, None)
        if session is not None and session.kernel is not None:
            kernel, session.kernel = session.kernel, None
            await kernel.kill()

    def live_sessions(self) -> set[str]:
        """Keys of the sessions whose kernel lives (or is starting, or executing) in this process."""
        return {k for k, s in self._sessions.items() if s.kernel is not None or s.starting or s.lock.locked()}

    def note_lost(self, session_key: str, why: str) -> None:
        """The session's state was lost elsewhere (its kernel lived in another process): unless it has
        a kernel here, its next execution starts in a new one and tells the model ``why``."""
        session = self._sessions.get(session_key)
        if session is None:
            self._forget(session_key, why)
        elif session.kernel is None:
            session.lost = why

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- kernels ---------------------------------------------------------------------------------

    async def _start_kernel(self) -> Kernel:
        assert self._cgroups is not None
        assert self._ctx is not None
        return await Kernel.start(self.config, self._cgroups, self._ctx)

    def _refill(self) -> None:
        if self._closed or self._ctx is None:
            return
        missing = self.config.warm_pool - len(self._pool) - self._starting
        for _ in range(max(missing, 0)):
            self._starting += 1
            self._spawn(self._add_to_pool())

    async def _add_to_pool(self) -> None:
        try:
            kernel = await self._start_kernel()
        except Exception:
            log.exception("could not start a warm kernel")
            return
        finally:
            self._starting -= 1
        if self._closed:
            await kernel.kill()
            return
        if self.config.preload:
            kernel.ready = asyncio.get_running_loop().create_task(self._preload(kernel))
        self._pool.append(kernel)

    async def _preload(self, kernel: Kernel) -> None:
        code = (
            "import importlib as _assistd_importlib\n"
            f"for _assistd_module in {list(self.config.preload)!r}:\n"
            "    try:\n"
            "        _assistd_importlib.import_module(_assistd_module)\n"
            "    except Exception:\n"
            "        pass\n"
            "del _assistd_importlib, _assistd_module\n"
        )
        async with kernel.lock:
            await kernel.run(code, seconds=_PRELOAD_TIMEOUT, silent=True)

    async def _take_kernel(self) -> Kernel:
        """A warm kernel if one is ready, else a new one; the pool refills in the background."""
        kernel = None
        while self._pool:
            candidate = self._pool.pop(0)
            if candidate.alive:
                kernel = candidate
                break
            self._spawn(candidate.kill())
        self._refill()
        if kernel is None:
            kernel = await self._start_kernel()
        return kernel

    async def _make_room(self, keep: _Session, deadline: float) -> None:
        """Evict the least recently used idle session while the cap is reached."""
        while self.sessions >= self.config.max_sessions:
            victim = next(
                (s for s in self._sessions.values() if s is not keep and s.kernel is not None and not s.lock.locked()),
                None,
            )
            if victim is not None:
                kernel, victim.kernel = victim.kernel, None
                self._sessions.pop(victim.key, None)
                self._forget(victim.key, "it was stopped to make room for other threads")
                assert kernel is not None
                await kernel.kill()
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SandboxBusyError(
                    f"all {self.config.max_sessions} code interpreter sessions of this process are busy"
                )
            async with self._freed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._freed.wait(), remaining)

    def _forget(self, key: str, why: str) -> None:
        self._expired[key] = why
        self._expired.move_to_end(key)
        while len(self._expired) > _EXPIRED_MEMORY:
            self._expired.popitem(last=False)

    async def _reaper(self) -> None:
        interval = max(min(self.config.idle_seconds / 2, 30.0), 0.05)
        while True:
            await asyncio.sleep(interval)
            await self.reap_idle()

    async def reap_idle(self) -> int:
        """Stop kernels idle for longer than ``idle_seconds``; how many were stopped."""
        now = time.monotonic()
        idle = [
            s
            for s in self._sessions.values()
            if s.kernel is not None and not s.lock.locked() and now - s.last_used >= self.config.idle_seconds
        ]
        for s in idle:
            self._sessions.pop(s.key, None)
            self._forget(s.key, f"it was idle for more than {_seconds(self.config.idle_seconds)}")
            if s.kernel is not None:
                kernel, s.kernel = s.kernel, None
                await kernel.kill()
        for s in [s for s in self._sessions.values() if s.kernel is None and not s.lock.locked()]:
            if now - s.last_used >= self.config.idle_seconds:  # restarted, then unused: keep only why
                self._sessions.pop(s.key, None)
                if s.lost is not None:
                    self._forget(s.key, s.lost)
        for k in [k for k in self._pool if not k.alive]:
            self._pool.remove(k)
            await k.kill()
        self._refill()
        return len(idle)

    # -- execution -------------------------------------------------------------------------------

    async def execute(
        self,
        session_key: str,
        code: str,
        *,
        files: Sequence[tuple[str, Path]] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the execution's wall-clock limit, in the kernel)
    ) -> ExecutionResult:
        """Run ``code`` in the session's kernel (started if needed), files staged first."""
        status = await self.ensure_available()
        if self._closed or not status.available:
            raise SandboxUnavailableError(status.reason)
        seconds = self.config.timeout_seconds if timeout is None else timeout
        t0 = time.monotonic()
        session = self._sessions.get(session_key)
        if session is None:
            session = self._sessions[session_key] = _Session(session_key)
            if session_key in self._expired:
                session.lost = self._expired.pop(session_key)
        outcome = "failed"  # no kernel could run it, unless it ran
        try:
            async with session.lock:
                if self._sessions.get(session_key) is not session:  # evicted while we waited
                    self._sessions[session_key] = session
                self._sessions.move_to_end(session_key)
                result = await self._execute(session, code, files or [], seconds, t0)
                outcome = result.outcome
                return result
        finally:
            metrics.sandbox_execution(outcome, time.monotonic() - t0)
            session.last_used = time.monotonic()
            async with self._freed:
                self._freed.notify_all()

    async def _execute(
        self, session: _Session, code: str, files: Sequence[tuple[str, Path]], seconds: float, t0: float
    ) -> ExecutionResult:
        notes: list[str] = []
        restarted = oom = False
        if session.kernel is not None and not session.kernel.alive:
            dead, session.kernel = session.kernel, None
            session.lost = "it stopped" + (" (out of memory)" if dead.oom_killed else "")
            await dead.kill()
        if session.lost is not None:
            notes.append(
                f"Note: this thread's previous Python session has ended ({session.lost}); this code runs "
                "in a new one, so variables and files created before are gone."
            )
            session.lost = None
            restarted = True
        if session.kernel is None:
            await self._make_room(session, t0 + seconds)
            session.starting = True  # no await since the cap was checked: the slot is ours
            try:
                session.kernel = await self._take_kernel()
            finally:
                session.starting = False
        kernel = session.kernel
        if kernel.ready is not None:
            with contextlib.suppress(Exception):
                await kernel.ready
            kernel.ready = None
        if files:
            notes += await asyncio.to_thread(kernel.fs.stage, files)
        before = await asyncio.to_thread(kernel.fs.snapshot)
        async with kernel.lock:
            raw = await kernel.run(code, seconds=seconds)
        kernel.last_used = time.monotonic()
        assert self._outbox is not None
        out_dir = self._outbox / str(next(self._results))
        outputs = []
        with contextlib.suppress(OSError):
            outputs = await asyncio.to_thread(kernel.fs.collect, before, out_dir)
        if not outputs:
            await asyncio.to_thread(shutil.rmtree, out_dir, True)
        if raw.timed_out:
            raw.text.add(f"\nExecution timed out after {_seconds(seconds)} and was interrupted.\n")
        if raw.unresponsive or raw.died or not kernel.alive:
            oom = kernel.oom_killed
            session.kernel = None
            await kernel.kill()
            restarted = True
            if raw.unresponsive:
                raw.text.add(
                    "The Python kernel did not stop when interrupted and was restarted: "
                    "variables and files from earlier executions are gone.\n"
                )
            else:
                raw.error = True
                what = (
                    f"ran out of memory (the limit is {_size(self.config.memory_bytes)})"
                    if oom
                    else "died (killed, or out of memory or CPU time)"
                )
                raw.text.add(
                    f"\nThe Python kernel {what} and was restarted: variables and files from "
                    "earlier executions are gone.\n"
                )
        elif await asyncio.to_thread(kernel.reap_strays):
            async with kernel.lock:
                check = await kernel.run(WAIT_CHILDREN, seconds=_HEALTH_SECONDS, silent=True)
            if check.unresponsive or check.died or not kernel.alive:
                session.kernel = None
                await kernel.kill()
                restarted = raw.error = True
                raw.text.add(
                    "\nThe Python kernel stopped responding after the processes this code started were "
                    "stopped, and was restarted: variables and files from earlier executions are gone.\n"
                )
        logs = raw.text.value()
        if notes:
            logs = "\n".join(notes) + "\n" + logs
        return ExecutionResult(
            logs=logs,
            images=raw.images,
            files=outputs,
            error=raw.error,
            timed_out=raw.timed_out,
            oom=oom,
            restarted=restarted,
            duration=time.monotonic() - t0,
            output_dir=out_dir if outputs else None,
        )

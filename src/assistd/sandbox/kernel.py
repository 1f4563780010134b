"""One sandboxed IPython kernel: start it, run code in it, interrupt it, kill it.

The kernel listens on IPC sockets inside its own tmpfs ``/run/kernel``; the host connects to
them through ``/proc/<sandbox pid>/root/run/kernel/k-N`` (root of the sandbox's mount
namespace), so no directory is shared with the host at all. The connection key is handed in
through a pipe (``bwrap --ro-bind-data``), never written to the host's disk.

Interrupts are messages (``interrupt_request`` on the control channel: ``interrupt_mode:
message``); ipykernel answers them by sending SIGINT to its own process group. A kernel that
does not stop within the grace period is killed, with everything in its pid namespace.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import secrets
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.connect import KernelConnectionInfo

from assistd.sandbox import launch
from assistd.sandbox.cgroup import Cgroups, CgroupSet
from assistd.sandbox.config import SandboxConfig
from assistd.sandbox.files import SandboxFS
from assistd.sandbox.result import KernelStartError

log = logging.getLogger("assistd.sandbox")

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_POLL = 0.25  # how often a waiting execution checks that its kernel is still alive
# Run (silently) in a kernel whose children were killed: a zombie counts against the pids limit.
WAIT_CHILDREN = """
import os as _assistd_os
try:
    while _assistd_os.waitpid(-1, _assistd_os.WNOHANG)[0] > 0:
        pass
except ChildProcessError:
    pass
del _assistd_os
"""


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


class _Text:
    """Text that keeps its head and tail when it grows past ``limit`` characters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.head: list[str] = []
        self.head_len = 0
        self.tail: deque[str] = deque()
        self.tail_len = 0
        self.skipped = 0

    def add(self, text: str) -> None:
        if not text:
            return
        half = self.limit // 2
        if self.head_len < half:
            take = text[: half - self.head_len]
            self.head.append(take)
            self.head_len += len(take)
            text = text[len(take) :]
        if not text:
            return
        self.tail.append(text)
        self.tail_len += len(text)
        while self.tail_len > half and len(self.tail) > 1:
            dropped = self.tail.popleft()
            self.tail_len -= len(dropped)
            self.skipped += len(dropped)
        if self.tail_len > half:
            only = self.tail.pop()
            cut = len(only) - half
            self.skipped += cut
            self.tail.append(only[cut:])
            self.tail_len = half

    def value(self) -> str:
        middle = f"\n[... {self.skipped} characters of output skipped ...]\n" if self.skipped else ""
        return "".join(self.head) + middle + "".join(self.tail)


@dataclass
class RawOutcome:
    """What one execution produced, before files are collected."""

    text: _Text
    images: list[bytes] = field(default_factory=list)
    error: bool = False
    timed_out: bool = False
    """The deadline passed (the kernel was interrupted)."""
    unresponsive: bool = False
    """The interrupt did not end it either: the caller must kill the kernel."""
    died: bool = False


def _fd_with(data: bytes) -> int:
    """A pipe's read end holding ``data`` (for bwrap's --file / --ro-bind-data)."""
    r, w = os.pipe()
    try:
        os.write(w, data)
    finally:
        os.close(w)
    return r


async def _read_all(fd: int, seconds: float) -> bytes:
    """Read ``fd`` to EOF in a thread (bwrap closes its info fd once it has written to it)."""

    def read() -> bytes:
        chunks = []
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
        return b"".join(chunks)

    return await asyncio.wait_for(asyncio.to_thread(read), seconds)


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's), from /proc/<pid>/task/*/children."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/task/{tid}/children") as f:
            out.extend(int(x) for x in f.read().split())
    return out


def _descendants(pid: int) -> list[int]:
    seen: list[int] = []
    stack = [pid]
    while stack and len(seen) < 100_000:
        for child in _children(stack.pop()):
            seen.append(child)
            stack.append(child)
    return seen


class Kernel:
    """A running sandboxed kernel. Create with :meth:`start`; one execution at a time."""

    def __init__(
        self,
        config: SandboxConfig,
        proc: asyncio.subprocess.Process,
        init_pid: int,
        kernel_pid: int,
        client: AsyncKernelClient,
        cgroup: CgroupSet | None,
        output_tail: deque[str],
        drain: asyncio.Task[None],
    ) -> None:
        self.config = config
        self.proc = proc
        self.init_pid = init_pid
        self.kernel_pid = kernel_pid
        self.client = client
        self.cgroup = cgroup
        self.output_tail = output_tail
        self._drain_task = drain
        self.fs = SandboxFS(
            Path(f"/proc/{init_pid}/root"), owner=config.sandbox_uid if config.drops_privileges else None
        )
        self.lock = asyncio.Lock()
        self.started_at = time.monotonic()
        self.last_used = self.started_at
        self.ready: asyncio.Task[None] | None = None
        """Preloading in progress (warm-pool kernels); executions wait for it."""
        self._oom_at_start = 0
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    async def start(
        cls, config: SandboxConfig, cgroups: Cgroups, ctx: zmq.asyncio.Context, *, start_seconds: float = 30.0
    ) -> Kernel:
        key = secrets.token_hex(32)
        info: KernelConnectionInfo = {
            "transport": "ipc",
            "shell_port": 1,
            "iopub_port": 2,
            "stdin_port": 3,
            "control_port": 4,
            "hb_port": 5,
            "key": key,
            "signature_scheme": "hmac-sha256",
            "kernel_name": "assistd-sandbox",
        }
        uid = config.sandbox_uid
        cgroup = (
            cgroups.create(memory_bytes=config.memory_bytes, max_processes=config.max_processes)
            if cgroups.available
            else None
        )
        fds = [
            _fd_with(json.dumps({**info, "ip": launch.SOCKET_PREFIX}).encode()),
            _fd_with(f"sandbox:x:{uid}:{uid}:sandbox:{launch.HOME}:/bin/sh\n".encode()),
            _fd_with(f"sandbox:x:{uid}:\n".encode()),
        ]
        info_r, info_w = os.pipe()
        fds.append(info_w)
        argv = launch.launcher(
            config, cgroup, limit_nproc=config.drops_privileges and (cgroup is None or not cgroups.limits_pids)
        ) + launch.bwrap_args(
            config,
            info_fd=info_w,
            connection_fd=fds[0],
            passwd_fd=fds[1],
            group_fd=fds[2],
            command=launch.kernel_command(),
        )
        try:
            # Spawned from the event loop's thread: bwrap's parent-death signal follows the
            # thread that forked it, and this one lives as long as the server.
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                pass_fds=fds,
                start_new_session=True,
                env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"},
            )
        except OSError as e:
            if cgroup is not None:
                cgroup.remove()
            raise KernelStartError(f"could not start bubblewrap: {e}") from e
        finally:
            for fd in fds:
                os.close(fd)
        tail: deque[str] = deque(maxlen=40)
        drain = asyncio.get_running_loop().create_task(_drain(proc, tail))
        client: AsyncKernelClient | None = None
        init_pid: int | None = None
        try:
            deadline = time.monotonic() + start_seconds
            try:
                raw = await _read_all(info_r, start_seconds)
                init_pid = int(json.loads(raw)["child-pid"])
            except (TimeoutError, ValueError, KeyError) as e:
                raise KernelStartError("the sandbox did not start") from e
            kernel_pid = await _wait_sockets(proc, init_pid, deadline)
            client = AsyncKernelClient(context=ctx)
            client.load_connection_info({**info, "ip": f"/proc/{init_pid}/root{launch.SOCKET_PREFIX}"})
            client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=True)
            await _handshake(client, proc, deadline)
        except BaseException as e:
            if client is not None:
                client.stop_channels()
            # Also when cancelled early (the manager closing): bubblewrap may not have armed its
            # parent-death signal yet, so its namespace's init is killed by pid, and the cgroup.
            _kill_sandbox(proc, init_pid)
            if cgroup is not None:
                await asyncio.to_thread(cgroup.kill)
            # proc.wait() also waits for the output pipe to close: never without a limit.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(drain, 2)
            if cgroup is not None:
                await asyncio.to_thread(cgroup.remove)
            if isinstance(e, KernelStartError):
                detail = "".join(tail).strip()
                raise KernelStartError(f"{e}: {detail[-2000:]}" if detail else str(e)) from e
            raise
        finally:
            os.close(info_r)
        kernel = cls(config, proc, init_pid, kernel_pid, client, cgroup, tail, drain)
        kernel._oom_at_start = cgroup.oom_kills() if cgroup else 0
        return kernel

    @property
    def alive(self) -> bool:
        return not self._closed and self.proc.returncode is None

    @property
    def oom_killed(self) -> bool:
        return self.cgroup is not None and self.cgroup.oom_kills() > self._oom_at_start

    async def kill(self) -> None:
        """Kill the sandbox (bubblewrap, its init, the kernel and anything they started)."""
        if self._closed:
            return
        self._closed = True
        if self.ready is not None and not self.ready.done():
            self.ready.cancel()
        _kill_sandbox(self.proc, self.init_pid)
        if self.cgroup is not None:
            await asyncio.to_thread(self.cgroup.kill)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 10)
        # bubblewrap is gone; its init and the kernel die of the parent-death signal just after.
        await asyncio.to_thread(_wait_gone, (self.init_pid, self.kernel_pid), 5.0)
        self.client.stop_channels()
        with contextlib.suppress(TimeoutError, Exception):
            await asyncio.wait_for(self._drain_task, 2)
        if self.cgroup is not None:
            await asyncio.to_thread(self.cgroup.remove)

    def reap_strays(self) -> bool:
        """Kill processes the code left behind (anything in the sandbox but init and the kernel).

        True when there were any, or the kernel has dead children to wait for (only it can
        reap them): then run :data:`WAIT_CHILDREN`, which also tells whether the kernel still
        answers (a forked copy of the kernel shares its ZeroMQ sockets and can wedge them).
        """
        found = False
        for _ in range(50):
            strays = [p for p in _descendants(self.init_pid) if p != self.kernel_pid and _state(p) not in ("Z", None)]
            if not strays:
                break
            found = True
            for pid in strays:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)
        return found or any(_state(p) == "Z" for p in _children(self.kernel_pid))

    # -- execution -------------------------------------------------------------------------------

    def interrupt(self) -> None:
        msg = self.client.session.msg("interrupt_request", {})
        self.client.control_channel.send(msg)

    async def run(self, code: str, *, seconds: float, silent: bool = False) -> RawOutcome:
        """Execute ``code``; on timeout interrupt, and report ``unresponsive`` if that fails too."""
        out = RawOutcome(_Text(self.config.max_log_chars))
        # stop_on_error=False: an error must not make the kernel abort the next request (ours, sent
        # right after an execution we gave up on).
        msg_id = self.client.execute(
            code, silent=silent, store_history=not silent, allow_stdin=False, stop_on_error=False
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        interrupted = False
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                if interrupted:
                    out.unresponsive = True
                    return out
                interrupted = out.timed_out = out.error = True
                self.interrupt()
                deadline = loop.time() + self.config.interrupt_grace_seconds
                continue
            try:
                msg = await self.client.get_iopub_msg(timeout=min(remaining, _POLL))
            except asyncio.CancelledError:
                self.interrupt()  # the caller gave up (e.g. the run was cancelled): stop the code too
                raise
            except Empty:
                if self.proc.returncode is not None or not _alive(self.kernel_pid):
                    out.died = out.error = True
                    return out
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                break
            self._handle(out, kind, content)
        await self._reply(msg_id)
        return out

    def _handle(self, out: RawOutcome, kind: str, content: dict[str, Any]) -> None:
        if kind == "stream":
            out.text.add(strip_ansi(content.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            data = content.get("data", {})
            png = data.get("image/png")
            if png and len(out.images) < self.config.max_images:
                with contextlib.suppress(ValueError):
                    out.images.append(base64.b64decode(png))
            elif "text/plain" in data and not png:
                text = strip_ansi(data["text/plain"])
                out.text.add(text if text.endswith("\n") else text + "\n")
        elif kind == "error":
            out.error = True
            tb = content.get("traceback") or [f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"]
            out.text.add(strip_ansi("\n".join(tb)) + "\n")

    async def _reply(self, msg_id: str) -> None:
        """Consume the execute_reply (it follows the idle status almost at once)."""
        for _ in range(20):
            try:
                reply = await self.client.get_shell_msg(timeout=0.5)
            except Empty:
                if not self.alive:
                    return
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                return


def _state(pid: int) -> str | None:
    """The process's state letter (R, S, Z, ...), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    return _state(pid) not in ("Z", None)


def _kill_sandbox(proc: asyncio.subprocess.Process, init_pid: int | None) -> None:
    """SIGKILL the sandbox's init (its whole pid namespace dies with it) and bubblewrap.

    Only children of bubblewrap are signalled (bubblewrap is our child, not yet reaped, so its
    pid is still its own; init's pid may have been reused if the sandbox ended by itself).
    """
    if proc.returncode is not None:
        return  # bubblewrap exited: its namespace died with it (and its pid is free for reuse)
    targets = [p for p in _children(proc.pid) if init_pid is None or p == init_pid]
    for pid in [*targets, proc.pid]:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _wait_gone(pids: tuple[int, ...], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.005)


async def _drain(proc: asyncio.subprocess.Process, tail: deque[str]) -> None:
    """Keep the last lines the sandbox printed outside of Jupyter (start-up errors)."""
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        tail.append(line.decode(errors="replace"))


async def _wait_sockets(proc: asyncio.subprocess.Process, init_pid: int, deadline: float) -> int:
    """Wait until the kernel has bound its sockets; its host pid (init's only child)."""
    sockets = [Path(f"/proc/{init_pid}/root{launch.SOCKET_PREFIX}-{n}") for n in range(1, 6)]
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise KernelStartError(f"the sandbox exited with status {proc.returncode}")
        with contextlib.suppress(OSError):
            if all(s.exists() for s in sockets):
                children = _children(init_pid)
                if children:
                    return children[0]
        await asyncio.sleep(0.005)
    raise KernelStartError("the kernel did not open its sockets in time")


async def _handshake(client: AsyncKernelClient, proc: asyncio.subprocess.Process, deadline: float) -> None:
    """kernel_info until both the shell reply and its iopub status arrive (iopub is subscribed)."""
    pending: set[str] = set()
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise KernelStartError(f"the kernel exited with status {proc.returncode}")
        pending.add(client.kernel_info())
        # The shell socket queues requests until the kernel reads them: one reply comes for sure.
        with contextlib.suppress(Empty):
            await client.get_shell_msg(timeout=1.0)
        # iopub is a subscription: a status sent before it took effect is lost, so ask again.
        until = time.monotonic() + 0.1
        while time.monotonic() < until:
            try:
                msg = await client.get_iopub_msg(timeout=0.02)
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") in pending and msg["msg_type"] == "status":
                return  # replies to earlier requests, if any, are skipped by Kernel._reply
    raise KernelStartError("the kernel did not answer in time")

"""Escapes that must fail, each asserted: network, host files, the server's secrets, other
threads, resource exhaustion, runaway code, and attacks on the sandbox's own processes."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from pathlib import Path

from prometheus_client import REGISTRY

import assistd
from assistd.config import Settings
from assistd.sandbox import SandboxManager
from tests.sandbox.conftest import SERVER_SECRET


def _executions(outcome: str) -> float:
    """``assistd_sandbox_executions_total{outcome}`` of this process."""
    return REGISTRY.get_sample_value("assistd_sandbox_executions_total", {"outcome": outcome}) or 0.0


def _pids_of(manager: SandboxManager) -> set[int]:
    """Host pids of every process in every sandbox of ``manager`` (bwrap, init, kernel, children)."""
    pids: set[int] = set()
    kernels = [s.kernel for s in manager._sessions.values() if s.kernel] + list(manager._pool)
    for k in kernels:
        pids |= {k.proc.pid, k.init_pid, k.kernel_pid}
        if k.cgroup:
            pids |= k.cgroup.pids()
    return pids


def _first_shadow_user() -> str | None:
    try:
        return Path("/etc/shadow").read_text().split(":", 1)[0]
    except OSError:
        return None


def _server_paths(settings: Settings, manager: SandboxManager) -> list[Path]:
    """Host paths of the server: none may exist inside a sandbox."""
    paths = [
        settings.data_dir.resolve(),
        settings.files_dir.resolve(),
        Path(assistd.__file__).resolve().parent,  # the server's code
        Path(sys.prefix).resolve(),  # the server's venv
        manager.config.venv.resolve(),  # the kernel venv is mounted elsewhere, read-only
        Path("/work"),
        Path("/var/lib/postgresql"),
    ]
    if settings.is_sqlite:
        paths.append(Path(settings.resolved_database_url.split("///", 1)[1]))
    return paths


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


async def test_no_network_no_name_resolution(manager: SandboxManager, thread) -> None:
    code = textwrap.dedent(
        """
        import socket
        def attempt(label, fn):
            try:
                fn()
                print(label, "CONNECTED")
            except OSError as e:
                print(label, "blocked", type(e).__name__)
        attempt("internet", lambda: socket.create_connection(("1.1.1.1", 443), timeout=3))
        attempt("dns", lambda: socket.getaddrinfo("example.com", 443))
        attempt("host postgres", lambda: socket.create_connection(("127.0.0.1", 5432), timeout=3))
        attempt("host unix socket", lambda: socket.socket(socket.AF_UNIX).connect("/var/run/postgresql/.s.PGSQL.5432"))
        attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53)))
        """
    )
    result = await manager.execute(thread(), code)

    assert "CONNECTED" not in result.logs, result.logs
    assert result.logs.count("blocked") == 5, result.logs


async def test_cannot_read_etc_shadow_or_root_files(manager: SandboxManager, thread) -> None:
    code = textwrap.dedent(
        """
        import os
        for path in ("/etc/shadow", "/etc/gshadow", "/root", "/etc/ssh"):
            try:
                if os.path.isdir(path):
                    print(path, "LISTED", os.listdir(path))
                else:
                    print(path, "READ", open(path).read()[:20])
            except OSError as e:
                print(path, "blocked", type(e).__name__)
        print("uid", os.getuid(), "euid", os.geteuid())
        """
    )
    result = await manager.execute(thread(), code)

    assert "READ" not in result.logs, result.logs
    assert "LISTED" not in result.logs, result.logs
    assert result.logs.count("blocked") == 4
    assert "uid 65534 euid 65534" in result.logs
    first_user = _first_shadow_user()
    if first_user:
        assert f"{first_user}:" not in result.logs


async def test_cannot_see_the_servers_environment(manager: SandboxManager, thread) -> None:
    assert os.environ["ASSISTD_TEST_SERVER_SECRET"] == SERVER_SECRET  # the server process has it
    code = textwrap.dedent(
        """
        import os, glob
        print(sorted(os.environ))
        for path in glob.glob("/proc/*/environ"):
            try:
                print(path, open(path, "rb").read())
            except OSError as e:
                print(path, type(e).__name__)
        """
    )
    result = await manager.execute(thread(), code)

    assert SERVER_SECRET not in result.logs
    assert "ASSISTD" not in result.logs
    assert "DATABASE" not in result.logs.upper()


async def test_cannot_read_the_database_or_the_servers_files(
    manager: SandboxManager, thread, settings: Settings
) -> None:
    host_paths = _server_paths(settings, manager)
    code = "import os\n" + "".join(f"print({str(p)!r}, os.path.exists({str(p)!r}))\n" for p in host_paths)
    result = await manager.execute(thread(), code)

    for p in host_paths:
        assert f"{p} False" in result.logs, result.logs


async def test_cannot_write_outside_mnt_data_and_tmp(manager: SandboxManager, thread) -> None:
    code = textwrap.dedent(
        """
        for path in ("/usr/evil", "/opt/kernel/evil", "/etc/evil", "/evil", "/run/kernel/evil"):
            try:
                open(path, "w").write("x" * 4096 * 1024)
                print(path, "WRITTEN")
            except OSError as e:
                print(path, "blocked", e.strerror)
        """
    )
    result = await manager.execute(thread(), code)

    assert "WRITTEN" not in result.logs.replace("/run/kernel/evil WRITTEN", ""), result.logs
    assert "Read-only file system" in result.logs


async def test_cannot_read_another_threads_files(manager: SandboxManager, thread) -> None:
    a, b = thread(), thread()
    await manager.execute(a, "open('/mnt/data/a-secret.txt', 'w').write('top secret of a')")
    code = textwrap.dedent(
        """
        import glob, os
        hits = []
        for pattern in ("/mnt/data/*", "/proc/*/root/mnt/data/*", "/proc/*/cwd/*", "/tmp/*", "/run/kernel/*"):
            hits += glob.glob(pattern)
        for path in hits:
            try:
                print(path, open(path, "rb").read()[:100])
            except OSError:
                print(path)
        print("pids", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
        """
    )
    result = await manager.execute(b, code)

    assert "a-secret" not in result.logs
    assert "top secret" not in result.logs
    assert "pids [1, 2" in result.logs  # its own pid namespace: init and itself (and the glob's own)


async def test_a_planted_symlink_is_not_followed_by_the_host(
    manager: SandboxManager, thread, settings: Settings
) -> None:
    target = settings.data_dir.resolve() / "host-only.txt"
    target.write_text("host data")
    code = (
        "import os\n"
        f"os.symlink({str(target)!r}, '/mnt/data/leak.txt')\n"
        "os.symlink('/etc/shadow', '/mnt/data/shadow')\n"
        "os.mkfifo('/mnt/data/fifo')\n"
        "open('/mnt/data/real.txt', 'w').write('ok')"
    )
    result = await manager.execute(thread(), code)

    assert not result.error, result.logs
    assert [f.name for f in result.files] == ["real.txt"]
    assert all(b"host data" not in f.path.read_bytes() for f in result.files)


async def test_a_fork_bomb_is_contained(make_manager, thread) -> None:
    m = make_manager(max_processes=32)
    t = thread()
    await m.execute(t, "1")

    result = await m.execute(t, "import os\nwhile True:\n    os.fork()", timeout=15)

    assert result.error
    assert "BlockingIOError" in result.logs, result.logs  # fork() failed at the pids limit
    # The forked copies are killed when the execution ends. They share the kernel's ZeroMQ
    # sockets, which can leave the kernel itself wedged: then it is restarted, and says so.
    if result.restarted:
        assert "was restarted" in result.logs
    after = await m.execute(t, "import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
    assert not after.error, after.logs
    assert after.logs.endswith("[1, 2]\n"), after.logs  # init and the kernel, nothing else
    assert (await m.execute(t, "1 + 1")).logs == "2\n"


async def test_allocating_8_gb_fails_and_the_host_is_fine(manager: SandboxManager, thread) -> None:
    t = thread()
    await manager.execute(t, "keep = 'still here'")

    touched = await manager.execute(t, "import numpy as np\na = np.ones(2**30)  # 8 GiB of float64")
    untouched = await manager.execute(t, "b = bytearray(8 * 1024**3)")

    for r in (touched, untouched):
        assert r.error
        assert "MemoryError" in r.logs or r.restarted, r.logs
    follow = await manager.execute(t, "1 + 1")
    assert follow.logs == "2\n"


async def test_exceeding_the_memory_limit_kills_only_the_kernel(manager: SandboxManager, thread) -> None:
    t = thread()
    await manager.execute(t, "x = 1")

    ooms = _executions("oom")
    # 1.5 GB really used (touched): under the address-space rlimit, over the 512 MB cgroup limit.
    result = await manager.execute(t, "chunks = [b'x' * (64 * 1024**2) for _ in range(24)]")

    assert result.error
    if manager._cgroups is not None and manager._cgroups.available:
        assert result.restarted, result.logs
        assert "ran out of memory (the limit is 512 MB)" in result.logs
        assert result.oom and result.outcome == "oom" and _executions("oom") == ooms + 1
    else:
        assert "MemoryError" in result.logs
        assert result.outcome == "error"
    after = await manager.execute(t, "print('x' in dir())")
    assert after.logs == "False\n"  # a new kernel: the old state is gone, as the result said


async def test_writing_1_gb_hits_the_disk_quota(manager: SandboxManager, thread) -> None:
    code = textwrap.dedent(
        """
        import errno
        for path in ("/mnt/data/big.bin", "/tmp/big.bin"):
            written = 0
            try:
                with open(path, "wb") as f:
                    for _ in range(1024):
                        f.write(b"\\0" * 2**20)
                        written += 2**20
                print(path, "WROTE 1 GB")
            except OSError as e:
                print(path, "stopped", errno.errorcode[e.errno], written // 2**20)
        files = [open(f"/mnt/data/part{i}", "wb") for i in range(4)]
        try:
            for _ in range(100):
                for f in files:
                    f.write(b"\\0" * 2**20)
            print("parts WROTE")
        except OSError as e:
            print("parts stopped", errno.errorcode[e.errno])
        """
    )
    result = await manager.execute(thread(), code)

    assert "WROTE" not in result.logs, result.logs
    assert result.logs.count("stopped") == 3
    assert "ENOSPC" in result.logs or "EFBIG" in result.logs
    assert sum(f.size for f in result.files) <= manager.config.disk_bytes


async def test_an_infinite_loop_is_interrupted_at_the_timeout(manager: SandboxManager, thread) -> None:
    t = thread()
    await manager.execute(t, "state = 'kept'")
    started, timeouts = time.monotonic(), _executions("timeout")

    result = await manager.execute(t, "while True:\n    pass", timeout=1.5)

    assert time.monotonic() - started < 1.5 + manager.config.interrupt_grace_seconds + 1
    assert result.timed_out
    assert result.outcome == "timeout" and _executions("timeout") == timeouts + 1
    assert result.error
    assert not result.restarted
    assert "KeyboardInterrupt" in result.logs
    assert "Execution timed out after 1.5 seconds" in result.logs
    assert (await manager.execute(t, "state")).logs == "'kept'\n"  # interrupted, not restarted


async def test_a_loop_that_ignores_interrupts_is_killed_and_restarted(manager: SandboxManager, thread) -> None:
    t = thread()
    await manager.execute(t, "state = 'lost'")

    result = await manager.execute(
        t, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass", timeout=1
    )

    assert result.timed_out
    assert result.restarted
    assert "did not stop when interrupted and was restarted" in result.logs
    after = await manager.execute(t, "print('state' in dir()); 1 + 1")
    assert after.logs == "False\n2\n"


async def test_killing_the_parent_or_everything_does_not_hurt_the_server(manager: SandboxManager, thread) -> None:
    t = thread()
    await manager.execute(t, "state = 'kept'")
    server = os.getpid()

    parent = await manager.execute(t, "import os, signal\nprint(os.getppid())\nos.kill(os.getppid(), signal.SIGKILL)")
    assert parent.logs.startswith("1\n")  # the sandbox's own init: signals from inside are ignored
    assert (await manager.execute(t, "state")).logs == "'kept'\n"

    everything = await manager.execute(t, "import os\nos.system('kill -9 -1')")  # all it can: its own kernel
    assert everything.error
    assert everything.restarted
    suicide = await manager.execute(t, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert suicide.restarted
    assert "died" in suicide.logs

    assert os.getpid() == server
    assert (await manager.execute(t, "1 + 1")).logs == "2\n"


async def test_kernels_die_with_the_server(base_config, tmp_path: Path) -> None:
    """SIGKILL the server process: bubblewrap's --die-with-parent takes every sandbox down."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from assistd.sandbox import SandboxConfig, SandboxManager

        async def main():
            m = SandboxManager(SandboxConfig(venv=Path({str(base_config.venv)!r}), warm_pool=1,
                               runtime_dir=Path({str(tmp_path)!r})))
            await m.start()
            await m.execute("t", "x = 1")
            while not m._pool:
                await asyncio.sleep(0.05)
            kernels = [m._sessions["t"].kernel, *m._pool]
            print(" ".join(str(p) for k in kernels for p in (k.proc.pid, k.init_pid, k.kernel_pid)), flush=True)
            await asyncio.sleep(3600)

        asyncio.run(main())
        """
    )
    server = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(server.stdout.readline(), 60)
        pids = [int(p) for p in line.split()]
        assert len(pids) == 6
        assert all(_alive(p) for p in pids)
    finally:
        server.kill()
        await server.wait()
    for _ in range(200):
        if not any(_alive(p) for p in pids):
            break
        await asyncio.sleep(0.05)
    assert not [p for p in pids if _alive(p)]


async def test_close_kills_every_kernel(make_manager, thread) -> None:
    m = make_manager(warm_pool=1)
    await m.start()
    await asyncio.gather(m.execute(thread(), "1"), m.execute(thread(), "2"))
    pids = _pids_of(m)
    assert pids
    assert all(_alive(p) for p in pids)

    await m.close()

    assert not [p for p in pids if _alive(p)]

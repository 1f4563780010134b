"""Sessions: one kernel per thread, started on first use, reaped when idle, capped, pooled."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistd.config import Settings
from assistd.sandbox import SandboxBusyError, SandboxConfig, SandboxManager, SandboxUnavailableError
from tests.sandbox.conftest import kernel_venv


async def _wait_for_pool(m: SandboxManager, size: int) -> None:
    for _ in range(600):
        if m.warm_ready >= size:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the warm pool never reached {size}")


async def test_a_warm_kernel_serves_a_new_thread_at_once(make_manager, thread) -> None:
    m = make_manager(warm_pool=1)
    await m.start()
    await _wait_for_pool(m, 1)

    started = time.monotonic()
    result = await m.execute(thread(), "1 + 1")

    assert result.logs == "2\n"
    assert time.monotonic() - started < 0.5
    await _wait_for_pool(m, 1)  # refilled in the background


async def test_idle_kernels_are_reaped_and_the_model_is_told(make_manager, thread) -> None:
    m = make_manager(idle_seconds=0.2)
    await m.start(background=False)
    t = thread()
    await m.execute(t, "x = 1")
    assert m.sessions == 1
    assert await m.reap_idle() == 0  # just used

    await asyncio.sleep(0.3)
    assert await m.reap_idle() == 1

    assert m.sessions == 0
    result = await m.execute(t, "print('x' in dir())")
    assert result.restarted
    assert "previous Python session has ended (it was idle for more than 0.2 seconds)" in result.logs
    assert result.logs.endswith("False\n")


async def test_the_least_recently_used_idle_kernel_is_evicted_at_the_cap(make_manager, thread) -> None:
    m = make_manager(max_sessions=2)
    a, b, c = thread(), thread(), thread()
    await m.execute(a, "v = 'a'")
    await m.execute(b, "v = 'b'")
    await m.execute(a, "v")  # a is now more recent than b

    await m.execute(c, "v = 'c'")

    assert m.sessions == 2
    assert (await m.execute(a, "v")).logs == "'a'\n"
    evicted = await m.execute(b, "print('v' in dir())")
    assert evicted.restarted
    assert "to make room for other threads" in evicted.logs


async def test_a_busy_process_waits_then_says_so(make_manager, thread) -> None:
    m = make_manager(max_sessions=1)
    busy = asyncio.create_task(m.execute(thread(), "import time; time.sleep(3)"))
    for _ in range(200):  # until it holds the only slot
        if m.sessions == 1:
            break
        await asyncio.sleep(0.02)

    with pytest.raises(SandboxBusyError):
        await m.execute(thread(), "1", timeout=0.5)

    queued = await m.execute(thread(), "1 + 1", timeout=10)  # waits for the slot, evicts the idle one
    assert queued.logs == "2\n"
    assert not (await busy).error


async def test_executions_of_one_thread_run_one_at_a_time(manager: SandboxManager, thread) -> None:
    t = thread()
    await manager.execute(t, "log = []")

    await asyncio.gather(
        *(
            manager.execute(t, f"import time\nlog.append(('start', {i}))\ntime.sleep(0.05)\nlog.append(('end', {i}))")
            for i in range(4)
        )
    )

    result = await manager.execute(t, "print(all(log[i][1] == log[i + 1][1] for i in range(0, len(log), 2)), len(log))")
    assert result.logs == "True 8\n"


async def test_ten_threads_execute_at_once(manager: SandboxManager, thread) -> None:
    keys = [thread() for _ in range(10)]

    results = await asyncio.gather(*(manager.execute(k, f"n = {i}\nn * n") for i, k in enumerate(keys)))

    assert [r.logs for r in results] == [f"{i * i}\n" for i in range(10)]
    again = await asyncio.gather(*(manager.execute(k, "n") for k in keys))
    assert [r.logs for r in again] == [f"{i}\n" for i in range(10)]


async def test_close_session_stops_the_threads_kernel(make_manager, thread) -> None:
    m = make_manager()
    t = thread()
    await m.execute(t, "x = 1")
    kernel = m._sessions[t].kernel

    await m.close_session(t)

    assert m.sessions == 0
    assert not kernel.alive
    assert "'x' in dir()" and (await m.execute(t, "print('x' in dir())")).logs == "False\n"


async def test_unavailable_without_the_kernel_venv(tmp_path: Path, thread) -> None:
    m = SandboxManager(SandboxConfig(venv=tmp_path / "missing", runtime_dir=tmp_path))

    status = await m.start()

    assert not status.available
    assert f"the kernel environment {tmp_path / 'missing'} does not exist" in status.reason
    assert "run `assistd setup`" in status.reason  # SandboxConfig's default command
    with pytest.raises(SandboxUnavailableError, match="assistd setup"):
        await m.execute(thread(), "print('never runs')")
    await m.close()


async def test_an_installed_part_is_used_by_the_next_execution(tmp_path: Path, thread) -> None:
    venv = tmp_path / "kernel-venv"
    m = SandboxManager(SandboxConfig(venv=venv, runtime_dir=tmp_path, warm_pool=0))
    status = await m.start(background=False)
    assert not status.available and status.quick  # found without starting a sandbox: cheap to check again

    venv.symlink_to(kernel_venv(), target_is_directory=True)  # installed while the server runs
    result = await m.execute(thread(), "print(1 + 1)")

    assert result.logs == "2\n"
    assert m.status.available and "kernel environment" in m.status.reason
    await m.close()


@pytest.fixture
def venv_without_ipykernel() -> Iterator[Path]:
    """A venv whose Python runs but lacks ipykernel, within reach of the sandbox's uid (pytest's
    tmp_path is not, as root), so that the test sandbox itself fails."""
    with tempfile.TemporaryDirectory() as d:
        Path(d).chmod(0o755)
        venv = Path(d) / "venv"
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").symlink_to("/usr/bin/python3")
        yield venv


async def test_a_failing_test_sandbox_is_not_probed_again_at_once(venv_without_ipykernel: Path, thread) -> None:
    m = SandboxManager(SandboxConfig(venv=venv_without_ipykernel, runtime_dir=venv_without_ipykernel, warm_pool=0))
    status = await m.start(background=False)
    try:
        assert not status.available and not status.quick
        assert status.reason.startswith("a test sandbox failed (exit status 1) (run `assistd setup`)")
        assert "ipykernel" in status.reason
        assert await m.ensure_available() is status  # within REPROBE_SECONDS: the verdict stands
        with pytest.raises(SandboxUnavailableError, match="a test sandbox failed"):
            await m.execute(thread(), "print('never runs')")
    finally:
        await m.close()


async def test_settings_reach_the_sandbox(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        sandbox_timeout_seconds=7,
        sandbox_memory_bytes=256 * 1024 * 1024,
        sandbox_disk_bytes=8 * 1024 * 1024,
        sandbox_max_sessions=3,
        sandbox_warm_pool=0,
        sandbox_preload="numpy, pandas",
    )

    config = SandboxManager.from_settings(settings).config

    assert config.venv == (tmp_path / "sandbox" / "venv").absolute()
    assert (config.timeout_seconds, config.memory_bytes, config.disk_bytes) == (7, 256 * 1024 * 1024, 8 * 1024 * 1024)
    assert (config.max_sessions, config.warm_pool, config.preload) == (3, 0, ("numpy", "pandas"))


async def test_limits_are_applied_inside(make_manager, thread) -> None:
    m = make_manager(disk_bytes=8 * 1024 * 1024, max_open_files=256, cpu_seconds=600)
    code = (
        "import os, resource\n"
        "print(resource.getrlimit(resource.RLIMIT_FSIZE)[0], resource.getrlimit(resource.RLIMIT_NOFILE)[0],"
        " resource.getrlimit(resource.RLIMIT_CPU)[0])\n"
        "st = os.statvfs('/mnt/data'); print(st.f_blocks * st.f_frsize)\n"
        "print(os.environ['HOME'], os.getcwd(), sorted(os.environ))"
    )

    result = await m.execute(thread(), code)

    lines = result.logs.splitlines()
    assert lines[0] == f"{8 * 1024 * 1024} 256 600"
    assert lines[1] == str(8 * 1024 * 1024)
    assert lines[2].startswith("/tmp /mnt/data [")


async def test_a_cancelled_execution_stops_the_code(manager: SandboxManager, thread) -> None:
    t = thread()
    await manager.execute(t, "state = 'kept'")
    task = asyncio.create_task(manager.execute(t, "import time\nfor _ in range(600):\n    time.sleep(0.05)"))
    await asyncio.sleep(0.5)  # let it start running (no event to wait on: the kernel is busy)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    started = time.monotonic()
    result = await manager.execute(t, "state")
    assert result.logs == "'kept'\n"  # interrupted, not restarted
    assert time.monotonic() - started < 5

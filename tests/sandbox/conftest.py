"""Fixtures for the code-interpreter sandbox: real bubblewrap, real kernels, no fakes.

These tests need ``bwrap`` and the kernel venv (``apt-get install bubblewrap`` then
``assistd setup``, which puts it at ./data/sandbox/venv; or point
ASSISTD_SANDBOX_VENV at one). Without them they FAIL with that instruction: CI installs both.
A developer who cannot run them can deselect them with ``-m "not sandbox"``.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from assistd.sandbox import SandboxConfig, SandboxManager, probe

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024

# A secret in the server's environment before any kernel starts: no kernel may see it.
SERVER_SECRET = f"assistd-test-secret-{secrets.token_hex(8)}"
os.environ["ASSISTD_TEST_SERVER_SECRET"] = SERVER_SECRET


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sandbox: needs bubblewrap and the kernel venv (assistd setup)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.sandbox)


def kernel_venv() -> Path:
    env = os.environ.get("ASSISTD_SANDBOX_VENV")
    return Path(env) if env else ROOT / "data" / "sandbox" / "venv"


@pytest.fixture(scope="session")
def base_config(tmp_path_factory: pytest.TempPathFactory) -> SandboxConfig:
    """Test-sized limits: small memory and disk so the escape tests are quick."""
    config = SandboxConfig(
        venv=kernel_venv(),
        timeout_seconds=20,
        interrupt_grace_seconds=2,
        memory_bytes=512 * MB,
        disk_bytes=64 * MB,
        max_processes=64,
        warm_pool=2,
        runtime_dir=tmp_path_factory.mktemp("sandbox-outbox"),
    )
    status = probe(config)
    if not status.available:
        pytest.fail(
            f"the code interpreter sandbox is unavailable: {status.reason}\n"
            "Install it with `.venv/bin/assistd setup` (as root, or `apt-get install bubblewrap` first) "
            '(or deselect these tests with -m "not sandbox").',
            pytrace=False,
        )
    return config


@pytest.fixture(scope="session")
async def manager(base_config: SandboxConfig) -> AsyncIterator[SandboxManager]:
    """One manager for the tests that do not need special limits (as a server has one)."""
    m = SandboxManager(base_config)
    status = await m.start()
    assert status.available, status.reason
    try:
        yield m
    finally:
        await m.close()


@pytest.fixture
async def make_manager(base_config: SandboxConfig) -> AsyncIterator[Callable[..., SandboxManager]]:
    """Managers with other limits, closed after the test."""
    made: list[SandboxManager] = []

    def make(**changes: object) -> SandboxManager:
        m = SandboxManager(replace(base_config, **{"warm_pool": 0, **changes}))
        made.append(m)
        return m

    yield make
    for m in made:
        await m.close()


@pytest.fixture
def thread() -> Callable[[], str]:
    """Fresh session keys (thread ids)."""
    return lambda: f"thread_{uuid.uuid4().hex}"

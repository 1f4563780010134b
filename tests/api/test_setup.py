"""``assistd setup``: one line per part (what it found or did, and where), idempotent, and, as
root, a kernel environment the sandbox's uid can read wherever the clone is.

These runs reuse what the machine already has (the installed weights, the kernel venv that
``assistd setup`` built for the suite, bubblewrap), so they install nothing and take seconds; the
install path of a fresh clone runs in CI (.ci/first-command.sh runs the README's first command).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistd.config import Settings
from assistd.retrieval._minilm import package_model_dir
from assistd.sandbox import SandboxConfig
from assistd.sandbox.probe import preflight
from assistd.setup import run_setup, setup_command
from tests.api.test_serve import base_env, cli

ROOT = Path(__file__).resolve().parents[2]
KERNEL_VENV = Path(os.environ.get("ASSISTD_SANDBOX_VENV") or ROOT / "data" / "sandbox" / "venv")


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` (symlinks not followed) with its mtime and size."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = (Path(dirpath) / name).lstat()
            out[os.path.join(dirpath, name)] = (st.st_mtime_ns, st.st_size)
    return out


def test_a_second_run_finds_everything_and_changes_nothing(tmp_path: Path) -> None:
    env = base_env(tmp_path, None)
    env["ASSISTD_SANDBOX_VENV"] = str(KERNEL_VENV)
    before = tree(KERNEL_VENV)

    first = cli("setup", env=env)
    second = cli("setup", env=env)

    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    data_dir = tmp_path / "data"
    assert lines[0] == (
        f"assistd setup: data directory {data_dir} (SQLite database {data_dir / 'assistd.db'}, files in "
        f"{data_dir / 'files'})"
    )
    assert lines[1] == f"[ok] file_search weights: all-MiniLM-L6-v2 in {package_model_dir()} (sha256 verified)"
    assert lines[2].startswith(f"[ok] bubblewrap: {shutil.which('bwrap')} (bubblewrap ")
    assert lines[3].startswith(f"[ok] kernel environment: {KERNEL_VENV} (ipykernel ")
    assert all(f"{name} " in lines[3] for name in ("numpy", "pandas", "matplotlib"))
    assert lines[4].startswith("[ok] code interpreter sandbox: a test sandbox ran (bubblewrap ")
    assert lines[5].startswith("[ok] antiword: ") if shutil.which("antiword") else lines[5].startswith("[--] antiword")
    assert lines[6:] == ["file_search: ready; code_interpreter: ready"]
    assert second.returncode == 0 and second.stdout == first.stdout  # nothing was missing: nothing done
    assert not any(line.startswith("[..]") for line in lines)
    assert tree(KERNEL_VENV) == before
    assert not data_dir.exists()  # setup makes no database: `serve` does


def test_check_names_each_missing_part_and_its_fix(tmp_path: Path) -> None:
    env = base_env(tmp_path, None)
    env.update(
        ASSISTD_LOCAL_EMBEDDER_WEIGHTS=str(tmp_path / "weights"),
        ASSISTD_SANDBOX_BWRAP=str(tmp_path / "bwrap"),
        ASSISTD_SANDBOX_VENV=str(tmp_path / "kernel"),
    )

    r = cli("setup", "--check", env=env)

    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[1].startswith(
        "[!!] file_search weights: file_search is unavailable: the local embedder's model weights "
        f"(all-MiniLM-L6-v2) are not in {tmp_path / 'weights'}"
    )
    assert lines[2].startswith(f"[!!] bubblewrap: not installed at {tmp_path / 'bwrap'} (ASSISTD_SANDBOX_BWRAP)")
    assert "apt-get install bubblewrap" in lines[2]
    fix = setup_command(tmp_path / "data")
    assert lines[3] == f"[!!] kernel environment: {tmp_path / 'kernel'} is missing or incomplete: run `{fix}`"
    assert lines[-1] == "file_search: NOT ready (see above); code_interpreter: NOT ready (see above)"
    assert not (tmp_path / "kernel").exists() and not (tmp_path / "weights").exists()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can pass through (pytest's tmp_path is under a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="assistd-open-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_kernel_environment_is_kept_where_the_sandbox_uid_can_read_it(tmp_path: Path, open_dir: Path) -> None:
    data_dir = tmp_path / "data"  # tmp_path's parent is mode 0700, like /root
    settings = Settings(data_dir=data_dir)
    config = SandboxConfig.from_settings(settings)
    if os.geteuid() != 0:  # the kernel runs as the server's own user: the data directory's path is used as is
        lines: list[str] = []
        assert run_setup(settings, check=True, say=lines.append) == 1
        assert f"[!!] kernel environment: {data_dir / 'sandbox' / 'venv'} is missing or incomplete" in lines[3]
        return
    # A kernel environment made where the sandbox's uid cannot go (an earlier version, a copied tree).
    stale = data_dir / "sandbox" / "venv"
    (stale / "bin").mkdir(parents=True)
    (stale / "bin" / "python").symlink_to("/usr/bin/python3")
    [problem] = preflight(config)
    assert problem.startswith(f"the kernel environment {stale} cannot be read by uid 65534")
    assert f"run `{setup_command(data_dir)}` (it keeps the environment in /opt/assistd/kernel-venv" in problem
    shared = open_dir / "kernel-venv"
    shared.symlink_to(KERNEL_VENV, target_is_directory=True)  # already built: nothing to install

    lines = []
    status = run_setup(settings, say=lines.append, root_kernel_venv=shared)
    again: list[str] = []
    status_again = run_setup(settings, say=again.append, root_kernel_venv=shared)

    assert status == 0, lines
    assert stale.is_symlink() and stale.readlink() == shared
    assert lines[3].startswith(f"[..] kernel environment: removing {stale}: uid 65534 cannot reach it")
    assert lines[4].startswith(f"[..] kernel environment: linked {stale} to {shared}")
    assert lines[5].startswith(f"[ok] kernel environment: {stale} -> {KERNEL_VENV.resolve()} (ipykernel ")
    assert lines[6].startswith("[ok] code interpreter sandbox: a test sandbox ran")
    assert lines[-1] == "file_search: ready; code_interpreter: ready"
    assert status_again == 0 and not any(line.startswith("[..]") for line in again), again
    assert preflight(config) == []
    assert stat.S_IMODE(tmp_path.parent.stat().st_mode) & stat.S_IXOTH == 0  # still closed: the link did it

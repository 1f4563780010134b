"""The sandbox's limits and paths, as one frozen value built from :class:`assistd.config.Settings`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistd.config import Settings

MB = 1024 * 1024
GB = 1024 * MB

# Modules a warm kernel imports before it is handed to a thread (first `import pandas` costs ~1 s).
DEFAULT_PRELOAD = ("numpy", "pandas", "matplotlib.pyplot")

# Where `assistd setup`, run as root, keeps the kernel venv when the data directory's is out of the
# sandbox uid's reach (a clone in /root): linked from <data dir>/sandbox/venv.
ROOT_KERNEL_VENV = Path("/opt/assistd/kernel-venv")


@dataclass(frozen=True)
class SandboxConfig:
    venv: Path
    """The kernel's own virtual environment (``assistd setup``), mounted read-only."""
    bwrap: Path | None = None
    """The bubblewrap binary; None: ``bwrap`` in the system's directories."""
    setup_command: str = "assistd setup"
    """The command that installs what is missing, named in the reasons the sandbox is unavailable."""
    timeout_seconds: float = 60.0
    """Wall-clock limit of one execution: interrupt, then kill and restart."""
    interrupt_grace_seconds: float = 3.0
    """How long an interrupted execution may take to stop before the kernel is killed."""
    idle_seconds: float = 600.0
    """A thread's kernel is stopped after this long without an execution."""
    max_sessions: int = 16
    """Kernels bound to threads in this process; the least recently used idle one is evicted."""
    warm_pool: int = 1
    """Kernels started ahead of need, so a thread's first execution does not wait for one."""
    memory_bytes: int = 2 * GB
    """Memory cgroup limit (and, loosened, the address-space rlimit) of one kernel."""
    disk_bytes: int = 512 * MB
    """Size of the /mnt/data tmpfs (and of /tmp), and the file-size rlimit."""
    cpu_seconds: int = 900
    """CPU time a kernel may use over its whole life (RLIMIT_CPU); it is restarted after."""
    max_processes: int = 128
    """Tasks (processes and threads) in one sandbox (pids cgroup)."""
    max_open_files: int = 1024
    max_log_chars: int = 100_000
    """Longer logs keep their head and tail."""
    max_images: int = 20
    preload: tuple[str, ...] = DEFAULT_PRELOAD
    """Modules imported by warm-pool kernels before use."""
    sandbox_uid: int = 65534
    """Host uid (and gid) the kernel runs as when the server runs as root."""
    runtime_dir: Path | None = None
    """Where output files are handed over (default: ``<data_dir>/sandbox/outbox``)."""
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxConfig:
        from assistd.setup import setup_command

        preload = tuple(m.strip() for m in settings.sandbox_preload.split(",") if m.strip())
        return cls(
            venv=settings.resolved_sandbox_venv.absolute(),
            bwrap=settings.sandbox_bwrap,
            setup_command=setup_command(settings.data_dir),
            timeout_seconds=settings.sandbox_timeout_seconds,
            idle_seconds=settings.sandbox_idle_seconds,
            max_sessions=settings.sandbox_max_sessions,
            warm_pool=settings.sandbox_warm_pool,
            memory_bytes=settings.sandbox_memory_bytes,
            disk_bytes=settings.sandbox_disk_bytes,
            cpu_seconds=settings.sandbox_cpu_seconds,
            max_processes=settings.sandbox_max_processes,
            preload=preload,
            runtime_dir=settings.data_dir / "sandbox" / "outbox",
        )

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def drops_privileges(self) -> bool:
        """Root runs the sandbox as ``sandbox_uid``: root-owned files stay unreadable inside."""
        return os.geteuid() == 0

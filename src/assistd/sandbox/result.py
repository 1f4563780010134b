"""What the sandbox hands back: execution results, the probe's verdict, its errors."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from assistd.sandbox.files import OutputFile


class SandboxError(Exception):
    """Base of the sandbox's errors."""


class SandboxUnavailableError(SandboxError):
    """The sandbox cannot run code here; ``str(error)`` says why. Code never runs unsandboxed."""


class KernelStartError(SandboxError):
    """A kernel did not start (its output's tail is in the message)."""


@dataclass(frozen=True)
class SandboxStatus:
    available: bool
    reason: str
    """Why not, when unavailable (with the command that fixes it); what limits apply, when available."""
    quick: bool = False
    """Unavailable for a reason found without starting a sandbox (a tool or the kernel environment
    missing): checking again costs nothing."""


@dataclass
class ExecutionResult:
    logs: str
    """stdout, stderr, results and tracebacks, as the model should read them (no ANSI codes)."""
    images: list[bytes] = field(default_factory=list)
    """PNG images the code displayed (matplotlib figures, ``display(Image(...))``)."""
    files: list[OutputFile] = field(default_factory=list)
    """Files created or changed under /mnt/data; host copies owned by the caller."""
    error: bool = False
    """The code raised (its traceback is in ``logs``), timed out, or killed its kernel."""
    timed_out: bool = False
    """The execution hit its wall-clock limit and was interrupted (or, failing that, killed)."""
    oom: bool = False
    """The kernel ran out of memory (and was restarted)."""
    restarted: bool = False
    """The kernel died or was killed: the thread's variables and /mnt/data are gone."""
    duration: float = 0.0
    output_dir: Path | None = None

    @property
    def outcome(self) -> str:
        """For the metrics: ``timeout``, ``oom``, ``error`` (the code raised, or its kernel died) or ``ok``."""
        if self.timed_out:
            return "timeout"
        if self.oom:
            return "oom"
        return "error" if self.error else "ok"

    def cleanup(self) -> None:
        """Remove the host copies of ``files`` (call it once they are stored elsewhere)."""
        if self.output_dir is not None:
            shutil.rmtree(self.output_dir, ignore_errors=True)
            self.output_dir = None

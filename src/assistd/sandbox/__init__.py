"""The code interpreter's sandbox: a stateful, isolated Python kernel per thread.

Public API (what the run executor uses)::

    from assistd.sandbox import SandboxManager, SandboxError, stage_names

    manager = SandboxManager.from_settings(settings)   # one per process (AppState.sandbox)
    status = await manager.start()                      # probe; warm pool; idle reaper
    status.available, status.reason                     # tool unavailable -> say `reason`
    status = await manager.ensure_available()           # before a run needs it: probes again while
                                                        # unavailable (a part installed since is used)

    result = await manager.execute(
        thread_id,                                      # session key: one kernel per thread
        code,                                           # the model's `code` argument
        files=[("sales.csv", Path("/blobs/ab12"))],     # staged at /mnt/data/sales.csv
        timeout=None,                                   # default ASSISTD_SANDBOX_TIMEOUT_SECONDS
    )
    result.logs        # str: stdout, stderr, results, tracebacks (no ANSI) -> a `logs` output
    result.images      # list[bytes] PNG -> `assistants_output` File + `image` output
    result.files       # list[OutputFile(name, sandbox_path, path, size)], new or changed files
    result.error, result.timed_out, result.restarted
    result.cleanup()   # remove the host copies of result.files once stored as Files

    await manager.close_session(thread_id)              # thread deleted
    await manager.close()                               # shutdown: every kernel dies

When the sandbox is unavailable, ``start`` logs one WARNING per missing part (bubblewrap, the
kernel environment...) with the command that fixes it, and ``reason`` names them all.
``execute`` raises :class:`SandboxUnavailableError` when the probe failed (the code is not run,
ever, outside a sandbox), :class:`SandboxBusyError` when every kernel slot stayed busy for the
whole timeout, and :class:`KernelStartError` when a kernel would not start; all are
:class:`SandboxError`. Everything the code did wrong (exceptions, timeouts, running out of
memory, killing its own kernel) comes back as a result with ``error`` set and an explanation
in ``logs`` written for the model, so that it can fix its code. Cancelling ``execute`` (the run
was cancelled) interrupts the code; executions of one thread never overlap.

Files: ``files`` are copied to ``/mnt/data/<name>`` with :func:`stage_names` (no paths, no
``..``; duplicates get `` (2)``), once per thread unless the source changes. After each
execution, regular files under /mnt/data that are new or changed (inode, size, mtime) are copied
out to the host and returned; ``sandbox_path`` is what ``sandbox:/mnt/data/…`` links name.
Processes the code started do not outlive its execution.

Isolation (see ``launch.py``): bubblewrap with new user/pid/net/ipc/uts/cgroup namespaces, uid
65534, no capabilities, no network, cleared environment, read-only /usr and kernel venv, nothing
of the server mounted; rlimits (address space, file size, open files, CPU time) and, where the
host allows, a memory and pids cgroup per kernel. ``/mnt/data`` and ``/tmp`` are tmpfs of the
disk quota's size: the quota is enforced by the kernel (ENOSPC), not checked afterwards.

Limits and timeouts come from ``ASSISTD_SANDBOX_*`` settings (README, "Code interpreter").
"""

from assistd.sandbox.config import SandboxConfig
from assistd.sandbox.files import OutputFile, safe_filename, stage_names
from assistd.sandbox.manager import SandboxBusyError, SandboxManager
from assistd.sandbox.probe import probe
from assistd.sandbox.result import (
    ExecutionResult,
    KernelStartError,
    SandboxError,
    SandboxStatus,
    SandboxUnavailableError,
)

__all__ = [
    "ExecutionResult",
    "KernelStartError",
    "OutputFile",
    "SandboxBusyError",
    "SandboxConfig",
    "SandboxError",
    "SandboxManager",
    "SandboxStatus",
    "SandboxUnavailableError",
    "probe",
    "safe_filename",
    "stage_names",
]

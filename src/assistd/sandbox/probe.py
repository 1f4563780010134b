"""Can this machine run sandboxed code? Checked once at start-up (and by ``assistd sandbox check``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from assistd.sandbox import launch
from assistd.sandbox.config import SandboxConfig
from assistd.sandbox.result import SandboxStatus

# Runs inside a real sandbox: imports what a kernel needs and checks the isolation holds.
_CHECK = """
import json, os, socket, sys
import ipykernel
report = {"python": sys.version.split()[0], "ipykernel": ipykernel.__version__, "uid": os.getuid()}
for name in ("numpy", "pandas", "matplotlib"):
    try:
        report[name] = __import__(name).__version__
    except Exception as e:
        report[name] = None
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("1.1.1.1", 53))
    report["network"] = True
except OSError:
    report["network"] = False
report["server_env"] = sorted(k for k in os.environ if k.startswith("ASSISTD"))
print(json.dumps(report))
"""

INSTALL_HINT = "run `assistd sandbox install`"


def _pipe_with(data: bytes) -> int:
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def _bwrap_version() -> str:
    try:
        out = subprocess.run([launch.tool("bwrap") or "bwrap", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "bubblewrap"
    return out.stdout.strip() or "bubblewrap"


def probe(config: SandboxConfig, *, timeout: float = 60.0) -> SandboxStatus:
    """Start one sandbox with the kernel's Python and check it. Blocking (run it in a thread)."""
    tools = list(launch.REQUIRED_TOOLS) + (["setpriv"] if config.drops_privileges else [])
    for name in tools:
        if launch.tool(name) is None:
            package = "bubblewrap" if name == "bwrap" else "util-linux"
            return SandboxStatus(False, f"`{name}` is not installed (Debian/Ubuntu: apt-get install {package})")
    try:
        if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
            return SandboxStatus(False, "user namespaces are disabled (/proc/sys/user/max_user_namespaces is 0)")
    except (OSError, ValueError):
        pass
    if not config.python.exists():
        return SandboxStatus(False, f"the kernel environment {config.venv} does not exist: {INSTALL_HINT}")
    uid = config.sandbox_uid
    fds = [
        _pipe_with(b"{}"),
        _pipe_with(f"sandbox:x:{uid}:{uid}:sandbox:/tmp:/bin/sh\n".encode()),
        _pipe_with(f"sandbox:x:{uid}:\n".encode()),
    ]
    info_r, info_w = os.pipe()
    fds.append(info_w)
    argv = launch.launcher(config, None, limit_nproc=False) + launch.bwrap_args(
        config,
        info_fd=info_w,
        connection_fd=fds[0],
        passwd_fd=fds[1],
        group_fd=fds[2],
        command=[f"{launch.KERNEL_VENV}/bin/python", "-c", _CHECK],
    )
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"},
        )
    except subprocess.TimeoutExpired:
        return SandboxStatus(False, f"a test sandbox did not finish within {timeout:g} s")
    except OSError as e:
        return SandboxStatus(False, f"could not run bubblewrap: {e}")
    finally:
        for fd in [*fds, info_r]:
            os.close(fd)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()[-1500:]
        hint = ""
        if "ipykernel" in detail or "No such file" in detail:
            hint = f" ({INSTALL_HINT})"
        if "Permission denied" in detail and config.drops_privileges:
            hint = (
                f" (the kernel environment and its parent directories must be readable by uid "
                f"{config.sandbox_uid}; or set ASSISTD_SANDBOX_VENV)"
            )
        return SandboxStatus(False, f"a test sandbox failed (exit status {done.returncode}){hint}: {detail}")
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return SandboxStatus(False, f"a test sandbox printed something unexpected: {done.stdout[-500:]!r}")
    if report.get("network"):
        return SandboxStatus(False, "a test sandbox could reach the network; refusing to run code")
    if report.get("server_env"):
        return SandboxStatus(False, "a test sandbox could see the server's environment; refusing to run code")
    missing = [m for m in ("numpy", "pandas", "matplotlib") if not report.get(m)]
    versions = ", ".join(
        f"{k} {report[k]}" for k in ("python", "ipykernel", "numpy", "pandas", "matplotlib") if report.get(k)
    )
    reason = f"{_bwrap_version()}; kernel environment {config.venv} ({versions})"
    if missing:
        reason += f"; missing {', '.join(missing)} ({INSTALL_HINT})"
    return SandboxStatus(True, reason)

"""Can this machine run sandboxed code? Checked once at start-up (and by ``assistd sandbox check``)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from assistd.sandbox import launch
from assistd.sandbox.config import ROOT_KERNEL_VENV, SandboxConfig
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


def _pipe_with(data: bytes) -> int:
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def _bwrap_version(config: SandboxConfig) -> str:
    try:
        out = subprocess.run([launch.bwrap(config) or "bwrap", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "bubblewrap"
    return out.stdout.strip() or "bubblewrap"


def apt_command(*packages: str) -> str:
    """The command a user runs to install Debian/Ubuntu packages (no sudo when already root)."""
    return ("" if os.geteuid() == 0 else "sudo ") + "apt-get install " + " ".join(packages)


def unreachable(path: Path, uid: int) -> Path | None:
    """The first directory on the way to ``path`` (symlinks resolved) that ``uid`` may not pass
    through, or None. Only the owner and "other" bits are looked at: good enough to warn."""
    resolved = path.resolve()
    for directory in [*reversed(resolved.parents), resolved]:
        try:
            st = directory.stat()
        except OSError:
            return None  # missing: reported as such elsewhere
        allowed = stat.S_IXUSR if st.st_uid == uid else stat.S_IXOTH
        if not st.st_mode & allowed:
            return directory
    return None


def preflight(config: SandboxConfig) -> list[str]:
    """What is missing, one message per part, each with the command that fixes it; checked without
    starting anything (microseconds), so it can run before every use while something is missing."""
    problems = []
    if launch.bwrap(config) is None:
        if config.bwrap is not None:
            problems.append(
                f"bubblewrap is not installed at {config.bwrap} (ASSISTD_SANDBOX_BWRAP): install it there, or "
                f"run `{apt_command('bubblewrap')}` and unset ASSISTD_SANDBOX_BWRAP"
            )
        else:
            problems.append(
                f"bubblewrap (`bwrap`) is not installed: run `{apt_command('bubblewrap')}` (Debian/Ubuntu; "
                f"`{config.setup_command}` does it when run as root)"
            )
    for name in ("prlimit", "setpriv") if config.drops_privileges else ("prlimit",):
        if launch.tool(name) is None:
            problems.append(f"`{name}` is not installed: run `{apt_command('util-linux')}` (Debian/Ubuntu)")
    try:
        if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
            problems.append(
                "user namespaces are disabled (/proc/sys/user/max_user_namespaces is 0): "
                "run `sysctl -w user.max_user_namespaces=15000` as root"
            )
    except (OSError, ValueError):
        pass
    if not config.python.exists():
        problems.append(
            f"the kernel environment {config.venv} does not exist (or is broken): run `{config.setup_command}`"
        )
    elif config.drops_privileges and (blocked := unreachable(config.venv, config.sandbox_uid)) is not None:
        problems.append(
            f"the kernel environment {config.venv} cannot be read by uid {config.sandbox_uid}, which runs the "
            f"code when the server runs as root ({blocked} is mode {stat.S_IMODE(blocked.stat().st_mode):o}): run "
            f"`{config.setup_command}` (it keeps the environment in {ROOT_KERNEL_VENV} and links it from the "
            "data directory), or set ASSISTD_SANDBOX_VENV to a directory that every user can reach"
        )
    return problems


def probe(config: SandboxConfig, *, timeout: float = 60.0) -> SandboxStatus:
    """Check what is needed (:func:`preflight`), then start one sandbox with the kernel's Python
    and check it. Blocking (run it in a thread)."""
    problems = preflight(config)
    if problems:
        return SandboxStatus(False, "; ".join(problems), quick=True)
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
            hint = f" (run `{config.setup_command}`)"
        if "Permission denied" in detail and config.drops_privileges:
            hint = (
                f" (the kernel environment and its parent directories must be readable by uid "
                f"{config.sandbox_uid}; or set ASSISTD_SANDBOX_VENV)"
            )
        if "namespace" in detail or "uid map" in detail:
            hint = (
                " (unprivileged user namespaces are blocked here: on Ubuntu 23.10 and later by AppArmor, "
                "`sysctl kernel.apparmor_restrict_unprivileged_userns`; in a container by its seccomp "
                "profile, see the README's Code interpreter sandbox section)"
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
    reason = f"{_bwrap_version(config)}; kernel environment {config.venv} ({versions})"
    if missing:
        reason += f"; missing {', '.join(missing)} (run `{config.setup_command}`)"
    return SandboxStatus(True, reason)

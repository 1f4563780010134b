"""The command line that starts one sandboxed kernel.

The server spawns (``start_new_session``, so a terminal's Ctrl-C does not reach kernels)::

    /bin/sh -c 'join cgroups; exec "$@"'      # only when cgroups are available
      prlimit --as --fsize --nofile --cpu [--nproc]
        setpriv --reuid U --regid U --clear-groups   # only when the server runs as root
          bwrap …                                     # unprivileged: a new user namespace
            /opt/kernel/bin/python -m ipykernel_launcher -f /run/kernel/connection.json

bubblewrap runs as a child of the server with ``--die-with-parent``: when the server dies, the
sandbox's init gets SIGKILL, and with it the whole pid namespace.

Inside: new user, pid, network (loopback only), ipc, uts and cgroup namespaces; uid/gid 65534;
no capabilities; no further user namespaces; a read-only root holding only ``/usr`` (and the
merged-/usr symlinks), a few files of ``/etc`` (the dynamic loader's cache, fonts, time zone,
and a one-line ``passwd``), a fresh ``/proc`` and ``/dev``, the kernel venv read-only at
``/opt/kernel``, tmpfs ``/tmp`` (also ``$HOME``) and ``/mnt/data`` of the disk quota's size, and
a small tmpfs ``/run/kernel`` holding the connection file and the kernel's IPC sockets. The
environment is cleared and rebuilt from :func:`kernel_env`. Nothing of the server (its data
directory, database file, environment, sockets) is mounted or inherited.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from assistd.sandbox.cgroup import CgroupSet
from assistd.sandbox.config import SandboxConfig

KERNEL_VENV = "/opt/kernel"
RUN_DIR = "/run/kernel"
DATA_DIR = "/mnt/data"
HOME = "/tmp"
MPLCONFIGDIR = f"{HOME}/.config/matplotlib"
CONNECTION_FILE = f"{RUN_DIR}/connection.json"
SOCKET_PREFIX = f"{RUN_DIR}/k"
# Installed by `assistd sandbox install`: matplotlib's font cache, built once (else every new
# kernel spends ~1 s building it on its first `import matplotlib.pyplot`).
MPL_CACHE_DIR = "share/assistd/matplotlib"

_ETC = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "fonts",
    "alternatives",
    "mime.types",
)
_MERGED_USR = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

# sh: move ourselves into each cgroup given before "--", then exec the rest.
_JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"'

REQUIRED_TOOLS = ("bwrap", "prlimit")  # and setpriv when the server runs as root


SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin"


def tool(name: str) -> str | None:
    """A system tool, looked up in the system's directories only (never the server's PATH)."""
    return shutil.which(name, path=SYSTEM_PATH)


def bwrap(config: SandboxConfig) -> str | None:
    """The bubblewrap binary: ``config.bwrap`` (ASSISTD_SANDBOX_BWRAP) when set, else the system's."""
    if config.bwrap is not None:
        return str(config.bwrap) if os.access(config.bwrap, os.X_OK) else None
    return tool("bwrap")


def kernel_env(config: SandboxConfig) -> dict[str, str]:
    threads = str(max(1, min(os.cpu_count() or 1, 4)))
    env = {
        "PATH": f"{KERNEL_VENV}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": HOME,
        "TMPDIR": HOME,
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "MPLCONFIGDIR": MPLCONFIGDIR,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "MALLOC_ARENA_MAX": "2",
        "OPENBLAS_NUM_THREADS": threads,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }
    env.update(config.extra_env)
    return env


def _base_prefix(venv: Path) -> Path | None:
    """The interpreter prefix the venv was made from (``home`` in pyvenv.cfg), when not under /usr."""
    try:
        text = (venv / "pyvenv.cfg").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home":
            prefix = Path(value.strip()).resolve().parent
            if prefix == Path("/usr") or Path("/usr") in prefix.parents:
                return None
            return prefix
    return None


def bwrap_args(
    config: SandboxConfig,
    *,
    info_fd: int,
    connection_fd: int,
    passwd_fd: int,
    group_fd: int,
    command: list[str],
) -> list[str]:
    uid = str(config.sandbox_uid)
    args = [
        "--unshare-all",
        "--unshare-user",
        "--uid",
        uid,
        "--gid",
        uid,
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for name in _MERGED_USR:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in _ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    args += ["--file", str(passwd_fd), "/etc/passwd", "--file", str(group_fd), "/etc/group"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(config.disk_bytes), "--tmpfs", HOME]
    # Resolved here, by the server: bubblewrap opens the paths as the sandbox's uid, which may not
    # be allowed through a symlink's directory (`assistd setup` links a root-owned data directory's
    # venv to /opt/assistd/kernel-venv).
    venv = config.venv.resolve()
    mpl_cache = venv / MPL_CACHE_DIR
    if mpl_cache.is_dir():
        for f in sorted(mpl_cache.glob("*.json")):
            args += ["--ro-bind", str(f), f"{MPLCONFIGDIR}/{f.name}"]
    args += ["--size", str(config.disk_bytes), "--perms", "0755", "--tmpfs", DATA_DIR]
    args += ["--ro-bind", str(venv), KERNEL_VENV]
    prefix = _base_prefix(venv)
    if prefix is not None:
        args += ["--ro-bind", str(prefix), str(prefix)]
    args += ["--size", str(1024 * 1024), "--tmpfs", RUN_DIR]
    args += ["--ro-bind-data", str(connection_fd), CONNECTION_FILE]
    args += ["--remount-ro", "/", "--info-fd", str(info_fd), "--clearenv"]
    for key, value in kernel_env(config).items():
        args += ["--setenv", key, value]
    args += ["--chdir", DATA_DIR, "--"]
    return args + command


def kernel_command() -> list[str]:
    return [
        f"{KERNEL_VENV}/bin/python",
        "-m",
        "ipykernel_launcher",
        "-f",
        CONNECTION_FILE,
        "--HistoryManager.enabled=False",
        "--IPKernelApp.quiet=True",
    ]


def launcher(config: SandboxConfig, cgroup: CgroupSet | None, *, limit_nproc: bool) -> list[str]:
    """Everything before ``bwrap``: cgroup join, rlimits, privilege drop."""
    argv: list[str] = []
    if cgroup is not None:
        argv += ["/bin/sh", "-c", _JOIN, "sh", *map(str, cgroup.procs_files), "--"]
    # RLIMIT_AS counts address space, not memory: libraries map far more than they touch, so
    # the backstop is looser than the cgroup limit (which counts what is really used).
    address_space = config.memory_bytes + 2 * 1024**3
    argv += [
        tool("prlimit") or "prlimit",
        f"--as={address_space}",
        f"--fsize={config.disk_bytes}",
        f"--nofile={config.max_open_files}",
        f"--cpu={config.cpu_seconds}:{config.cpu_seconds + 5}",
        "--core=0",
    ]
    if limit_nproc:
        # Without a pids cgroup: RLIMIT_NPROC counts every process of the sandbox uid, in every
        # sandbox, so it bounds all kernels together.
        argv.append(f"--nproc={config.max_processes * max(config.max_sessions + config.warm_pool, 1)}")
    argv.append("--")
    if config.drops_privileges:
        uid = str(config.sandbox_uid)
        argv += [tool("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    argv.append(bwrap(config) or str(config.bwrap or "bwrap"))
    return argv

"""Per-kernel memory and pids cgroups, where this process may create them.

Each kernel gets its own cgroup, nested under the cgroup this server process is in (so whatever
limits the host puts on the server still bound the kernels), named ``assistd-<server pid>-<n>``.
cgroup v1 (separate ``memory`` and ``pids`` hierarchies) and v2 (one unified hierarchy with both
controllers enabled for our subtree) are supported. When neither is writable, :class:`Cgroups`
says so in ``reason`` and the sandbox relies on rlimits alone (``RLIMIT_AS``, ``RLIMIT_NPROC``).

The launcher moves itself into the cgroups (writes its pid to each ``cgroup.procs``) before it
execs bubblewrap, so every process of the sandbox is inside from the start.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("assistd.sandbox")

_PREFIX = "assistd-"
_STALE = re.compile(r"^assistd-(\d+)-\d+$")
_counter = itertools.count(1)


@dataclass(frozen=True)
class _Hierarchy:
    version: int
    controllers: frozenset[str]
    base: Path
    """Our own cgroup's directory in this hierarchy: new cgroups are created under it."""


def _mounts() -> list[tuple[str, Path, str, frozenset[str]]]:
    """(fstype, mount point, mount root, super options) of every cgroup mount we can see."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
            continue
        found.append((rfields[0], Path(fields[4]), fields[3], frozenset(rfields[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """Controller (or "" for v2) -> our cgroup path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            paths[controller] = parts[2]
    return paths


def _join(mount: Path, mount_root: str, own: str) -> Path:
    rel = own
    if mount_root != "/" and own.startswith(mount_root):
        rel = own[len(mount_root) :]
    return mount / rel.lstrip("/")


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CgroupSet:
    """The cgroup directories of one sandbox (one per hierarchy)."""

    def __init__(self, dirs: list[Path], version: int) -> None:
        self.dirs = dirs
        self.version = version

    @property
    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs]

    def pids(self) -> set[int]:
        pids: set[int] = set()
        for f in self.procs_files:
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(x) for x in f.read_text().split())
        return pids

    def oom_kills(self) -> int:
        """How many processes the kernel OOM killer ended in this cgroup."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        for d in self.dirs:
            with contextlib.suppress(OSError):
                for line in (d / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        return 0

    def kill(self) -> None:
        """SIGKILL everything inside (a backstop: killing bubblewrap already ends its namespace)."""
        for d in self.dirs:
            if self.version == 2 and (d / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    _write(d / "cgroup.kill", "1")
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left and remove the directories (a cgroup with members cannot be removed)."""
        self.kill()
        for d in self.dirs:
            for _ in range(20):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
            else:
                log.warning("could not remove cgroup %s", d)


class Cgroups:
    """Creates per-sandbox cgroups with memory and pids limits, when the host lets us."""

    def __init__(self, hierarchies: list[_Hierarchy], reason: str) -> None:
        self._hierarchies = hierarchies
        self.reason = reason

    @property
    def available(self) -> bool:
        return bool(self._hierarchies)

    @property
    def limits_pids(self) -> bool:
        return any("pids" in h.controllers for h in self._hierarchies)

    @classmethod
    def discover(cls) -> Cgroups:
        """Find writable memory/pids hierarchies, remove stale cgroups of dead servers, test a mkdir."""
        own = _own_paths()
        v1: dict[str, _Hierarchy] = {}
        v2: _Hierarchy | None = None
        for fstype, mount, root, opts in _mounts():
            if fstype == "cgroup":
                for controller in ("memory", "pids"):
                    if controller in opts and controller in own:
                        v1[controller] = _Hierarchy(1, frozenset({controller}), _join(mount, root, own[controller]))
            elif "" in own:
                base = _join(mount, root, own[""])
                try:
                    enabled = frozenset((base / "cgroup.subtree_control").read_text().split())
                except OSError:
                    enabled = frozenset()
                if {"memory", "pids"} <= enabled:
                    v2 = _Hierarchy(2, frozenset({"memory", "pids"}), base)
        candidates = list(v1.values()) if v1 else ([v2] if v2 else [])
        if not candidates:
            return cls([], "no memory or pids cgroup controller is available to this process")
        usable = []
        problems = []
        for h in candidates:
            _remove_stale(h.base)
            probe = h.base / f"{_PREFIX}{os.getpid()}-probe"
            try:
                probe.mkdir()
                probe.rmdir()
                usable.append(h)
            except OSError as e:
                problems.append(f"{h.base}: {e.strerror}")
        if not usable:
            return cls([], "cgroups are not writable (" + "; ".join(problems) + ")")
        names = sorted(c for h in usable for c in h.controllers)
        version = usable[0].version
        return cls(usable, f"cgroup v{version} {'+'.join(names)} limits")

    def create(self, *, memory_bytes: int, max_processes: int) -> CgroupSet | None:
        """A new cgroup in each hierarchy with the limits written; None if that fails."""
        name = f"{_PREFIX}{os.getpid()}-{next(_counter)}"
        dirs: list[Path] = []
        version = self._hierarchies[0].version if self._hierarchies else 1
        try:
            for h in self._hierarchies:
                d = h.base / name
                d.mkdir()
                dirs.append(d)
                if h.version == 1 and "memory" in h.controllers:
                    _write(d / "memory.limit_in_bytes", str(memory_bytes))
                    with contextlib.suppress(OSError):  # only with swap accounting; must follow the above
                        _write(d / "memory.memsw.limit_in_bytes", str(memory_bytes))
                if h.version == 1 and "pids" in h.controllers:
                    _write(d / "pids.max", str(max_processes))
                if h.version == 2:
                    _write(d / "memory.max", str(memory_bytes))
                    with contextlib.suppress(OSError):
                        _write(d / "memory.swap.max", "0")
                    _write(d / "pids.max", str(max_processes))
        except OSError as e:
            log.warning("could not set up a sandbox cgroup (%s); relying on rlimits", e)
            CgroupSet(dirs, version).remove()
            return None
        return CgroupSet(dirs, version)


def _remove_stale(base: Path) -> None:
    """cgroups left by servers that died (their kernels died with them: the dirs are empty)."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for d in entries:
        m = _STALE.match(d.name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            version = 2 if (d / "cgroup.kill").exists() or (d / "memory.max").exists() else 1
            CgroupSet([d], version).remove()

"""Files in and out of a sandbox's ``/mnt/data``, seen from the host.

``/mnt/data`` is a tmpfs inside the sandbox's own mount namespace (its size is the disk quota,
enforced by the kernel), so the host reaches it through ``/proc/<sandbox pid>/root/mnt/data``.
Everything in there was written by untrusted code: names are never used as host paths, entries
are opened relative to a directory descriptor with ``O_NOFOLLOW``, only regular files are read
(a symlink to ``/etc/shadow`` planted there stays a symlink, it is never followed on the host),
and the walk is bounded in depth and entry count.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import stat
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_ENTRIES = 10_000
MAX_DEPTH = 8
_CHUNK = 1 << 20


@dataclass(frozen=True)
class OutputFile:
    """A file the execution created or changed in /mnt/data, copied out to the host."""

    name: str
    """The file's base name (what a File's ``filename`` should be)."""
    sandbox_path: str
    """Where the code sees it, e.g. ``/mnt/data/out/report.csv`` (for ``sandbox:`` links)."""
    path: Path
    """The host copy; it belongs to the caller (see ``ExecutionResult.cleanup``)."""
    size: int


def safe_filename(name: str) -> str:
    """The name a file gets in /mnt/data: the last path component, no control characters.

    Never a path: slashes and backslashes end up as the base name's separators, ``.`` and ``..``
    and empty names become ``file``, and the result fits a Linux file name (255 bytes).
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if base in ("", ".", ".."):
        base = "file"
    while len(base.encode()) > 255:
        stem, dot, ext = base.rpartition(".")
        base = (stem[:-1] + dot + ext) if stem and len(ext) < 20 else base[:-1]
    return base


def stage_names(names: Sequence[str]) -> list[str]:
    """The /mnt/data names of files staged together, in order: safe, and distinct.

    A repeated name gets `` (2)``, `` (3)``, … before its extension, as a browser would do.
    """
    taken: set[str] = set()
    out = []
    for name in names:
        base = safe_filename(name)
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            stem, _, ext = base.rpartition(".")
            candidate = f"{stem} ({n}).{ext}" if stem else f"{base} ({n})"
        taken.add(candidate)
        out.append(candidate)
    return out


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


@contextlib.contextmanager
def _fs_identity(uid: int | None) -> Iterator[None]:
    """Create files as ``uid`` (this thread only: Linux's fsuid is per thread).

    The tmpfs belongs to the sandbox's user namespace, where host root is not mapped: root
    cannot own an inode there (EOVERFLOW), the sandbox's uid can.
    """
    if uid is None:
        yield
        return
    old_gid = _libc.setfsgid(uid)
    old_uid = _libc.setfsuid(uid)
    try:
        yield
    finally:
        _libc.setfsuid(old_uid)
        _libc.setfsgid(old_gid)


Snapshot = dict[str, tuple[int, int, int]]
"""Relative path -> (inode, size, mtime_ns) of every regular file."""


class SandboxFS:
    """The host's view of one sandbox's /mnt/data (blocking calls: run them in a thread)."""

    def __init__(self, root: Path, *, owner: int | None) -> None:
        self.data = root / "mnt" / "data"
        self.owner = owner
        self._staged: dict[str, tuple[str, int, int]] = {}

    def _open_data(self) -> int:
        return os.open(self.data, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def stage(self, files: Iterable[tuple[str, Path]]) -> list[str]:
        """Copy host files into /mnt/data under their :func:`stage_names`; notes for the model.

        A file is copied once per sandbox: again only if it is missing or its source changed, so
        that the code's own edits of an input file survive the next execution.
        """
        files = list(files)
        notes: list[str] = []
        dfd = self._open_data()
        try:
            for name, (_, src) in zip(stage_names([n for n, _ in files]), files, strict=True):
                note = self._stage_one(dfd, name, Path(src))
                if note:
                    notes.append(note)
        finally:
            os.close(dfd)
        return notes

    def _stage_one(self, dfd: int, name: str, src: Path) -> str | None:
        sst = os.stat(src)
        source_id = (str(src), sst.st_size, sst.st_mtime_ns)
        try:
            dst = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            dst = None
        if dst is not None:
            if stat.S_ISDIR(dst.st_mode):
                return f"Could not provide the file {name}: /mnt/data/{name} is a directory."
            if stat.S_ISREG(dst.st_mode) and self._staged.get(name) == source_id:
                return None  # staged before: the code may have changed it since, and keeps its change
            if not stat.S_ISREG(dst.st_mode):
                os.unlink(name, dir_fd=dfd)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        with open(src, "rb") as f:
            with _fs_identity(self.owner):
                fd = os.open(name, flags, 0o644, dir_fd=dfd)
            try:
                while chunk := f.read(_CHUNK):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
            except OSError as e:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=dfd)
                self._staged.pop(name, None)
                if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                    return f"Could not provide the file {name}: it does not fit in the sandbox's disk quota."
                raise
            finally:
                os.close(fd)
        self._staged[name] = source_id
        return None

    def snapshot(self) -> Snapshot:
        """Every regular file under /mnt/data (bounded walk, symlinks not followed)."""
        out: Snapshot = {}
        dfd = self._open_data()
        try:
            self._walk(dfd, "", 0, out)
        finally:
            os.close(dfd)
        return out

    def _walk(self, dfd: int, prefix: str, depth: int, out: Snapshot) -> None:
        with os.scandir(dfd) as it:
            for entry in it:
                if len(out) >= MAX_ENTRIES:
                    return
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                rel = prefix + entry.name
                if stat.S_ISREG(st.st_mode):
                    out[rel] = (st.st_ino, st.st_size, st.st_mtime_ns)
                elif stat.S_ISDIR(st.st_mode) and depth < MAX_DEPTH:
                    try:
                        sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
                    except OSError:
                        continue
                    try:
                        self._walk(sub, rel + "/", depth + 1, out)
                    finally:
                        os.close(sub)

    def collect(self, before: Snapshot, dest: Path) -> list[OutputFile]:
        """Copy files that are new or changed since ``before`` into ``dest`` (created if needed)."""
        after = self.snapshot()
        changed = sorted(rel for rel, ident in after.items() if before.get(rel) != ident)
        outputs: list[OutputFile] = []
        if not changed:
            return outputs
        dfd = self._open_data()
        try:
            for i, rel in enumerate(changed):
                copy = self._copy_out(dfd, rel, dest / str(i))
                if copy is not None:
                    outputs.append(copy)
        finally:
            os.close(dfd)
        return outputs

    def _copy_out(self, dfd: int, rel: str, dest_dir: Path) -> OutputFile | None:
        parts = rel.split("/")
        fds: list[int] = []
        try:
            cur = dfd
            for part in parts[:-1]:
                cur = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=cur)
                fds.append(cur)
            try:
                src = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=cur)
            except OSError:
                return None  # gone, or swapped for a symlink since the snapshot
            fds.append(src)
            if not stat.S_ISREG(os.fstat(src).st_mode):
                return None
            dest_dir.mkdir(parents=True, exist_ok=True)
            target = dest_dir / safe_filename(parts[-1])
            size = 0
            with open(target, "wb") as out:
                while chunk := os.read(src, _CHUNK):
                    out.write(chunk)
                    size += len(chunk)
            return OutputFile(name=parts[-1], sandbox_path=f"/mnt/data/{rel}", path=target, size=size)
        finally:
            for fd in reversed(fds):
                os.close(fd)

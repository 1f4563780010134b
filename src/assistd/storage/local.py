"""Blobs as files under one directory, written to a temporary name and renamed on commit."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

import anyio
import anyio.to_thread

from assistd.storage.base import BlobTooLargeError

_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


def _check_key(key: str) -> str:
    # Keys are server-generated ids; refuse anything else so no path can be smuggled in.
    if not _KEY_RE.match(key):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class LocalBlobWriter:
    def __init__(self, root: Path, key: str, max_bytes: int) -> None:
        self.key = _check_key(key)
        self.size = 0
        self._max = max_bytes
        self._final = root / key
        self._tmp = root / f".{key}.partial"
        self._fh = open(self._tmp, "wb")  # noqa: SIM115 - closed in commit/abort

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self._max:
            await self.abort()
            raise BlobTooLargeError(self._max)
        await anyio.to_thread.run_sync(self._fh.write, data)

    async def commit(self) -> None:
        fh = self._fh

        def _finish() -> None:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(self._tmp, self._final)

        await anyio.to_thread.run_sync(_finish)

    async def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        # Partial files left by a crash are garbage.
        for stale in self.root.glob(".*.partial"):
            stale.unlink(missing_ok=True)

    def path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def open_writer(self, key: str, max_bytes: int) -> LocalBlobWriter:
        return LocalBlobWriter(self.root, key, max_bytes)

    async def put(self, key: str, chunks: AsyncIterable[bytes], max_bytes: int) -> int:
        w = self.open_writer(key, max_bytes)
        try:
            async for chunk in chunks:
                await w.write(chunk)
        except BaseException:
            await w.abort()
            raise
        await w.commit()
        return w.size

    async def read(self, key: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.path(key), "rb") as f:
            while chunk := await f.read(chunk_size):
                yield chunk

    async def size(self, key: str) -> int | None:
        try:
            return (await anyio.Path(self.path(key)).stat()).st_size
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        await anyio.Path(self.path(key)).unlink(missing_ok=True)

    async def concat(self, key: str, parts: list[str]) -> int:
        """Assemble ``parts`` (in order) into a new blob ``key``; returns its size."""
        paths = [self.path(p) for p in parts]
        w = self.open_writer(key, max_bytes=2**63)
        try:
            for p in paths:
                async with await anyio.open_file(p, "rb") as f:
                    while chunk := await f.read(1 << 20):
                        await w.write(chunk)
        except BaseException:
            await w.abort()
            raise
        await w.commit()
        return w.size

"""API keys and projects.

A key is ``sk-`` plus 48 random characters; only its SHA-256 is stored (keys are high-entropy, so
a fast hash is enough and lets the look-up be one unique-index probe). Each key belongs to one
project and every object carries its project. With no (unrevoked) key at all the server runs in
local single-user mode: every request acts in the ``default`` project.

Verified keys are cached in-process for ``auth_cache_seconds`` (default 2 s) so the hot path does
not query the database per request; a revocation therefore takes effect within that time.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.db.session import Database
from assistd.errors import AuthenticationError, InvalidRequestError
from assistd.ids import new_id, random_token
from assistd.models import ApiKey, Project
from assistd.timeutil import now

DEFAULT_PROJECT_ID = "proj_default"
DEFAULT_PROJECT_NAME = "default"

MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


BETA_MISSING = (
    "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again by "
    "setting the header 'OpenAI-Beta: assistants=v2'."
)
BETA_PATHS = ("/v1/assistants", "/v1/threads")


def beta_version(header: str | None) -> str | None:
    """The Assistants version an ``OpenAI-Beta`` header asks for (v2 when it names both)."""
    betas = {b.strip() for b in (header or "").split(",")}
    for version in ("v2", "v1"):
        if f"assistants={version}" in betas:
            return version
    return None


def check_beta(path: str, header: str | None) -> None:
    """The real API refused /assistants and /threads calls without ``OpenAI-Beta: assistants=v2``
    (or, before v2, ``assistants=v1``, which the v1 dialect serves)."""
    if path.startswith(BETA_PATHS) and beta_version(header) is None:
        raise InvalidRequestError(BETA_MISSING, code="invalid_beta")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def redact(key: str) -> str:
    return f"{key[:6]}***{key[-4:]}"


@dataclass(slots=True)
class _Cached:
    project_id: str
    until: float


class Authenticator:
    def __init__(self, db: Database, cache_seconds: float = 2.0) -> None:
        self._db = db
        self._ttl = cache_seconds
        self._keys: dict[str, _Cached] = {}
        self._has_keys: tuple[bool, float] = (False, 0.0)

    async def _any_keys(self) -> bool:
        has, until = self._has_keys
        t = time.monotonic()
        if t < until:
            return has
        async with self._db.session() as s:
            n = await s.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None)))
        has = bool(n)
        self._has_keys = (has, t + self._ttl)
        return has

    async def project_for(self, authorization: str | None) -> str:
        """The project the request acts in, or AuthenticationError (401, ``invalid_api_key``)."""
        if not await self._any_keys():
            return DEFAULT_PROJECT_ID
        if not authorization:
            raise AuthenticationError(MISSING_KEY_MESSAGE, code="invalid_api_key")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError(MISSING_KEY_MESSAGE, code="invalid_api_key")
        digest = hash_key(token)
        t = time.monotonic()
        hit = self._keys.get(digest)
        if hit is not None and t < hit.until:
            return hit.project_id
        async with self._db.session() as s:
            project_id = await s.scalar(
                select(ApiKey.project_id).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
            )
        if project_id is None:
            self._keys.pop(digest, None)
            raise AuthenticationError(
                f"Incorrect API key provided: {redact(token)}. You can create a key with `assistd keys create`.",
                code="invalid_api_key",
            )
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[digest] = _Cached(project_id, t + self._ttl)
        return project_id


# --- key management (CLI) ----------------------------------------------------------------------


async def ensure_project(session: AsyncSession, name: str) -> Project:
    project = await session.scalar(select(Project).where(Project.name == name))
    if project is None:
        pid = DEFAULT_PROJECT_ID if name == DEFAULT_PROJECT_NAME else new_id("project")
        project = Project(id=pid, name=name, created_at=now())
        session.add(project)
        await session.flush()
    return project


async def create_key(session: AsyncSession, project_name: str, name: str | None = None) -> tuple[str, ApiKey, Project]:
    """Create a key; the plain key is returned once and never stored."""
    project = await ensure_project(session, project_name)
    key = "sk-" + random_token(48)
    row = ApiKey(
        id=new_id("key"),
        project_id=project.id,
        name=name,
        key_hash=hash_key(key),
        redacted=redact(key),
        created_at=now(),
    )
    session.add(row)
    await session.flush()
    return key, row, project


async def list_keys(session: AsyncSession) -> list[tuple[ApiKey, str]]:
    rows = await session.execute(
        select(ApiKey, Project.name).join(Project, Project.id == ApiKey.project_id).order_by(ApiKey.seq)
    )
    return [(r[0], r[1]) for r in rows]


async def revoke_key(session: AsyncSession, key_id: str) -> bool:
    row = await session.scalar(select(ApiKey).where(ApiKey.id == key_id))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now()
    await session.flush()
    return True


async def ensure_key(session: AsyncSession, key: str, project_name: str = DEFAULT_PROJECT_NAME) -> str:
    """Make sure ``key`` (given by the operator, e.g. ``ASSISTD_API_KEY``) exists; answers what was
    done: ``"created"``, ``"exists"``, or ``"revoked"`` (a revoked key is not brought back)."""
    digest = hash_key(key)
    row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if row is not None:
        return "revoked" if row.revoked_at is not None else "exists"
    project = await ensure_project(session, project_name)
    session.add(
        ApiKey(
            id=new_id("key"),
            project_id=project.id,
            name="ASSISTD_API_KEY",
            key_hash=digest,
            redacted=redact(key),
            created_at=now(),
        )
    )
    await session.flush()
    return "created"

"""Request dependencies, as ``Annotated`` aliases ending in ``Dep``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.state import AppState


async def get_state(request: Request) -> AppState:
    # async: FastAPI runs plain ``def`` dependencies in a thread pool (a thread hop per request).
    state: AppState = request.app.state.assistd
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_project(request: Request) -> str:
    """The project this request acts in (authenticated by ``AccessMiddleware``)."""
    project: str = request.scope["state"]["project_id"]
    return project


ProjectDep = Annotated[str, Depends(get_project)]


# inline: a request's statements are short (see db/inline.py).
async def _read_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.db.session(inline=True) as s:
        yield s


async def _write_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.db.session(write=True, inline=True) as s:
        yield s


# scope="function": the transaction commits before the response is sent.
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]
WriteSessionDep = Annotated[AsyncSession, Depends(_write_session, scope="function")]

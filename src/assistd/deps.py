"""Request dependencies, as ``Annotated`` aliases ending in ``Dep``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.errors import InvalidRequestError
from assistd.state import AppState

BETA_MISSING = (
    "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again by "
    "setting the header 'OpenAI-Beta: assistants=v2'."
)
BETA_V1 = (
    "The v1 Assistants API has been deprecated. Please try again by setting the header 'OpenAI-Beta: assistants=v2'."
)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.assistd
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_project(request: Request, state: StateDep) -> str:
    """Authenticate the request; the project id every query of this request is scoped to."""
    project: str = await state.auth.project_for(request.headers.get("authorization"))
    return project


ProjectDep = Annotated[str, Depends(get_project)]


async def require_beta(request: Request) -> None:
    """The real API refused /assistants and /threads calls without ``OpenAI-Beta: assistants=v2``."""
    value = request.headers.get("openai-beta", "")
    betas = {b.strip() for b in value.split(",")}
    if "assistants=v2" in betas:
        return
    if "assistants=v1" in betas:
        raise InvalidRequestError(BETA_V1, code="invalid_beta")
    raise InvalidRequestError(BETA_MISSING, code="invalid_beta")


async def _read_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.db.session() as s:
        yield s


async def _write_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.db.session(write=True) as s:
        yield s


# scope="function": the transaction commits before the response is sent.
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]
WriteSessionDep = Annotated[AsyncSession, Depends(_write_session, scope="function")]

AUTH = [Depends(get_project)]
AUTH_BETA = [Depends(get_project), Depends(require_beta)]

"""HTTP for ``GET /v1/project`` (not in OpenAI's API).

OpenAI showed a key's project in its dashboard; assistd has none, so a client (the Playground,
or any SDK user: ``client.get("/project", cast_to=object)``) can ask which project its key acts
in. Read-only, and it reveals nothing the key does not already reach. The object has the shape
of OpenAI's Admin API project (``organization.project``).
"""

from __future__ import annotations

from assistd.auth import DEFAULT_PROJECT_ID, DEFAULT_PROJECT_NAME
from assistd.deps import ProjectDep, ReadSessionDep
from assistd.http import JSONResponse, json_response
from assistd.projects.repository import get_project
from assistd.routing import api_router

router = api_router(tags=["Projects"])


@router.get("/project", operation_id="getCurrentProject")
async def get_current_project(session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """The project the request's API key belongs to (``default`` in local single-user mode)."""
    row = await get_project(session, project)
    name = row.name if row is not None else (DEFAULT_PROJECT_NAME if project == DEFAULT_PROJECT_ID else project)
    return json_response(
        {
            "object": "organization.project",
            "id": project,
            "name": name,
            "created_at": row.created_at if row is not None else None,
            "archived_at": None,
            "status": "active",
        }
    )

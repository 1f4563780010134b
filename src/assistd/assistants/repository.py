from __future__ import annotations

from assistd.models import Assistant
from assistd.repository import RepositoryBase


class AssistantRepository(RepositoryBase[Assistant]):
    model = Assistant

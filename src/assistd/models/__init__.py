"""ORM tables. Importing this package registers every table on ``Base.metadata`` (Alembic)."""

from assistd.db.base import Base
from assistd.models.assistant import Assistant
from assistd.models.cursor import DeletedCursor
from assistd.models.file import File, Upload, UploadPart
from assistd.models.project import ApiKey, Project
from assistd.models.run import ExecutorRecord, Run, RunEvent, RunStep
from assistd.models.thread import Message, Thread
from assistd.models.vector_store import Chunk, VectorStore, VectorStoreFile, VectorStoreFileBatch, VectorStoreFileText

__all__ = [
    "ApiKey",
    "Assistant",
    "Base",
    "Chunk",
    "DeletedCursor",
    "ExecutorRecord",
    "File",
    "Message",
    "Project",
    "Run",
    "RunEvent",
    "RunStep",
    "Thread",
    "Upload",
    "UploadPart",
    "VectorStore",
    "VectorStoreFile",
    "VectorStoreFileBatch",
    "VectorStoreFileText",
]

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from assistd.db.base import Base


class DeletedCursor(Base):
    """Where a deleted object stood in its list, so ``after=<its id>`` still pages on.

    Clients delete while they iterate (``for a in assistants.list(): assistants.delete(a.id)``):
    the SDK then asks for the page after an id that is gone. Kept for a day (``sweep``).
    """

    __tablename__ = "deleted_cursors"

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)  # the list: "<table>:<scope values>"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[int] = mapped_column(BigInteger, index=True)

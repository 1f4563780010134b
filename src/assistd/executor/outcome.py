"""One WARNING line for every run that ends ``failed``, ``expired`` or ``incomplete``, wherever it
ends (the runner, the reaper), so an operator can see from the log alone why a run did not
complete: its id, thread, model, the upstream the model routes to, and ``last_error`` (or why it
is incomplete)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistd.llm.client import LLMClient

log = logging.getLogger("assistd.runs")

LOGGED = frozenset({"failed", "expired", "incomplete"})


def log_run_end(
    llm: LLMClient,
    *,
    run_id: str,
    thread_id: str,
    model: str,
    status: str,
    last_error: Mapping[str, Any] | None = None,
    incomplete_details: Mapping[str, Any] | None = None,
    why: str | None = None,
) -> None:
    """Log the end of a run that did not complete (other statuses are not logged here)."""
    if status not in LOGGED:
        return
    try:
        upstream = llm.resolve(model).upstream.display_url
    except Exception:  # a model name no route takes is still worth the line
        upstream = "?"
    if last_error:
        detail = f"{last_error.get('code')}: {last_error.get('message')}"
    elif incomplete_details:
        detail = f"incomplete: {incomplete_details.get('reason')}"
    else:
        detail = why or "no last_error"
    log.warning(
        "run %s ended %s (thread %s, model %r, upstream %s): %s",
        run_id,
        status,
        thread_id,
        model,
        upstream,
        detail,
        extra={"run_id": run_id, "thread_id": thread_id, "model": model, "upstream": upstream, "status": status},
    )

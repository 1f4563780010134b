"""The countable events of durable runs, one function each, called at the one place the event
happens: each logs it and moves its metric (assistd.metrics).

- ``run_resumed``: a run whose worker stopped is taken up again (executor/resume.py);
- ``model_call_remade``: a model call cut short by a stopped worker is made again (it is paid
  twice: the upstream billed the first one too).
"""

from __future__ import annotations

import logging

from assistd import metrics

log = logging.getLogger("assistd.executor")


def run_resumed(run_id: str, *, resumes: int, limit: int, owner: str | None, why: str) -> None:
    log.warning(
        "run %s: its worker %s stopped (%s); taken up again from its last completed step (resume %d of %d)",
        run_id,
        owner or "?",
        why,
        resumes,
        limit,
        extra={"run_id": run_id, "resumes": resumes},
    )
    metrics.run_resumed()


def model_call_remade(run_id: str, model: str) -> None:
    log.warning(
        "run %s: its model call (model %r) was cut short by a stopped worker and is made again",
        run_id,
        model,
        extra={"run_id": run_id, "model": model},
    )
    metrics.model_call_remade()

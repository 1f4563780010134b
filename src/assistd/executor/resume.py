"""Runs whose worker stopped: taken up again from their last completed step, within a bound.

A run is a sequence of steps, and what a completed step did is committed (its message, its tool
calls and their outputs). A worker that stops (killed, crashed, its lease lapsed) loses only the
step it was in. Whoever notices (the reaper of any executor, see worker.py) puts the run back in
the queue in one transaction, keeping everything committed, and the next worker continues it
(runner.py ``_pick_up``):

- a model call that was streaming (an ``in_progress`` message, or a tool-calls step with no call
  committed yet) is made again, and its output **replaces** the unfinished message or step in
  place: same ids, and streams get ``thread.message.created`` (or ``thread.run.step.created``)
  again with empty content before the new deltas, so a client that accumulates deltas (the SDKs'
  snapshots) starts that message over instead of appending to it;
- a model call that had finished and whose built-in tool calls (file_search, code_interpreter)
  were committed but not all executed is not made again: the calls without output are executed
  (code in a fresh kernel: the old one died with its worker, and the model is told);
- submitted tool outputs are committed steps: kept.

A run is taken up at most ``run_max_resumes`` times; past that (a run that keeps killing its
worker, say) it ends ``failed`` with ``server_error``, its message and steps closed in the same
transaction. The first take-up is immediate; each later one waits a pause that doubles (0.5–1 s,
1–2 s, 2–4 s, …, jittered; ``backoff``), as durable-execution systems retry: a run that keeps
landing on workers that stop (a crash loop, a storm of kills) outlasts the trouble instead of
failing inside it, and a run that itself kills its workers does so ever more slowly, ``run_max_resumes``
times at most (6 by default: ~30 s of pauses). A graceful stop (SIGTERM) hands runs back the same
way without counting.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from assistd.executor import observe
from assistd.executor.outcome import log_run_end
from assistd.executor.transitions import NO_USAGE, transition
from assistd.messages.protocol import to_object as message_object
from assistd.models import Message, Run, RunStep
from assistd.runs.protocol import step_to_object
from assistd.runs.protocol import to_object as run_object
from assistd.timeutil import now

if TYPE_CHECKING:
    from assistd.executor.worker import Executor

log = logging.getLogger("assistd.executor")

_RUNS = Run.__table__


def backoff(resumes: int) -> float:
    """Seconds to wait before taking up a run already taken up ``resumes`` times (see module docstring)."""
    if resumes < 1:
        return 0.0
    return min(2.0 ** (resumes - 1), 30.0) * random.uniform(0.5, 1.0)


def _still_abandoned(owner: str | None, dead: bool) -> list[Any]:
    """The run still carries the lease that was found abandoned (its worker did not come back)."""
    cond: list[Any] = [_RUNS.c.lease_owner == owner] if owner is not None else [_RUNS.c.lease_owner.is_(None)]
    if not dead:
        cond.append(or_(_RUNS.c.lease_expires_at.is_(None), _RUNS.c.lease_expires_at < time.time()))
    return cond


async def take_up(ex: Executor, run_id: str, owner: str | None, *, dead: bool) -> None:
    """A run ``in_progress`` whose worker stopped (its lease lapsed, or ``dead``: its process is gone):
    requeue it to continue from its last completed step, or fail it past the bound."""
    db, limit = ex.state.db, ex.max_resumes
    why = "its process is gone" if dead else "its lease lapsed"
    ok, ended = False, None
    async with db.session(write=True, inline=True) as s:
        resumes = await s.scalar(select(Run.resumes).where(Run.id == run_id))
        if resumes is None:
            return
        if resumes < limit:
            ok = await transition(
                s,
                run_id,
                "queued",
                only_from={"in_progress"},
                where=_still_abandoned(owner, dead),
                lease_owner=None,
                lease_expires_at=None,
                resumes=_RUNS.c.resumes + 1,
            )
        else:
            error = {
                "code": "server_error",
                "message": f"The run was interrupted {resumes + 1} times: the worker executing it stopped "
                f"each time (the last time: {why}).",
            }
            ended = await fail_abandoned(s, run_id, error, where=_still_abandoned(owner, dead))
    if resumes < limit:
        if ok:
            observe.run_resumed(run_id, resumes=resumes + 1, limit=limit, owner=owner, why=why)
            ex.state.run_queued()
        return
    if ended is not None:
        publish_ended(ex, *ended)


async def fail_abandoned(
    s: Any, run_id: str, error: dict[str, str], *, where: list[Any]
) -> tuple[Run, list[RunStep], list[Message]] | None:
    """End a run nobody executes ``failed``, with its open steps (failed) and messages (incomplete),
    in the caller's transaction: the rows as ended, for their events, or None if it had moved."""
    t = now()
    ok = await transition(
        s,
        run_id,
        "failed",
        only_from={"in_progress"},
        where=where,
        last_error=error,
        failed_at=t,
        lease_owner=None,
        lease_expires_at=None,
    )
    if not ok:
        return None
    run = await s.scalar(select(Run).where(Run.id == run_id))
    if run.usage is None:  # its calls' usage died with its worker
        run.usage = NO_USAGE
    steps = list(await s.scalars(select(RunStep).where(RunStep.run_id == run_id, RunStep.status == "in_progress")))
    for step in steps:
        step.status, step.failed_at, step.last_error = "failed", t, error
        if step.usage is None:
            step.usage = {"prompt_tokens": 0, "completion_tokens": 0}
    messages = list(await s.scalars(select(Message).where(Message.run_id == run_id, Message.status == "in_progress")))
    for msg in messages:
        msg.status, msg.incomplete_at, msg.incomplete_details = "incomplete", t, {"reason": "run_failed"}
    await s.flush()
    return run, steps, messages


def publish_ended(ex: Executor, run: Run, steps: list[RunStep], messages: list[Message]) -> None:
    """The endings of a run closed by the reaper, to its streams (wherever they are relayed)."""
    bus = ex.state.bus
    for msg in messages:
        bus.publish(run.id, "thread.message.incomplete", message_object(msg))
    for step in steps:
        bus.publish(run.id, f"thread.run.step.{step.status}", step_to_object(step))
    bus.publish(run.id, f"thread.run.{run.status}", run_object(run))
    log_run_end(
        ex.state.llm,
        run_id=run.id,
        thread_id=run.thread_id,
        model=run.model,
        status=run.status,
        last_error=run.last_error,
    )


async def hand_back(ex: Executor, run_id: str) -> None:
    """Graceful stop: requeue a run this executor holds, keeping what it committed (the next worker
    replaces an unfinished message or step in place, as after a crash, without counting it)."""
    async with ex.state.db.session(write=True, inline=True) as s:
        await transition(
            s,
            run_id,
            "queued",
            only_from={"in_progress"},
            where=[_RUNS.c.lease_owner == ex.owner],
            lease_owner=None,
            lease_expires_at=None,
        )


async def close_cancelled_messages(s: Any, run_id: str, t: int) -> list[Message]:
    """A cancelled run's messages still in progress end ``incomplete`` (``run_cancelled``)."""
    messages = list(await s.scalars(select(Message).where(Message.run_id == run_id, Message.status == "in_progress")))
    if messages:
        await s.execute(
            update(Message)
            .where(Message.id.in_([m.id for m in messages]))
            .values(status="incomplete", incomplete_at=t, incomplete_details={"reason": "run_cancelled"})
            .execution_options(synchronize_session=False)
        )
        for m in messages:
            m.status, m.incomplete_at, m.incomplete_details = "incomplete", t, {"reason": "run_cancelled"}
    return messages

"""The executor's writes of messages and steps (prepared UPDATEs), and the cancel of a run that
nobody executes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, select, update

from assistd.executor.resume import close_cancelled_messages
from assistd.executor.transitions import NO_USAGE, transition
from assistd.messages.protocol import to_object as message_object
from assistd.models import Message, Run, RunStep
from assistd.runs.protocol import step_to_object
from assistd.runs.protocol import to_object as run_object
from assistd.timeutil import now

if TYPE_CHECKING:
    from assistd.executor.worker import Executor

_MESSAGES, _STEPS, _RUNS = Message.__table__, RunStep.__table__, Run.__table__

_MESSAGE_FIELDS = ("content", "status", "completed_at", "incomplete_at", "incomplete_details")
_STEP_FIELDS = ("status", "step_details", "last_error", "completed_at", "cancelled_at", "failed_at", "usage")
# Built once: SQLAlchemy takes longer to build an UPDATE than SQLite takes to run it.
_CLOSE_MESSAGE = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == bindparam("b_id"))
    .values(**{f: bindparam(f"v_{f}", type_=_MESSAGES.c[f].type) for f in _MESSAGE_FIELDS})
)
_WRITE_STEP = (
    update(_STEPS)
    .where(_STEPS.c.id == bindparam("b_id"))
    .values(**{f: bindparam(f"v_{f}", type_=_STEPS.c[f].type) for f in _STEP_FIELDS})
)


async def write_closed(s: Any, msg: Message, step: RunStep) -> None:
    # UPDATEs, not session.merge(): a merge first SELECTs the row it already has.
    await s.execute(_CLOSE_MESSAGE, {"b_id": msg.id, **{f"v_{f}": getattr(msg, f) for f in _MESSAGE_FIELDS}})
    await write_step(s, step)


async def write_step(s: Any, step: RunStep) -> None:
    await s.execute(_WRITE_STEP, {"b_id": step.id, **{f"v_{f}": getattr(step, f) for f in _STEP_FIELDS}})


async def delete_rows(s: Any, rows: list[Any]) -> None:
    """Delete the messages and steps an interrupted attempt left and the re-made call did not reuse."""
    for row in rows:
        table = _MESSAGES if isinstance(row, Message) else _STEPS
        await s.execute(delete(table).where(table.c.id == row.id))


async def finalize_cancel(executor: Executor, run_id: str) -> None:
    """Cancel a run nobody is executing (queued or waiting for tool outputs)."""
    db, bus, t = executor.state.db, executor.state.bus, now()
    async with db.session(write=True, inline=True) as s:
        ok = await transition(
            s,
            run_id,
            "cancelled",
            only_from={"cancelling"},
            cancelled_at=t,
            lease_owner=None,
            lease_expires_at=None,
            required_action=None,  # no action is required of a cancelled run
        )
        if not ok:
            return
        steps = list(
            (await s.scalars(select(RunStep).where(RunStep.run_id == run_id, RunStep.status == "in_progress"))).all()
        )
        await s.execute(
            update(RunStep)
            .where(RunStep.run_id == run_id, RunStep.status == "in_progress")
            .values(status="cancelled", cancelled_at=t)
            .execution_options(synchronize_session=False)
        )
        # a message whose worker stopped while the run was being cancelled
        messages = await close_cancelled_messages(s, run_id, t)
        run = await s.scalar(select(Run).where(Run.id == run_id))
        if run is not None and run.usage is None:  # cancelled before any model call: it used nothing
            run.usage = NO_USAGE
            await s.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(usage=NO_USAGE))
    if run is not None:  # CONTRACT §7: a cancel's events start with it
        bus.publish(run_id, "thread.run.cancelling", {**run_object(run), "status": "cancelling", "cancelled_at": None})
    for msg in messages:
        bus.publish(run_id, "thread.message.incomplete", message_object(msg))
    for step in steps:
        step.status, step.cancelled_at = "cancelled", t
        bus.publish(run_id, "thread.run.step.cancelled", step_to_object(step))
    if run is not None:
        bus.publish(run_id, "thread.run.cancelled", run_object(run))

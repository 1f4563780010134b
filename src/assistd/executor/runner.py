"""One run: context -> upstream stream -> steps, messages and events -> a resting status.

Event order (CONTRACT §7): the executor publishes ``thread.run.in_progress``; a text answer is a
message-creation step (``step.created``/``step.in_progress``, ``message.created``/
``message.in_progress``, ``message.delta`` ×N, ``message.completed``, ``step.completed``); tool
calls are a tool-calls step whose calls are introduced once each (id, name) and then streamed
as argument deltas, ending in ``thread.run.requires_action`` with the step still in progress.
The run ends ``completed``, ``incomplete`` (a token cap), ``failed`` (upstream or internal error,
with ``last_error``) or ``cancelled``.

Database work happens in short transactions between upstream chunks; no transaction is open
while waiting on the model. Deltas are not written to the database: the message's text is
stored when the message completes (or stops). A run's end (its status, its open message and
steps) is one transaction, retried a few times; if it still fails, the run is left to the reaper,
which takes it up again or closes all of it (executor/resume.py). A run taken up again after its
worker stopped continues from its last completed step (``_pick_up``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update

from assistd.db.core import insert_rows
from assistd.executor import observe
from assistd.executor.builtins import Resources, load_resources
from assistd.executor.context import build_context
from assistd.executor.outcome import LOGGED, log_run_end
from assistd.executor.tools import (
    BUILTINS,
    CODE_INTERPRETER,
    FILE_SEARCH,
    Annotator,
    Citation,
    builtin_functions,
)
from assistd.executor.toolsteps import ToolSteps
from assistd.executor.transitions import transition_row
from assistd.executor.writes import delete_rows, write_closed, write_step
from assistd.ids import new_id
from assistd.llm.errors import UpstreamError
from assistd.llm.protocol import (
    ChatRequest,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallArgsDelta,
    ToolCallStart,
    Usage,
)
from assistd.logs import set_run_id
from assistd.messages.protocol import to_object as message_object
from assistd.models import Message, Run, RunStep
from assistd.pagination import all_rows, row_columns
from assistd.retrieval.embeddings import EmbedderError
from assistd.runs.protocol import step_to_object
from assistd.runs.protocol import to_object as run_object
from assistd.timeutil import now

if TYPE_CHECKING:
    from assistd.executor.worker import Executor

log = logging.getLogger("assistd.executor")

_MESSAGES, _STEPS, _RUNS = Message.__table__, RunStep.__table__, Run.__table__
MAX_CONTEXT_MESSAGES = 1000  # the newest messages considered for the prompt
INLINE_CONTEXT_CHARS = 20_000  # build smaller contexts on the loop (tokenising 20k chars takes ~1 ms)

_CONTEXT_MESSAGES = (
    select(*row_columns(Message))
    .where(_MESSAGES.c.thread_id == bindparam("thread_id"), _MESSAGES.c.project_id == bindparam("project_id"))
    .order_by(_MESSAGES.c.seq.desc())
    .limit(MAX_CONTEXT_MESSAGES)
)
_RUN_STEPS = select(*row_columns(RunStep)).where(_STEPS.c.run_id == bindparam("run_id")).order_by(_STEPS.c.seq)
END_ATTEMPTS = 4  # tries of the transaction that ends a run (backoff 0.25 s, 0.5 s, 1 s between them)


class EndNotWritten(Exception):
    """The run's end could not be written: it is left to the reaper (its lease lapses)."""


class StopReason:
    CANCEL = "cancel"
    SHUTDOWN = "shutdown"
    LEASE_LOST = "lease_lost"


@dataclass
class _Open:
    """What the current upstream call has opened so far."""

    message: Message | None = None
    message_step: RunStep | None = None
    text: list[str] = field(default_factory=list)
    full: str = ""  # the text so far (annotations are found in it)
    annotator: Annotator | None = None
    tool_step: RunStep | None = None
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish: str | None = None
    usage: Usage | None = None
    # The open message or tool step is what an interrupted attempt left of this model call: this
    # call's output replaces it in place (or it is dropped if the output is of the other kind).
    restart: bool = False


class RunRunner(ToolSteps):
    def __init__(self, executor: Executor, run_id: str, run: Run | None = None, *, local_stream: bool = False) -> None:
        self.ex = executor
        self.db = executor.state.db
        self.bus = executor.state.bus
        self.run_id = run_id
        self.stop_reason: str | None = None
        self.local_stream = local_stream  # only this process can be streaming the run's events
        self.run: Run
        if run is not None:
            self.run = run
        self.open = _Open()
        self.builtins: frozenset[str] = frozenset()  # the run's built-in tools
        self.resources: Resources | None = None
        self.citations: dict[tuple[int, int], Citation] = {}  # (file_search call, rank) -> file, quote
        self.file_search_calls = 0
        self.sandbox_files: dict[str, str] = {}  # /mnt/data path -> file id (this run's outputs)
        self.pending_images: list[str] = []  # code_interpreter images for the next message
        self._picked_up = False  # what an interrupted attempt left was looked for

    # --- plumbing -------------------------------------------------------------------------------

    def emit(self, event: str, data: dict[str, Any]) -> None:
        self.bus.publish(self.run_id, event, data, remote=not self.local_stream)

    async def _reload_run(self) -> Run:
        async with self.db.session(inline=True) as s:
            run = await s.scalar(select(Run).where(Run.id == self.run_id))
        assert run is not None
        self.run = run
        return run

    # --- the run --------------------------------------------------------------------------------

    async def execute(self) -> None:
        set_run_id(self.run_id)  # this task's log lines carry run_id
        run = self.run if hasattr(self, "run") else await self._reload_run()
        self.emit("thread.run.in_progress", run_object(run))
        self.builtins = BUILTINS & {t["type"] for t in run.tools}
        try:
            if CODE_INTERPRETER in self.builtins:
                sandbox = self.ex.state.sandbox
                status = await sandbox.ensure_available() if sandbox is not None else None
                if status is None or not status.available:
                    reason = status.reason if status is not None else "no sandbox in this process"
                    await self._fail("server_error", f"code_interpreter is unavailable: {reason}")
                    return
            while True:
                outcome = await self._one_call()
                if outcome != "continue":
                    return
        except asyncio.CancelledError:
            await self._ending(self._stopped())
            if self.stop_reason is None:
                raise
        except EndNotWritten as exc:
            self._left_to_reaper(exc)
        except UpstreamError as exc:
            await self._ending(self._fail(exc.code, exc.message))
        except EmbedderError as exc:  # file_search without its embedder: the message says what to do
            await self._ending(self._fail("server_error", exc.message))
        except Exception as exc:
            log.exception("run %s failed", self.run_id)
            await self._ending(
                self._fail("server_error", f"The run failed on an internal error: {type(exc).__name__}.")
            )

    async def _ending(self, ending: Any) -> None:
        try:
            await asyncio.shield(ending)
        except EndNotWritten as exc:
            self._left_to_reaper(exc)

    def _left_to_reaper(self, exc: EndNotWritten) -> None:
        log.warning(
            "run %s: its end could not be written (%s); its lease will lapse and the reaper takes it up",
            self.run_id,
            exc.__cause__ or exc,
            extra={"run_id": self.run_id},
        )

    async def _one_call(self) -> str:
        run = self.run
        async with self.db.session(inline=True) as s:
            params = {"thread_id": run.thread_id, "project_id": run.project_id}
            messages = (await all_rows(s, _CONTEXT_MESSAGES, params))[::-1]
            steps = await all_rows(s, _RUN_STEPS, {"run_id": run.id})
        llm = self.ex.state.llm
        if self.builtins:
            if self.resources is None:
                self.resources = await load_resources(self.ex.state, run, messages)
            self._recall_tool_results(steps)
        reuse: _Open | None = None
        if not self._picked_up:
            self._picked_up = True
            picked = await self._pick_up(steps)
            if isinstance(picked, str):
                return picked
            reuse = picked
        ctx_args = (run, messages, steps)
        ctx_kw = {
            "count": lambda msgs: self.ex.count_tokens(run.model, msgs),
            "context_window": llm.context_window(run.model),
            "prompt_tokens_used": (run.usage or {}).get("prompt_tokens", 0),
        }
        if sum(len(str(m.content)) for m in messages) + len(run.instructions or "") < INLINE_CONTEXT_CHARS:
            ctx = build_context(*ctx_args, **ctx_kw)  # small: cheaper than a thread hop
        else:
            # Token counting is CPU work: off the event loop, so other runs keep streaming.
            ctx = await asyncio.to_thread(build_context, *ctx_args, **ctx_kw)
        if ctx.over_budget and run.max_prompt_tokens is not None:
            await self._incomplete("max_prompt_tokens")
            return "done"
        used = (run.usage or {}).get("completion_tokens", 0)
        remaining = None
        if run.max_completion_tokens is not None:
            remaining = run.max_completion_tokens - used
            if remaining <= 0:
                await self._incomplete("max_completion_tokens")
                return "done"
        request = self._request(run, ctx.messages, remaining)
        self.open = reuse or _Open()
        async for ev in llm.stream(request):
            if isinstance(ev, TextDelta):
                await self._text(ev.text)
            elif isinstance(ev, ToolCallStart):
                await self._tool_start(ev)
            elif isinstance(ev, ToolCallArgsDelta):
                self._tool_args(ev)
            elif isinstance(ev, Finish):
                self.open.finish = ev.reason
            elif isinstance(ev, Usage):
                self.open.usage = ev
            elif isinstance(ev, ReasoningDelta):
                pass  # reasoning never becomes answer text
        return await self._settle()

    def _recall_tool_results(self, steps: list[Any]) -> None:
        """Citations and sandbox files of this run's earlier tool steps (also after a resume)."""
        self.file_search_calls = 0
        for step in steps:
            if step.type != "tool_calls":
                continue
            for call in step.step_details.get("tool_calls", []):
                if call["type"] != "function" and (call.get("_model") or {}).get("output") is None:
                    continue  # not executed yet (its worker stopped): executed on pick-up
                if call["type"] == FILE_SEARCH:
                    for n, r in enumerate(call["file_search"].get("results") or []):
                        self.citations[(self.file_search_calls, n)] = Citation.of_result(r)
                    self.file_search_calls += 1
                elif call["type"] == CODE_INTERPRETER:
                    self.sandbox_files.update((call.get("_model") or {}).get("files") or {})

    async def _pick_up(self, steps: list[Any]) -> str | _Open | None:
        """What an interrupted attempt of this run left (a step still ``in_progress`` when the run was
        claimed): tool calls committed but not all executed are executed now (their model call is not
        made again: answers the outcome); a message or tool step whose model call was cut is replaced
        by the next call's output (answers it as the call's open state). None: nothing was left."""
        left = [x for x in steps if x.status == "in_progress"]
        if not left:
            return None
        async with self.db.session(inline=True) as s:
            step = await s.scalar(select(RunStep).where(RunStep.id == left[-1].id))
            message = None
            if step is not None and step.type == "message_creation":
                mid = step.step_details["message_creation"]["message_id"]
                message = await s.scalar(select(Message).where(Message.id == mid, Message.status == "in_progress"))
        if step is None:
            return None
        calls = step.step_details.get("tool_calls") or []
        if step.type == "tool_calls" and calls:
            u = step.usage or {}
            usage = Usage(u.get("prompt_tokens", 0), u.get("completion_tokens", 0), 0)
            self.open = _Open(tool_step=step, calls=dict(enumerate(calls)), usage=usage)
            return await self._after_tool_calls()
        observe.model_call_remade(self.run_id, self.run.model)
        if message is not None:
            return _Open(message=message, message_step=step, restart=True)
        return _Open(tool_step=step, restart=True)

    def _request(self, run: Run, messages: list[dict[str, Any]], max_completion_tokens: int | None) -> ChatRequest:
        functions = [t for t in run.tools if t["type"] == "function"]
        tools = [{"type": "function", "function": t["function"]} for t in functions]
        tools += builtin_functions([t for t in run.tools if t["type"] in self.builtins])
        choice = run.tool_choice
        if isinstance(choice, dict) and choice.get("type") in BUILTINS:
            # a named built-in tool: the model must call that function
            choice = {"type": "function", "function": {"name": choice["type"]}}
        rf = run.response_format
        return ChatRequest(
            model=run.model,
            messages=messages,
            tools=tools or None,
            tool_choice=choice if tools else None,
            parallel_tool_calls=run.parallel_tool_calls if tools else None,
            temperature=run.temperature,
            top_p=run.top_p,
            max_completion_tokens=max_completion_tokens,
            response_format=rf if isinstance(rf, dict) and rf.get("type") != "text" else None,
            reasoning_effort=run.reasoning_effort,
        )

    # --- a text answer --------------------------------------------------------------------------

    async def _open_message(self) -> None:
        o = self.open
        if o.restart and o.message is not None and o.message_step is not None:
            # The interrupted call's message, replaced in place: streams see it created again,
            # empty, so that what they accumulated of it is started over.
            o.restart = False
            if self.builtins:
                o.annotator = Annotator(self.citations, self.sandbox_files)
            self.emit("thread.message.created", message_object(o.message))
            self.emit("thread.message.in_progress", message_object(o.message))
            return
        dropped = self._drop_leftover()
        run, t = self.run, now()
        msg = Message(
            id=new_id("message"),
            project_id=run.project_id,
            created_at=t,
            thread_id=run.thread_id,
            role="assistant",
            content=[],
            attachments=[],
            metadata_={},
            status="in_progress",
            assistant_id=run.assistant_id,
            run_id=run.id,
        )
        step = self._new_step(
            "message_creation", {"type": "message_creation", "message_creation": {"message_id": msg.id}}, t
        )
        async with self.db.session(write=True, inline=True, urgent=True) as s:
            await delete_rows(s, dropped)
            await insert_rows(s, step, msg)
        self.open.message, self.open.message_step = msg, step
        if self.builtins:
            self.open.annotator = Annotator(self.citations, self.sandbox_files)
        self.emit("thread.run.step.created", self._step_object(step))
        self.emit("thread.run.step.in_progress", self._step_object(step))
        self.emit("thread.message.created", message_object(msg))
        self.emit("thread.message.in_progress", message_object(msg))

    async def _text(self, text: str) -> None:
        if not text:
            return
        if self.open.message is None or self.open.restart:
            await self._open_message()
        assert self.open.message is not None
        part: dict[str, Any] = {"index": 0, "type": "text", "text": {"value": text}}
        if not self.open.text:
            part["text"]["annotations"] = []
        self.open.text.append(text)
        if self.open.annotator is not None:
            self.open.full += text
            found = self.open.annotator.scan(self.open.full)
            if found:
                part["text"]["annotations"] = part["text"].get("annotations", []) + found
        self.emit(
            "thread.message.delta",
            {"id": self.open.message.id, "object": "thread.message.delta", "delta": {"content": [part]}},
        )

    async def _close_message(
        self,
        status: str,
        reason: str | None,
        usage: dict[str, int] | None,
        step_status: str,
        error: dict[str, str] | None = None,
    ) -> None:
        closed = self._closing(status, reason, usage, step_status, error)
        if closed is None:
            return
        async with self.db.session(write=True, inline=True, urgent=True) as s:
            await write_closed(s, *closed)
        self.open.message = self.open.message_step = None
        self._emit_closed(*closed, status, step_status)

    def _closing(
        self,
        status: str,
        reason: str | None,
        usage: dict[str, int] | None,
        step_status: str,
        error: dict[str, str] | None = None,
    ) -> tuple[Message, RunStep] | None:
        """End the open message and its step in memory; the caller writes them (and may end the run
        in the same transaction), then forgets them (``self.open``) once written."""
        msg, step = self.open.message, self.open.message_step
        if msg is None or step is None:
            return None
        t = now()
        value = "".join(self.open.text)
        annotations: list[dict[str, Any]] = []
        late: list[dict[str, Any]] = []
        if self.open.annotator is not None:
            late = [*self.open.annotator.scan(value, final=True)]
            annotations = self.open.annotator.all
            if late:  # a link at the very end of the answer
                self._message_delta(msg.id, {"index": 0, "type": "text", "text": {"value": "", "annotations": late}})
        images = self.pending_images if status == "completed" else []
        # An answer that is only images has no text part: the images take index 0 on (the SDKs'
        # accumulators cannot put a part at index 1 of a message whose index 0 never came).
        msg.content = (
            [{"type": "text", "text": {"value": value, "annotations": annotations}}] if value or not images else []
        )
        if images:
            for file_id in self.pending_images:
                part = {"type": "image_file", "image_file": {"file_id": file_id}}
                self._message_delta(msg.id, {"index": len(msg.content), **part})
                msg.content.append(part)
            self.pending_images = []
        msg.status = status
        if status == "completed":
            msg.completed_at = t
        else:
            msg.incomplete_at = t
            msg.incomplete_details = {"reason": reason}
        step.status = step_status
        setattr(step, {"completed": "completed_at", "cancelled": "cancelled_at", "failed": "failed_at"}[step_status], t)
        step.usage = usage or {"prompt_tokens": 0, "completion_tokens": 0}
        if error is not None:
            step.last_error = error
        return msg, step

    def _message_delta(self, message_id: str, part: dict[str, Any]) -> None:
        self.emit(
            "thread.message.delta",
            {"id": message_id, "object": "thread.message.delta", "delta": {"content": [part]}},
        )

    def _emit_closed(self, msg: Message, step: RunStep, status: str, step_status: str) -> None:
        self.emit(f"thread.message.{status}", message_object(msg))
        self.emit(f"thread.run.step.{step_status}", self._step_object(step))

    # --- tool calls -----------------------------------------------------------------------------

    def _call_usage(self) -> dict[str, int]:
        u = self.open.usage
        return (
            {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens}
            if u
            else {"prompt_tokens": 0, "completion_tokens": 0}
        )

    def _add_usage(self, usage: dict[str, int]) -> dict[str, int]:
        total = dict(self.run.usage or {"prompt_tokens": 0, "completion_tokens": 0})
        total["prompt_tokens"] = total.get("prompt_tokens", 0) + usage["prompt_tokens"]
        total["completion_tokens"] = total.get("completion_tokens", 0) + usage["completion_tokens"]
        total["total_tokens"] = total["prompt_tokens"] + total["completion_tokens"]
        self.run.usage = total
        return total

    async def _settle(self) -> str:
        usage = self._call_usage()
        total = self._add_usage(usage)
        if self.open.calls:
            step = self.open.tool_step
            assert step is not None
            calls = [self.open.calls[i] for i in sorted(self.open.calls)]
            step.step_details = {"type": "tool_calls", "tool_calls": calls}
            step.usage = usage
            if any(c["type"] != "function" for c in calls):
                # Checkpoint: the model call is over and its calls are committed before they are
                # executed, so a worker that stops from here on does not make the call again.
                async with self.db.session(write=True, inline=True, urgent=True) as s:
                    await write_step(s, step)
                    await s.execute(update(_RUNS).where(_RUNS.c.id == self.run_id).values(usage=total))
            return await self._after_tool_calls()
        truncated = self.open.finish == "length"
        if self.open.message is None or self.open.restart:
            await self._open_message()  # an empty answer is still a message
        # The message, its step and the run end in one transaction.
        closed = self._closing(
            "incomplete" if truncated else "completed", "max_tokens" if truncated else None, usage, "completed"
        )
        if truncated:
            await self._finish("incomplete", closed=closed, incomplete_details={"reason": "max_completion_tokens"})
        else:
            await self._finish("completed", closed=closed, completed_at=now())
        return "done"

    def _step_object(self, step: RunStep) -> dict[str, Any]:
        return step_to_object(step, include_content=bool(self.run.include))

    def _new_step(self, kind: str, details: dict[str, Any], t: int) -> RunStep:
        run = self.run
        return RunStep(
            id=new_id("step"),
            project_id=run.project_id,
            created_at=t,
            run_id=run.id,
            thread_id=run.thread_id,
            assistant_id=run.assistant_id,
            type=kind,
            status="in_progress",
            step_details=details,
            metadata_={},
            usage=None,
        )

    async def _write_end(self, write: Any) -> Any:
        """Run ``write(session)`` (a run's end or resting point: status, message, steps together) in
        one transaction, tried ``END_ATTEMPTS`` times; then ``EndNotWritten``."""
        for attempt in range(END_ATTEMPTS):
            try:
                async with self.db.session(write=True, inline=True, urgent=True) as s:
                    return await write(s)
            except Exception as exc:
                if attempt == END_ATTEMPTS - 1:
                    raise EndNotWritten(str(exc)) from exc
                log.warning(
                    "run %s: writing its end failed (%s: %s); trying again",
                    self.run_id,
                    type(exc).__name__,
                    exc,
                    extra={"run_id": self.run_id},
                )
                await asyncio.sleep(0.25 * 2**attempt)
        raise AssertionError("unreachable")

    async def _finish(
        self,
        status: str,
        *,
        closed: tuple[Message, RunStep] | None = None,
        tool_step: RunStep | None = None,
        **values: Any,
    ) -> bool:
        """End the run, with the message and step just closed and the tool step just ended (if any),
        in one transaction."""

        async def end(s: Any) -> Any:
            if closed is not None:
                await write_closed(s, *closed)
            if tool_step is not None:
                await write_step(s, tool_step)
            return await transition_row(
                s, self.run_id, status, usage=self.run.usage, lease_owner=None, lease_expires_at=None, **values
            )

        row = await self._write_end(end)
        if closed is not None:
            self.open.message = self.open.message_step = None
            msg, step = closed
            self._emit_closed(msg, step, msg.status, step.status)
        if tool_step is not None:
            self.emit(f"thread.run.step.{tool_step.status}", self._step_object(tool_step))
        if row is None:
            return False
        self.run = Run(**row._mapping)
        self.emit(f"thread.run.{status}", run_object(row))
        if status in LOGGED:
            r = self.run
            log_run_end(
                self.ex.state.llm,
                run_id=r.id,
                thread_id=r.thread_id,
                model=r.model,
                status=status,
                last_error=r.last_error,
                incomplete_details=r.incomplete_details,
            )
        return True

    async def _incomplete(self, reason: str) -> None:
        await self._finish("incomplete", incomplete_details={"reason": reason}, completed_at=None)

    async def _fail(self, code: str, message: str) -> None:
        error = {"code": code, "message": message}
        # a step's last_error takes server_error or rate_limit_exceeded only (RunStepObject)
        step_error = {"code": code if code != "invalid_prompt" else "server_error", "message": message}
        closed = self._closing("incomplete", "run_failed", self._call_usage(), "failed", step_error)
        step = self._ending_tool_step("failed", "failed_at")
        if step is not None:
            step.last_error = step_error
        self._usage_so_far()
        await self._finish("failed", closed=closed, tool_step=step, last_error=error, failed_at=now())

    def _usage_so_far(self) -> None:
        """An ended run has usage (null only while it runs): the calls settled, or the one cut short."""
        if self.run.usage is None:
            self._add_usage(self._call_usage())

    async def _stopped(self) -> None:
        """The task was cancelled: a cancel request, shutdown, or a lost lease."""
        reason = self.stop_reason
        if reason == StopReason.CANCEL:
            self.emit("thread.run.cancelling", {**run_object(self.run), "status": "cancelling"})
            closed = self._closing("incomplete", "run_cancelled", self._call_usage(), "cancelled")
            step = self._ending_tool_step("cancelled", "cancelled_at")
            self._usage_so_far()
            await self._finish("cancelled", closed=closed, tool_step=step, cancelled_at=now())
        elif reason == StopReason.SHUTDOWN:
            # Hand the run back as it stands: the next worker continues it (executor/resume.py).
            await self.ex.hand_back(self.run_id)
        elif reason == StopReason.LEASE_LOST:
            # Another actor owns the run now: touch nothing; streams here follow its new executor.
            self.bus.release_local(self.run_id)

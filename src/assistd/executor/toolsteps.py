"""A run's tool-call steps: calls streamed as the model makes them, built-in calls executed (and
committed one by one), then the step completes or the run waits for function outputs. A mixin of
``RunRunner`` (runner.py), which holds the state these methods use."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from assistd.db.core import insert_rows
from assistd.executor.builtins import code_interpreter, file_search
from assistd.executor.tools import CODE_INTERPRETER, FILE_SEARCH, code_argument, partial_code, search_queries
from assistd.executor.transitions import transition_row
from assistd.executor.writes import delete_rows, write_step
from assistd.ids import new_id
from assistd.llm.protocol import ToolCallArgsDelta, ToolCallStart
from assistd.models import Run, RunStep
from assistd.runs.protocol import to_object as run_object
from assistd.timeutil import now

if TYPE_CHECKING:
    from assistd.db.session import Database
    from assistd.executor.builtins import Resources
    from assistd.executor.runner import _Open
    from assistd.executor.tools import Citation
    from assistd.executor.worker import Executor

_RUNS = Run.__table__


class ToolSteps:
    if TYPE_CHECKING:  # what RunRunner holds and provides
        ex: Executor
        db: Database
        run: Run
        run_id: str
        open: _Open
        builtins: frozenset[str]
        resources: Resources | None
        citations: dict[tuple[int, int], Citation]
        file_search_calls: int
        sandbox_files: dict[str, str]
        pending_images: list[str]

        def emit(self, event: str, data: dict[str, Any]) -> None: ...
        def _step_object(self, step: RunStep) -> dict[str, Any]: ...
        def _new_step(self, kind: str, details: dict[str, Any], t: int) -> RunStep: ...
        def _call_usage(self) -> dict[str, int]: ...
        async def _write_end(self, write: Any) -> Any: ...
        async def _close_message(
            self,
            status: str,
            reason: str | None,
            usage: dict[str, int] | None,
            step_status: str,
            error: dict[str, str] | None = None,
        ) -> None: ...

    async def _tool_start(self, ev: ToolCallStart) -> None:
        if self.open.restart and self.open.tool_step is not None:
            # The interrupted call's tool step, replaced in place (streams start it over).
            self.open.restart = False
            self.emit("thread.run.step.created", self._step_object(self.open.tool_step))
            self.emit("thread.run.step.in_progress", self._step_object(self.open.tool_step))
        elif self.open.message is not None and not self.open.restart:
            # Text before a tool call is its own message step, completed first.
            await self._close_message("completed", None, None, "completed")
        if self.open.tool_step is None:
            dropped = self._drop_leftover()
            step = self._new_step("tool_calls", {"type": "tool_calls", "tool_calls": []}, now())
            async with self.db.session(write=True, inline=True, urgent=True) as s:
                await delete_rows(s, dropped)
                await insert_rows(s, step)
            self.open.tool_step = step
            self.emit("thread.run.step.created", self._step_object(step))
            self.emit("thread.run.step.in_progress", self._step_object(step))
        # Our own `call_` ids (CONTRACT §1); the upstream's only have to agree with each other.
        call_id = ev.id if ev.id.startswith("call_") else new_id("call")
        call: dict[str, Any]
        if ev.name == FILE_SEARCH and FILE_SEARCH in self.builtins:
            call = {"id": call_id, "type": FILE_SEARCH, "file_search": {}}
        elif ev.name == CODE_INTERPRETER and CODE_INTERPRETER in self.builtins:
            call = {"id": call_id, "type": CODE_INTERPRETER, "code_interpreter": {"input": "", "outputs": []}}
        else:
            call = {"id": call_id, "type": "function", "function": {"name": ev.name, "arguments": "", "output": None}}
        self._step_delta({"index": ev.index, **copy.deepcopy(call)})
        if call["type"] != "function":
            call["_model"] = {"name": ev.name, "arguments": ""}  # what the model sent and will read back
        self.open.calls[ev.index] = call

    def _drop_leftover(self) -> list[Any]:
        """The re-made call answers with the other kind of output than the interrupted one had begun
        (text instead of tool calls, or the reverse): the unfinished message or step is removed (with
        the insert of what replaces it)."""
        o = self.open
        if not o.restart:
            return []
        o.restart = False
        dropped = [x for x in (o.message_step, o.message, o.tool_step) if x is not None]
        o.message = o.message_step = o.tool_step = None
        return dropped

    def _tool_args(self, ev: ToolCallArgsDelta) -> None:
        call = self.open.calls.get(ev.index)
        if call is None or not ev.arguments:
            return
        if call["type"] == "function":
            call["function"]["arguments"] += ev.arguments
            self._step_delta({"index": ev.index, "type": "function", "function": {"arguments": ev.arguments}})
            return
        call["_model"]["arguments"] += ev.arguments
        if call["type"] == CODE_INTERPRETER:
            # The code is shown as the model writes it: the decoded prefix of its JSON string.
            code = partial_code(call["_model"]["arguments"])
            seen = call["code_interpreter"]["input"]
            if len(code) > len(seen) and code.startswith(seen):
                call["code_interpreter"]["input"] = code
                self._step_delta(
                    {"index": ev.index, "type": CODE_INTERPRETER, "code_interpreter": {"input": code[len(seen) :]}}
                )

    def _step_delta(self, call_delta: dict[str, Any]) -> None:
        assert self.open.tool_step is not None
        self.emit(
            "thread.run.step.delta",
            {
                "id": self.open.tool_step.id,
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [call_delta]}},
            },
        )

    # --- the end of one upstream call ----------------------------------------------------------

    async def _after_tool_calls(self) -> str:
        """The model call's tool calls are committed: execute the built-in ones that have no output
        yet (each committed once done, so a stopped worker does not run it again), then the step
        completes (the model reads the results next) or the run waits for function outputs."""
        step = self.open.tool_step
        assert step is not None
        order = sorted(self.open.calls)
        pending = [
            i
            for i in order
            if self.open.calls[i]["type"] != "function" and self.open.calls[i]["_model"].get("output") is None
        ]
        for n, i in enumerate(pending):
            await self._run_builtin(i, self.open.calls[i])
            if n < len(pending) - 1:  # the last one is written with the step's end
                async with self.db.session(write=True, inline=True, urgent=True) as s:
                    await write_step(s, step)
        calls = [self.open.calls[i] for i in order]
        step.step_details = {"type": "tool_calls", "tool_calls": calls}
        total = self.run.usage
        functions = [c for c in calls if c["type"] == "function"]
        if not functions:
            # Only built-in tools: the step is done and the model reads their results.
            step.status, step.completed_at = "completed", now()
            async with self.db.session(write=True, inline=True, urgent=True) as s:
                await write_step(s, step)
                await s.execute(update(_RUNS).where(_RUNS.c.id == self.run_id).values(usage=total))
            self.open.tool_step = None
            self.emit("thread.run.step.completed", self._step_object(step))
            return "continue"
        required = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
                    }
                    for c in functions
                ]
            },
        }

        async def rest(s: Any) -> Any:
            await write_step(s, step)
            return await transition_row(
                s,
                self.run_id,
                "requires_action",
                only_from={"in_progress"},
                required_action=required,
                usage=total,
                lease_owner=None,
                lease_expires_at=None,
            )

        row = await self._write_end(rest)
        self.open.tool_step = None
        if row is not None:
            self.run = Run(**row._mapping)
            self.emit("thread.run.requires_action", run_object(row))
        return "done"

    async def _run_builtin(self, index: int, call: dict[str, Any]) -> None:
        """Execute a file_search or code_interpreter call and fill in its results."""
        state, run, model = self.ex.state, self.run, call["_model"]
        assert self.resources is not None
        if call["type"] == FILE_SEARCH:
            queries = search_queries(model["arguments"])
            m = self.file_search_calls
            self.file_search_calls += 1
            details, text, cites = await file_search(
                state, run, self.resources, m, queries, state.llm.context_window(run.model)
            )
            call["file_search"] = details
            self.citations.update(cites)
            model["output"] = text
            return
        code = code_argument(model["arguments"])
        shown = call["code_interpreter"]["input"]
        if code != shown:
            if code.startswith(shown):
                self._step_delta(
                    {"index": index, "type": CODE_INTERPRETER, "code_interpreter": {"input": code[len(shown) :]}}
                )
            call["code_interpreter"]["input"] = code
        outcome = await code_interpreter(state, run, self.resources, code)
        call["code_interpreter"]["outputs"] = outcome.outputs
        if outcome.outputs:
            self._step_delta(
                {
                    "index": index,
                    "type": CODE_INTERPRETER,
                    "code_interpreter": {"outputs": [{"index": k, **o} for k, o in enumerate(outcome.outputs)]},
                }
            )
        self.sandbox_files.update(outcome.files)
        self.pending_images += outcome.images
        model["output"], model["files"] = outcome.model_text, outcome.files

    def _ending_tool_step(self, status: str, at: str) -> RunStep | None:
        """The open tool step ended early (failed, cancelled), in memory: it still shows the calls the
        model made, as far as they came, and what its call used."""
        step = self.open.tool_step
        if step is None or step.status != "in_progress":
            return None
        step.status = status
        setattr(step, at, now())
        if self.open.calls and not step.step_details.get("tool_calls"):
            calls = [self.open.calls[i] for i in sorted(self.open.calls)]
            step.step_details = {"type": "tool_calls", "tool_calls": calls}
        step.usage = self._call_usage()
        return step

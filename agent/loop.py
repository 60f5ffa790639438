"""The reasoning loop: model → tool calls over MCP → results back → … → a final answer.

Limits are data (`Limits`): model calls, tool calls, tokens and the job's deadline. A tool
error (a guard denial, bad arguments, an argument PostgreSQL could not store such as a NUL)
goes back to the model as the tool's answer so it can choose another asset, another channel,
or nothing. Every message and tool call becomes a
`Step` of the decision record.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.errors import ModelTimeout
from agent.model import Brief, ChatModel, Message, ModelRequest, ToolCall, ToolSpec
from agent.toolbox import Toolbox
from mca.clock import Clock
from mca.untrusted import unstorable
from mcp_tools.contract import SIDE_EFFECTS, Outcome, Reason, Status

if TYPE_CHECKING:
    from agent.allocation import Chooser


@dataclass(frozen=True)
class Limits:
    max_model_calls: int = 8
    max_tool_calls: int = 12
    token_budget: int = 24_000


@dataclass
class Step:
    kind: str  # message | tool_call
    role: str | None = None
    content: str | None = None
    tool_name: str | None = None
    arguments: dict[str, Any] | None = None
    # A tool call's answer: the tool server's, or the loop's own refusal before any tool saw it.
    outcome: Outcome | None = None
    latency_ms: float | None = None
    tool_calls: list[dict[str, Any]] | None = None

    @property
    def verdict(self) -> Status | None:
        """The call's status (stored in the record's `verdict` column, as the API shows it)."""
        return self.outcome.status if self.outcome else None

    @property
    def reason_code(self) -> str | None:
        return self.outcome.reason if self.outcome else None

    @property
    def result(self) -> dict[str, Any] | None:
        return self.outcome.to_dict() if self.outcome else None


@dataclass
class Transcript:
    steps: list[Step] = field(default_factory=list)
    outcome: str = "nothing"
    rationale: str = ""
    model_calls: int = 0
    tool_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    model_ms: float = 0.0
    tool_ms: float = 0.0
    accepted: list[str] = field(default_factory=list)

    def add_message(self, message: Message) -> None:
        content = message.get("content")
        self.steps.append(
            Step(
                kind="message",
                role=str(message["role"]),
                content=content if isinstance(content, str) else json.dumps(content, default=str),
                tool_calls=message.get("tool_calls"),
            )
        )


def _tool_message(call: ToolCall, content: str) -> Message:
    return {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content}


async def run_loop(
    *,
    model: ChatModel,
    toolbox: Toolbox,
    brief: Brief,
    messages: list[Message],
    tools: list[ToolSpec],
    limits: Limits,
    deadline: datetime,
    clock: Clock,
    chooser: Chooser | None = None,
) -> Transcript:
    """With a `chooser` (selection mode bandit or explore) the first offer call is replaced by the
    allocator's choice among the reply's candidates before it is recorded or made."""
    t = Transcript()
    for m in messages:
        t.add_message(m)
    while True:
        remaining = (deadline - clock()).total_seconds()
        stop = _limit_reached(t, limits, remaining)
        if stop:
            t.outcome = "acted" if t.accepted else "limit"
            t.rationale = stop + (f"; accepted actions: {', '.join(t.accepted)}" if t.accepted else "")
            return t
        started = time.perf_counter()
        try:
            reply = await asyncio.wait_for(model.complete(ModelRequest(messages, tools, brief)), remaining)
        except TimeoutError:
            raise ModelTimeout(
                f"the model did not answer before the decision deadline ({remaining:.1f}s)"
            ) from None
        t.model_ms += (time.perf_counter() - started) * 1000
        t.model_calls += 1
        t.tokens_in += reply.tokens_in
        t.tokens_out += reply.tokens_out
        if chooser is not None:
            reply.tool_calls = [await chooser.choose(c, reply.candidates, messages) for c in reply.tool_calls]
        message = reply.as_message()
        messages.append(message)
        t.add_message(message)
        if not reply.tool_calls:
            t.rationale = (reply.text or "").strip() or "(the model gave no rationale)"
            t.outcome = "acted" if t.accepted else "nothing"
            return t
        for call in reply.tool_calls:
            content = await _run_call(call, toolbox, brief, t, limits, chooser)
            tool_msg = _tool_message(call, content)
            messages.append(tool_msg)
            t.add_message(tool_msg)


def _limit_reached(t: Transcript, limits: Limits, remaining_s: float) -> str | None:
    if remaining_s <= 0:
        return "stopped: the decision deadline passed"
    if t.model_calls >= limits.max_model_calls:
        return f"stopped: reached the limit of {limits.max_model_calls} model calls"
    if t.tokens_in + t.tokens_out >= limits.token_budget:
        return f"stopped: used the token budget of {limits.token_budget}"
    return None


def _refusal(call: ToolCall, brief: Brief, t: Transcript, limits: Limits) -> Outcome | None:
    """The loop's own answer to a call no tool should see, or None to make the call."""
    if call.error:
        return Outcome(status=Status.ERROR, reason=Reason.INVALID_ARGUMENTS, message=call.error)
    unstorable_at = unstorable(call.arguments)
    if unstorable_at is not None:
        # The tool server would fail to record the call; the model can resend the argument
        # without the character.
        field_name, problem = unstorable_at
        message = f"argument {field_name!r} {problem}; send it again without that"
        return Outcome(
            status=Status.ERROR, reason=Reason.INVALID_ARGUMENTS, message=message, field=field_name
        )
    target = call.arguments.get("user_id")
    if target is not None and str(target) != brief.user_id:
        # The decision is about one customer; a call naming another (an injected "send it to
        # my friend") never reaches the tools. The tool server checks the same rule (meta
        # `mca.user_id`) under the same code.
        message = f"this decision may only act for user_id {brief.user_id}"
        return Outcome(status=Status.DENIED, reason=Reason.SUBJECT_MISMATCH, message=message)
    if t.tool_calls >= limits.max_tool_calls:
        message = f"this decision may make at most {limits.max_tool_calls} tool calls; answer now"
        return Outcome(status=Status.ERROR, reason=Reason.TOOL_CALL_LIMIT, message=message)
    return None


async def _run_call(
    call: ToolCall,
    toolbox: Toolbox,
    brief: Brief,
    t: Transcript,
    limits: Limits,
    chooser: Chooser | None = None,
) -> str:
    step = Step(kind="tool_call", tool_name=call.name, arguments=call.arguments)
    t.steps.append(step)
    refused = _refusal(call, brief, t, limits) or (chooser.refusals.get(call.id) if chooser else None)
    if refused is not None:
        step.outcome = refused
        if call.error:
            step.arguments = {"_raw": call.raw_arguments}
        return json.dumps(refused.to_dict())
    t.tool_calls += 1
    started = time.perf_counter()
    outcome = await toolbox.call(
        call.name, call.arguments, decision_id=brief.decision_id, trigger=brief.trigger, user_id=brief.user_id
    )
    step.outcome, step.latency_ms = outcome, (time.perf_counter() - started) * 1000
    t.tool_ms += step.latency_ms
    if call.name in SIDE_EFFECTS and outcome.accepted:
        t.accepted.append(f"{call.name}({outcome.status})")
    answer = outcome.to_dict()
    if chooser is not None:  # the search results show what mca has learned about each asset
        answer = chooser.annotate(call.name, answer)
    # What the model reads back: the server's own structured answer, compact.
    return json.dumps(answer, default=str, separators=(",", ":"))

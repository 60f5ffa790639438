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
from typing import Any

from agent.errors import ModelTimeout
from agent.model import SIDE_EFFECT_TOOLS, Brief, ChatModel, Message, ModelRequest, ToolCall, ToolSpec
from agent.toolbox import Toolbox
from mca.clock import Clock
from mca.untrusted import unstorable

ACCEPTED = frozenset({"allowed", "deferred", "held", "shadow"})


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
    verdict: str | None = None
    reason_code: str | None = None
    result: dict[str, Any] | None = None
    latency_ms: float | None = None
    tool_calls: list[dict[str, Any]] | None = None


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
) -> Transcript:
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
        message = reply.as_message()
        messages.append(message)
        t.add_message(message)
        if not reply.tool_calls:
            t.rationale = (reply.text or "").strip() or "(the model gave no rationale)"
            t.outcome = "acted" if t.accepted else "nothing"
            return t
        for call in reply.tool_calls:
            content = await _run_call(call, toolbox, brief, t, limits)
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


async def _run_call(call: ToolCall, toolbox: Toolbox, brief: Brief, t: Transcript, limits: Limits) -> str:
    step = Step(kind="tool_call", tool_name=call.name, arguments=call.arguments)
    t.steps.append(step)
    if call.error:
        step.verdict, step.reason_code = "error", "invalid_arguments"
        step.result = {"status": "error", "reason": "invalid_arguments", "message": call.error}
        step.arguments = {"_raw": call.raw_arguments}
        return json.dumps(step.result)
    unstorable_at = unstorable(call.arguments)
    if unstorable_at is not None:
        # Refused before any tool sees it: the tool server would fail to record the call, and
        # the model can resend the argument without the character.
        field_name, problem = unstorable_at
        step.verdict, step.reason_code = "error", "invalid_arguments"
        step.result = {
            "status": "error",
            "reason": "invalid_arguments",
            "field": field_name,
            "message": f"argument {field_name!r} {problem}; send it again without that",
        }
        return json.dumps(step.result)
    target = call.arguments.get("user_id")
    if target is not None and str(target) != brief.user_id:
        # The decision is about one customer; a call naming another (an injected "send it to
        # my friend") never reaches the tools.
        step.verdict, step.reason_code = "denied", "user_mismatch"
        step.result = {
            "status": "denied",
            "reason": "user_mismatch",
            "message": f"this decision may only act for user_id {brief.user_id}",
        }
        return json.dumps(step.result)
    if t.tool_calls >= limits.max_tool_calls:
        step.verdict, step.reason_code = "error", "tool_call_limit"
        step.result = {
            "status": "error",
            "reason": "tool_call_limit",
            "message": f"this decision may make at most {limits.max_tool_calls} tool calls; answer now",
        }
        return json.dumps(step.result)
    t.tool_calls += 1
    result = await toolbox.call(
        call.name, call.arguments, decision_id=brief.decision_id, trigger=brief.trigger, user_id=brief.user_id
    )
    t.tool_ms += result.latency_ms
    step.verdict, step.reason_code, step.result, step.latency_ms = (
        result.status,
        result.reason,
        result.data,
        result.latency_ms,
    )
    if result.ok and call.name in SIDE_EFFECT_TOOLS and result.status in ACCEPTED:
        t.accepted.append(f"{call.name}({result.status})")
    return result.for_model()

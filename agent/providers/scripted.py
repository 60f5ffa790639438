"""Scripted models for tests and benchmarks: replies given in advance, no network.

`ScriptedModel` plays a list of turns (tool calls, a final text, or a function of the
request). `EveryToolModel` calls every tool it is shown once, with arguments generated from
each tool's JSON schema, then answers.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

from agent.model import ModelReply, ModelRequest, ToolCall, ToolSpec
from mcp_tools.contract import Tool

Turn = str | Sequence[ToolCall] | Callable[[ModelRequest], ModelReply]
_ids = itertools.count(1)


def call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=f"call_{next(_ids)}", name=name, arguments=arguments)


class ScriptedModel:
    brain = "scripted"

    def __init__(self, turns: Sequence[Turn], *, model: str = "script", final: str = "done") -> None:
        self.turns = list(turns)
        self.model = model
        self.final = final
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        turn_no = sum(1 for m in request.messages if m["role"] == "assistant")
        if turn_no >= len(self.turns):
            return ModelReply(text=self.final)
        turn = self.turns[turn_no]
        if isinstance(turn, str):
            return ModelReply(text=turn)
        if callable(turn):
            return turn(request)
        # Fresh ids per request: a retried decision replays the same script.
        return ModelReply(text=None, tool_calls=[call(c.name, **c.arguments) for c in turn])

    async def aclose(self) -> None:
        return None


def example_value(name: str, schema: dict[str, Any], request: ModelRequest) -> Any:
    """A schema-valid value, using what the request knows for ids."""
    if name == "user_id":
        return request.brief.user_id
    if name == "asset_id":
        for m in reversed(request.messages):
            if m["role"] == "tool" and m.get("name") == Tool.SEARCH_ASSETS:
                assets = json.loads(m["content"]).get("assets") or []
                if assets:
                    return assets[0]["asset_id"]
        return "unknown-asset"
    kinds = schema.get("type") or next(
        (s.get("type") for s in schema.get("anyOf", []) if s.get("type") != "null"), "string"
    )
    if kinds == "integer":
        return 10
    if kinds == "number":
        return 10.0
    if kinds == "boolean":
        return True
    if kinds == "object":
        return {"agent_note": "schema-valid test note"}
    if kinds == "array":
        return []
    return {"query": "camping gear", "text": "Thanks for being with us!", "reason": "test of every tool"}.get(
        name, f"test {name}"
    )


def arguments_for(spec: ToolSpec, request: ModelRequest) -> dict[str, Any]:
    props = spec.parameters.get("properties", {})
    required = spec.parameters.get("required", list(props))
    return {name: example_value(name, props[name], request) for name in required}


class EveryToolModel:
    """Calls each tool it is shown, once, in the order shown; then answers."""

    brain = "scripted"
    model = "every-tool"

    async def complete(self, request: ModelRequest) -> ModelReply:
        called = {
            c["function"]["name"]
            for m in request.messages
            if m["role"] == "assistant"
            for c in m.get("tool_calls") or []
        }
        for spec in request.tools:
            if spec.name not in called:
                return ModelReply(
                    text=None,
                    tool_calls=[ToolCall(f"call_{next(_ids)}", spec.name, arguments_for(spec, request))],
                )
        return ModelReply(text="called every tool once")

    async def aclose(self) -> None:
        return None

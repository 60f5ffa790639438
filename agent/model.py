"""The one interface every brain speaks: messages + tool schemas in, text or tool calls out.

Messages use the chat-completions shape (system/user/assistant/tool dicts) because Groq,
OpenAI-compatible servers and our own loop all read it. The rules brain also gets the
structured `Brief`, so it reasons from data instead of parsing its own prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

Message = dict[str, Any]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]

    def as_function(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    # Set when the model's arguments were not a JSON object: the loop answers with an error
    # instead of calling the tool.
    error: str | None = None
    raw_arguments: str | None = None

    def as_message_part(self) -> dict[str, Any]:
        raw = self.raw_arguments if self.error else json.dumps(self.arguments, default=str)
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": raw or "{}"}}


@dataclass(frozen=True)
class Candidate:
    """One action the brain would take: an arm (an asset on a channel) and the call it makes.

    The rules brain lists its candidates with its call, best first; for an LLM brain the loop
    derives them from its search results (`agent.allocation.candidates_from_search`)."""

    tool: str
    arguments: dict[str, Any]
    label: str = ""


@dataclass
class ModelReply:
    text: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    # The alternatives to the reply's side-effecting call, its own first (empty: none proposed).
    candidates: list[Candidate] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0

    def as_message(self) -> Message:
        message: Message = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [c.as_message_part() for c in self.tool_calls]
        return message


@dataclass(frozen=True)
class Brief:
    """The decision's facts as data: what the rules brain reasons from."""

    decision_id: str
    trigger: str
    goal: str
    user_id: str
    event: dict[str, Any]
    context: dict[str, Any]
    allowed_tools: tuple[str, ...]
    selection: str = "model"  # the trigger's selection mode as this decision runs it


@dataclass
class ModelRequest:
    messages: list[Message]
    tools: list[ToolSpec]
    brief: Brief


class ChatModel(Protocol):
    brain: str
    model: str

    async def complete(self, request: ModelRequest) -> ModelReply: ...

    async def aclose(self) -> None: ...


def parse_arguments(raw: str | dict[str, Any] | None) -> tuple[dict[str, Any], str | None]:
    """A tool call's arguments as a dict, or the reason they are unusable."""
    if isinstance(raw, dict):
        return raw, None
    if raw is None or raw == "":
        return {}, None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        return {}, f"arguments are not valid JSON ({err.msg} at position {err.pos})"
    except RecursionError:
        return {}, "arguments are nested too deeply"
    if not isinstance(value, dict):
        return {}, "arguments must be a JSON object"
    return value, None

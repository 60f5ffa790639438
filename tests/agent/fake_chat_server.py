"""A local HTTP server that answers like Groq's (OpenAI-compatible) chat-completions API.

Tests queue responses (status, JSON body, delay); the server records every request body, so a
test can see what the real `groq` SDK sent. A delayed reply is held until its delay passes or the
server closes, whichever comes first, so a test that has its answer does not wait out the delay.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeChatServer:
    replies: deque[Reply] = field(default_factory=deque)
    # When set, answers every request the queue does not (a stand-in model).
    responder: Callable[[dict[str, Any]], Reply] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    url: str = ""
    closed: threading.Event = field(default_factory=threading.Event)


def completion(
    *, content: str | None = None, tool_calls: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """A chat.completion body; tool_calls are (name, raw JSON arguments) pairs."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": args}}
            for n, (name, args) in enumerate(tool_calls)
        ]
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "llama-3.3-70b-versatile",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
    }


def error(status: int, message: str, code: str, kind: str = "invalid_request_error") -> Reply:
    return Reply(status, {"error": {"message": message, "type": kind, "code": code}})


@contextmanager
def fake_chat_server() -> Iterator[FakeChatServer]:
    state = FakeChatServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            state.requests.append(json.loads(self.rfile.read(length) or b"{}"))
            state.paths.append(self.path)
            state.auth.append(self.headers.get("authorization") or "")
            if state.replies:
                reply = state.replies.popleft()
            elif state.responder is not None:
                reply = state.responder(state.requests[-1])
            else:
                reply = Reply(500, {"error": {"message": "no reply queued"}})
            if reply.delay_s:
                state.closed.wait(reply.delay_s)  # a slow model; released at once when the test ends
            data = json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.closed.set()
        server.shutdown()
        server.server_close()

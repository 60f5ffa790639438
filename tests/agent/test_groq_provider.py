"""The Groq provider through the real `groq` SDK against a local server that speaks its API."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from agent.errors import ModelAuthError, ModelTimeout, ModelUnavailable
from agent.model import Brief, ModelRequest, ToolSpec
from agent.providers.chat_completions import groq_model, openai_model
from mca.settings import Settings
from tests.agent.fake_chat_server import Reply, completion, error, fake_chat_server
from tests.agent.helpers import decide, new_job, tool_steps

TOOLS = [ToolSpec("search_assets", "Find assets.", {"type": "object",
                                                    "properties": {"query": {"type": "string"}},
                                                    "required": ["query"]})]  # fmt: skip
BRIEF = Brief("dec_1", "big_purchase", "post_purchase", "u_ana", {}, {}, ("search_assets",))


def request() -> ModelRequest:
    return ModelRequest([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], TOOLS, BRIEF)


def model_for(url: str, *, timeout: float = 5.0, key: str = "gsk_test", **kw: Any):  # type: ignore[no-untyped-def]
    settings = Settings(groq_api_key=SecretStr(key), groq_base_url=url, model_timeout_s=timeout)
    return groq_model(settings, backoff_s=0.01, **kw)


async def test_429_then_success_with_tool_calls() -> None:
    with fake_chat_server() as server:
        server.replies.append(error(429, "Rate limit reached", "rate_limit_exceeded", "tokens"))
        server.replies.append(
            Reply(200, completion(tool_calls=[("search_assets", '{"query": "tent stakes"}')]))
        )
        model = model_for(server.url)
        reply = await model.complete(request())
        await model.aclose()
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("search_assets", {"query": "tent stakes"})]
    assert reply.tokens_in == 120 and reply.tokens_out == 30
    assert len(server.requests) == 2 and server.paths[0].endswith("/openai/v1/chat/completions")
    sent = server.requests[0]
    assert (
        sent["model"] == "llama-3.3-70b-versatile" and sent["tools"][0]["function"]["name"] == "search_assets"
    )
    assert server.auth[0] == "Bearer gsk_test"


async def test_401_is_a_clear_error_naming_the_key() -> None:
    with fake_chat_server() as server:
        server.replies.append(error(401, "Invalid API Key", "invalid_api_key"))
        model = model_for(server.url, key="gsk_wrong")
        with pytest.raises(ModelAuthError, match="GROQ_API_KEY"):
            await model.complete(request())
        await model.aclose()
    assert len(server.requests) == 1, "a wrong key is not retried"


async def test_timeout_is_retried_then_reported() -> None:
    with fake_chat_server() as server:
        server.replies.extend([Reply(200, completion(content="late"), delay_s=1.5)] * 2)
        model = model_for(server.url, timeout=0.3, attempts=2)
        with pytest.raises(ModelTimeout):
            await model.complete(request())
        await model.aclose()
    assert len(server.requests) == 2


async def test_server_errors_are_retried_until_attempts_run_out() -> None:
    with fake_chat_server() as server:
        server.replies.extend([error(503, "over capacity", "service_unavailable", "server_error")] * 3)
        model = model_for(server.url, attempts=3)
        with pytest.raises(ModelUnavailable):
            await model.complete(request())
        await model.aclose()
    assert len(server.requests) == 3


async def test_tool_use_failed_is_a_fresh_generation() -> None:
    with fake_chat_server() as server:
        server.replies.append(error(400, "Failed to call a function.", "tool_use_failed"))
        server.replies.append(Reply(200, completion(content="Nothing fits.")))
        model = model_for(server.url)
        reply = await model.complete(request())
        await model.aclose()
    assert reply.text == "Nothing fits." and len(server.requests) == 2


async def test_missing_key_is_refused_before_any_call() -> None:
    with pytest.raises(ModelAuthError, match="GROQ_API_KEY"):
        groq_model(Settings(groq_api_key=None))


async def test_malformed_tool_call_json_goes_back_to_the_model_as_an_error(
    agent_settings, agent_stores, frozen, embedder
) -> None:
    with fake_chat_server() as server:
        server.replies.append(
            Reply(200, completion(tool_calls=[("send_coupon", '{"user_id": "u_ana", "asset_')]))
        )
        server.replies.append(Reply(200, completion(content="My tool call was malformed; doing nothing.")))
        model = model_for(server.url)
        decision = await decide(
            agent_settings, agent_stores, model, new_job(), clock=frozen, embedder=embedder
        )
    (step,) = tool_steps(decision)
    assert step["reason_code"] == "invalid_arguments" and step["arguments"]["_raw"].startswith('{"user_id"')
    assert decision["brain"] == "groq" and decision["model"] == "llama-3.3-70b-versatile"
    assert decision["tokens_in"] == 240 and decision["outcome"] == "nothing"
    # The second request carried the tool error back to the model, paired with its call id.
    tool_msgs = [m for m in server.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_msgs[0]["tool_call_id"] == "call_0" and "invalid_arguments" in tool_msgs[0]["content"]


async def test_openai_compatible_endpoint_by_base_url() -> None:
    with fake_chat_server() as server:
        server.replies.append(Reply(200, completion(content="hello")))
        model = openai_model(Settings(openai_base_url=server.url + "/v1", openai_model="llama3.1"))
        reply = await model.complete(request())
        await model.aclose()
    assert reply.text == "hello" and server.paths == ["/v1/chat/completions"]

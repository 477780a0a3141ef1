"""Runtime settings, read once from the environment (prefix ``ALLEGRO_SYNC_``) and ``.env``.

Secrets may also come from files, as systemd's ``LoadCredential=`` hands them over: for a secret
setting ``X`` the value is read from the file named by ``ALLEGRO_SYNC_X_FILE``, or from
``$CREDENTIALS_DIRECTORY/x`` (lower-case name without the prefix), when the plain variable is unset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import (
    AnyUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from allegro_sync.config.user_agent import check_user_agent, default_user_agent

ENV_PREFIX = "ALLEGRO_SYNC_"
SECRET_FIELDS = (
    "client_secret",
    "sandbox_client_secret",
    "secret_key",
    "secret_key_previous",
    "admin_token",
    "smtp_url",
    "panel_password",
)
# Secrets with a default or not always needed: an empty file leaves them unset, so a systemd unit
# may name every credential and an installation leaves the ones it does not use empty.
OPTIONAL_SECRETS = frozenset(
    {"sandbox_client_secret", "secret_key_previous", "smtp_url", "panel_password"}
)


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it in one line."""


class _SecretFilesSource(PydanticBaseSettingsSource):
    """Reads secrets from ``ALLEGRO_SYNC_<NAME>_FILE`` or the systemd credentials directory."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        credentials_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        for name in SECRET_FIELDS:
            env_name = ENV_PREFIX + name.upper()
            if os.environ.get(env_name):
                continue
            file_name = os.environ.get(env_name + "_FILE")
            candidates = [Path(file_name)] if file_name else []
            if credentials_dir:
                candidates.append(Path(credentials_dir) / name)
            for path in candidates:
                if path.is_file():
                    value = path.read_text(encoding="utf-8").strip()
                    if value or name not in OPTIONAL_SECRETS:
                        values[name] = value
                    break
                if file_name and path == Path(file_name):
                    raise SettingsError(f"setting {env_name}_FILE: file {path} does not exist")
        return values


class DatabaseSettings(BaseSettings):
    """The settings that commands touching only PostgreSQL (``migrate``) need."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "postgresql://postgres@localhost:5432/allegro_sync"

    @field_validator("database_url")
    @classmethod
    def _postgres_scheme(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value


class Settings(DatabaseSettings):
    """Every setting of the daemon (design.md section 4)."""

    amqp_url: str = "amqp://guest:guest@localhost:5672/"
    allegro_api_url: AnyUrl = AnyUrl("https://api.allegro.pl")
    allegro_auth_url: AnyUrl = AnyUrl("https://allegro.pl")
    allegro_sandbox_api_url: AnyUrl = AnyUrl("https://api.allegro.pl.allegrosandbox.pl")
    allegro_sandbox_auth_url: AnyUrl = AnyUrl("https://allegro.pl.allegrosandbox.pl")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    sandbox_client_id: str | None = None
    sandbox_client_secret: SecretStr | None = None
    secret_key: SecretStr = Field(description="encrypts tokens at rest; at least 32 characters")
    # The key being rotated away from (``allegro-sync secrets rotate``): still decrypts tokens
    # and verifies journal messages signed under it; nothing new is encrypted with it.
    secret_key_previous: SecretStr | None = None
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    public_url: AnyUrl = AnyUrl("http://127.0.0.1:8080")
    admin_token: SecretStr
    smtp_url: SecretStr = SecretStr("smtp://127.0.0.1:25")
    mail_from: str = "allegro-sync@localhost"
    consumer_prefetch: int = Field(default=600, ge=1, le=5000)
    consumer_batch_size: int = Field(default=200, ge=1, le=5000)
    # Bodies over these are dead-lettered before their JSON is parsed (issue 14, finding 6):
    # ``invoice.added`` carries a PDF of up to Allegro's 3 MB in base64 (about 4.2 MB), every
    # other ERP message is small. RabbitMQ's own limit is 128 MiB.
    max_message_bytes: int = Field(default=256 * 1024, ge=1024, le=128 * 1024 * 1024)
    max_invoice_message_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=128 * 1024 * 1024)
    # The invoice queue's prefetch: bodies of up to MAX_INVOICE_MESSAGE_BYTES each in memory.
    invoice_consumer_prefetch: int = Field(default=4, ge=1, le=100)
    shutdown_timeout: float = Field(default=10.0, gt=0)
    # Offer changes (issue 7): Allegro's limits and the batcher's coalescing window. The
    # client id's requests a minute are shared by every replica on the database (issue 18);
    # the two after it cap this replica alone; the last is each replica's part of every budget
    # while PostgreSQL cannot be reached.
    client_requests_per_minute: int = Field(default=9000, ge=60)
    allegro_requests_per_minute: int = Field(default=9000, ge=60)
    offer_change_budget_share: float = Field(default=1.0, gt=0, le=1)
    limits_fallback_share: float = Field(default=0.2, gt=0, le=1)
    offer_batch_window: float = Field(default=0.25, gt=0, le=0.25)
    offer_batch_max_hold: float = Field(default=30.0, ge=0, le=300)
    # Batch commands on their way at once: sends, and apart from them reads of their reports.
    offer_commands_in_flight: int = Field(default=32, ge=1, le=256)
    renewal_sweep_interval: float = Field(default=300.0, gt=0)
    reconcile_interval: float = Field(default=60.0, gt=0)
    # The order sweep (issue 13): how often, and how old a form change must be before it looks
    # (the journal's time to deliver it first).
    order_sweep_interval: float = Field(default=600.0, gt=0)
    order_sweep_lag: float = Field(default=60.0, ge=0, le=3600)
    # Journal polling (issue 21): the share of the client's requests a minute idle polls may
    # take, and the longest interval between two polls of a quiet account's journal.
    idle_poll_budget_share: float = Field(default=0.2, gt=0, le=1)
    order_poll_ceiling: float = Field(default=75.0, ge=1, le=3600)
    offer_poll_ceiling: float = Field(default=900.0, ge=1, le=43200)
    offer_batcher_halt_after_persist: bool = False  # test only, see example.env
    # Retention (issue 14): how long rows of the tables that only grow are kept, in days (a
    # fraction of a day too), and how one replica prunes them (daemon/retention.py).
    inbox_retention_days: float = Field(default=7.0, gt=0, le=3650)
    event_log_retention_days: float = Field(default=90.0, gt=0, le=3650)
    mail_outbox_retention_days: float = Field(default=30.0, gt=0, le=3650)
    offer_command_retention_days: float = Field(default=7.0, gt=0, le=3650)
    retention_interval: float = Field(default=300.0, gt=0)
    retention_batch_size: int = Field(default=5000, ge=1, le=100_000)
    # Delivery status (issue 16): seconds between two reads of a tracking number's carrier
    # tracking, days after which one never delivered is given up, the share of the client's
    # requests a minute the reads may take, and how often due tracking numbers are looked for.
    tracking_interval: float = Field(default=7200.0, ge=1, le=86400)
    tracking_give_up_days: float = Field(default=30.0, gt=0, le=365)
    tracking_budget_share: float = Field(default=0.05, gt=0, le=1)
    tracking_tick: float = Field(default=60.0, gt=0, le=3600)
    # Bounded shipping retries: a parcel's step (create, cancel) is given up after this many
    # failures a retry might cure, or this many seconds (shipment.failed); the SENT status
    # step of a tracking number after this many attempts or seconds (an event-log entry).
    parcel_max_failures: int = Field(default=12, ge=1, le=1000)
    parcel_give_up_after: float = Field(default=6 * 3600.0, gt=0, le=30 * 86400)
    sent_step_max_attempts: int = Field(default=20, ge=1, le=1000)
    sent_step_give_up_after: float = Field(default=3600.0, gt=0, le=30 * 86400)
    # Sent on every REST call; Allegro requires ``AppName/version (+url)`` (user_agent.py).
    user_agent: str = Field(default_factory=default_user_agent)
    # The seller's panel (issue 15): its sign-in secret (the admin token when unset) and how
    # long a signed-in session lasts.
    panel_password: SecretStr | None = None
    panel_session_hours: float = Field(default=8.0, gt=0, le=24 * 30)
    # The HTTP side (admin API and panel) on a pool of its own, so that slow clients cannot take
    # the consumers' connections (issue 14): its size, PostgreSQL's timeouts on its connections
    # (seconds), and the customer exports it runs at once (each holds one connection).
    http_db_pool_size: int = Field(default=4, ge=2, le=100)
    http_statement_timeout: float = Field(default=30.0, gt=0, le=3600)
    http_idle_in_transaction_timeout: float = Field(default=60.0, gt=0, le=3600)
    export_max_concurrent: int = Field(default=2, ge=1, le=50)
    export_statement_timeout: float = Field(default=600.0, gt=0, le=24 * 3600)

    @field_validator("amqp_url")
    @classmethod
    def _amqp_scheme(cls, value: str) -> str:
        # several nodes of one cluster: URLs separated by commas, tried in turn
        urls = [part.strip() for part in value.split(",") if part.strip()]
        if not urls or not all(url.startswith(("amqp://", "amqps://")) for url in urls):
            raise ValueError("must be an amqp:// or amqps:// URL, or several separated by commas")
        return value

    @field_validator("user_agent")
    @classmethod
    def _user_agent_form(cls, value: str) -> str:
        return check_user_agent(value)

    @field_validator("secret_key_previous", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("secret_key", "secret_key_previous", "admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        secret = value.get_secret_value()
        if not secret.strip():
            raise ValueError("must not be empty or only whitespace")
        if len(secret.strip()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @model_validator(mode="after")
    def _exports_leave_connections(self) -> Settings:
        if self.export_max_concurrent >= self.http_db_pool_size:
            raise ValueError(
                "EXPORT_MAX_CONCURRENT must be below HTTP_DB_POOL_SIZE (exports would take"
                " every connection of the HTTP side)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _SecretFilesSource(settings_cls), dotenv_settings)

    def secret_keys(self) -> list[str]:
        """The current key first, then the previous one while it is being rotated away."""
        keys = [self.secret_key.get_secret_value()]
        if self.secret_key_previous is not None:
            keys.append(self.secret_key_previous.get_secret_value())
        return keys

    def panel_secret(self) -> str:
        """What the panel's sign-in form takes: ``PANEL_PASSWORD``, else the admin token."""
        chosen = self.panel_password or self.admin_token
        return chosen.get_secret_value()

    def api_url(self, sandbox: bool) -> str:
        """Base URL of the REST API for a production or a sandbox account."""
        url = self.allegro_sandbox_api_url if sandbox else self.allegro_api_url
        return str(url).rstrip("/")

    def auth_url(self, sandbox: bool) -> str:
        """Base URL of the OAuth host (``/auth/oauth/...`` lives under it)."""
        url = self.allegro_sandbox_auth_url if sandbox else self.allegro_auth_url
        return str(url).rstrip("/")

    def client_credentials(self, sandbox: bool) -> tuple[str, str]:
        """The client id and secret for the environment; sandbox ones must be configured."""
        if not sandbox:
            return self.client_id, self.client_secret.get_secret_value()
        if not self.sandbox_client_id or self.sandbox_client_secret is None:
            raise SettingsError(
                "setting ALLEGRO_SYNC_SANDBOX_CLIENT_ID: required to connect sandbox accounts"
            )
        return self.sandbox_client_id, self.sandbox_client_secret.get_secret_value()


S = TypeVar("S", bound=DatabaseSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build ``cls`` or raise SettingsError naming the first bad setting in one line."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ENV_PREFIX + str(error["loc"][0]).upper() if error["loc"] else ENV_PREFIX
        if not error["loc"]:  # a rule across settings: its message names them
            raise SettingsError(str(error["msg"]).removeprefix("Value error, ")) from None
        if error["type"] == "missing":
            raise SettingsError(f"setting {name} is required but not set") from None
        raise SettingsError(f"setting {name} is invalid: {error['msg']}") from None

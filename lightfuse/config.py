"""One settings tree, read from Langfuse's environment variable names where they exist.

Built once in ``cli.main`` (or a test) and passed down; nothing reads the environment after that.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lightfuse.store.private_files import make_private_dirs, make_private_file, narrow_to_owner

if TYPE_CHECKING:
    from lightfuse.services.common.outbound import OutboundPolicy

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class ConfigError(ValueError):
    """A setting is present but unusable; the process must not start."""


class InitSettings(BaseSettings):
    """LANGFUSE_INIT_*: headless provisioning, applied idempotently on every start."""

    model_config = SettingsConfigDict(env_prefix="LANGFUSE_INIT_", extra="ignore")

    org_id: str | None = None
    org_name: str = "Provisioned Org"
    project_id: str | None = None
    project_name: str = "Provisioned Project"
    project_retention: int | None = None
    project_public_key: str | None = None
    project_secret_key: str | None = None
    user_email: str | None = None
    user_name: str | None = None
    user_password: str | None = None


class MediaStorageSettings(BaseSettings):
    """LANGFUSE_S3_MEDIA_*: where media bytes live.

    With a bucket, media goes to S3 (or an S3-compatible service) and SDKs PUT/GET the bytes there through
    presigned URLs, so the endpoint must be reachable by them (and by browsers showing the media). Without one,
    the bytes stay in ``<data_dir>/media`` and Lightfuse serves its own signed URLs. No access key means the
    default AWS credential chain (environment, profile, instance role), as in Langfuse.
    """

    # env_ignore_empty: deployment templates often pass `LANGFUSE_S3_MEDIA_UPLOAD_BUCKET=` for "unset"
    model_config = SettingsConfigDict(
        env_prefix="LANGFUSE_S3_MEDIA_UPLOAD_", env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    bucket: str | None = None
    prefix: str = ""
    region: str | None = None
    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None  # SecretStr: never shown by repr() or a logged settings dump
    force_path_style: bool = False
    # these two are not in the UPLOAD_ family in Langfuse either; they apply to the local store as well
    max_content_length: int = Field(
        1_000_000_000, gt=0, validation_alias=AliasChoices("LANGFUSE_S3_MEDIA_MAX_CONTENT_LENGTH")
    )
    # SigV4 presigned URLs live at most 7 days
    download_url_expiry_seconds: int = Field(
        3600, gt=0, le=604_800, validation_alias=AliasChoices("LANGFUSE_S3_MEDIA_DOWNLOAD_URL_EXPIRY_SECONDS")
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    port: int = Field(3000, validation_alias=AliasChoices("PORT"))
    hostname: str = Field("0.0.0.0", validation_alias=AliasChoices("HOSTNAME"))
    data_dir: Path = Field(Path("./lightfuse-data"), validation_alias=AliasChoices("LIGHTFUSE_DATA_DIR"))
    database_url: str | None = Field(None, validation_alias=AliasChoices("DATABASE_URL"))
    salt: str | None = Field(None, validation_alias=AliasChoices("SALT"))
    encryption_key: str | None = Field(None, validation_alias=AliasChoices("ENCRYPTION_KEY"))
    nextauth_secret: str | None = Field(None, validation_alias=AliasChoices("NEXTAUTH_SECRET"))
    nextauth_url: str = Field("http://localhost:3000", validation_alias=AliasChoices("NEXTAUTH_URL"))
    auth_disable_signup: bool = Field(False, validation_alias=AliasChoices("AUTH_DISABLE_SIGNUP"))
    # minutes, as in Langfuse (default 30 days)
    auth_session_max_age: int = Field(43200, validation_alias=AliasChoices("AUTH_SESSION_MAX_AGE"))
    # Sign-in throttle (security issue #13): after this many failed password checks per account (normalised
    # email) or per client address, the key is locked for LOCKOUT seconds, doubling with each further failure
    # up to LOCKOUT_MAX; answered with 429 + Retry-After.
    auth_max_failures_per_account: int = Field(
        5, ge=1, validation_alias=AliasChoices("LIGHTFUSE_AUTH_MAX_FAILURES_PER_ACCOUNT")
    )
    auth_max_failures_per_address: int = Field(
        20, ge=1, validation_alias=AliasChoices("LIGHTFUSE_AUTH_MAX_FAILURES_PER_ADDRESS")
    )
    auth_lockout_seconds: float = Field(
        30, gt=0, validation_alias=AliasChoices("LIGHTFUSE_AUTH_LOCKOUT_SECONDS")
    )
    auth_lockout_max_seconds: float = Field(
        900, gt=0, validation_alias=AliasChoices("LIGHTFUSE_AUTH_LOCKOUT_MAX_SECONDS")
    )
    # argon2 (64 MiB each) runs in a pool of its own: this many at once, this many more waiting; beyond, 503
    auth_hash_threads: int = Field(
        2, ge=1, le=64, validation_alias=AliasChoices("LIGHTFUSE_AUTH_HASH_THREADS")
    )
    auth_hash_queue: int = Field(8, ge=0, le=1000, validation_alias=AliasChoices("LIGHTFUSE_AUTH_HASH_QUEUE"))
    log_level: str = Field("info", validation_alias=AliasChoices("LANGFUSE_LOG_LEVEL"))
    log_format: Literal["json", "text"] = Field("text", validation_alias=AliasChoices("LANGFUSE_LOG_FORMAT"))
    # Ingestion intake: how many events may wait for the writer before new requests get 503 + Retry-After.
    ingest_queue_max_events: int = Field(
        200_000, validation_alias=AliasChoices("LIGHTFUSE_INGEST_QUEUE_MAX_EVENTS")
    )
    # "normal" survives a killed process (the WAL holds every commit); "full" also survives power loss.
    sqlite_synchronous: Literal["normal", "full"] = Field(
        "normal", validation_alias=AliasChoices("LIGHTFUSE_SQLITE_SYNCHRONOUS")
    )
    # Deleted projects: how long their data is kept (seconds after the deletion) and how often the purge runs.
    project_purge_grace_seconds: float = Field(
        0, ge=0, validation_alias=AliasChoices("LIGHTFUSE_PROJECT_PURGE_GRACE_SECONDS")
    )
    project_purge_interval_seconds: float = Field(
        60, gt=0, validation_alias=AliasChoices("LIGHTFUSE_PROJECT_PURGE_INTERVAL_SECONDS")
    )
    # OTLP exports are decoded in this many helper processes (started on the first large export), so that the
    # server's GIL is left to HTTP and the writer; 0 decodes in the server process. Default: 1 where the process
    # may use a second CPU (a container's CPU limit counts: under `limits.cpu: 1` a helper would only add its
    # ~25 MiB and take turns with the server for the one CPU).
    otlp_decode_processes: int = Field(
        default_factory=lambda: 1 if usable_cpus() >= 2 else 0,
        ge=0,
        le=64,
        validation_alias=AliasChoices("LIGHTFUSE_OTLP_DECODE_PROCESSES"),
    )
    # Self-served media download URLs point here (e.g. https://media.example.net, an origin other than the app's,
    # routed to this server) so user content never shares the app's origin; unset: the app's own base URL.
    media_download_base_url: str | None = Field(
        None, validation_alias=AliasChoices("LIGHTFUSE_MEDIA_DOWNLOAD_BASE_URL")
    )
    # Outgoing email (invitations, password reset), Langfuse's names: smtp://user:pass@host:port or smtps://...;
    # without both, nothing is sent and the UI shows invitation links to copy
    smtp_connection_url: SecretStr | None = Field(None, validation_alias=AliasChoices("SMTP_CONNECTION_URL"))
    email_from_address: str | None = Field(None, validation_alias=AliasChoices("EMAIL_FROM_ADDRESS"))
    # --- single sign-on (issue #16; Langfuse's variable names, features.md 2.2) ---
    auth_disable_username_password: bool = Field(
        False, validation_alias=AliasChoices("AUTH_DISABLE_USERNAME_PASSWORD")
    )
    auth_domains_with_sso_enforcement: str | None = Field(
        None, validation_alias=AliasChoices("AUTH_DOMAINS_WITH_SSO_ENFORCEMENT")
    )
    # milliseconds, as in Langfuse; applies to every call to an identity provider
    auth_sso_timeout: int | None = Field(None, gt=0, validation_alias=AliasChoices("AUTH_SSO_TIMEOUT"))
    sso_whitelisted_hosts: str | None = Field(
        None, validation_alias=AliasChoices("LANGFUSE_SSO_DISCOVERY_WHITELISTED_HOST")
    )
    sso_whitelisted_ips: str | None = Field(
        None, validation_alias=AliasChoices("LANGFUSE_SSO_DISCOVERY_WHITELISTED_IPS")
    )
    sso_whitelisted_ip_segments: str | None = Field(
        None, validation_alias=AliasChoices("LANGFUSE_SSO_DISCOVERY_WHITELISTED_IP_SEGMENTS")
    )
    # LLM connections (services/llm): base URLs toward non-public addresses need these allow-lists
    llm_whitelisted_hosts: str | None = Field(
        None, validation_alias=AliasChoices("LANGFUSE_LLM_CONNECTION_WHITELISTED_HOST")
    )
    llm_whitelisted_ips: str | None = Field(
        None, validation_alias=AliasChoices("LANGFUSE_LLM_CONNECTION_WHITELISTED_IPS")
    )
    llm_whitelisted_ip_segments: str | None = Field(
        None, validation_alias=AliasChoices("LANGFUSE_LLM_CONNECTION_WHITELISTED_IP_SEGMENTS")
    )
    # milliseconds: the whole of one LLM call (playground, connection test)
    llm_completion_timeout_ms: int = Field(
        120_000, gt=0, validation_alias=AliasChoices("LANGFUSE_FETCH_LLM_COMPLETION_TIMEOUT_MS")
    )
    default_org_id: str | None = Field(None, validation_alias=AliasChoices("LANGFUSE_DEFAULT_ORG_ID"))
    default_org_role: str | None = Field(None, validation_alias=AliasChoices("LANGFUSE_DEFAULT_ORG_ROLE"))
    default_project_id: str | None = Field(None, validation_alias=AliasChoices("LANGFUSE_DEFAULT_PROJECT_ID"))
    default_project_role: str | None = Field(
        None, validation_alias=AliasChoices("LANGFUSE_DEFAULT_PROJECT_ROLE")
    )
    # --- webhook automations (issue #18; Langfuse's variable names, features.md 2.x) ---
    webhook_whitelisted_hosts: str | None = Field(
        None, validation_alias=AliasChoices("LANGFUSE_WEBHOOK_WHITELISTED_HOST")
    )
    webhook_whitelisted_ips: str | None = Field(
        None, validation_alias=AliasChoices("LANGFUSE_WEBHOOK_WHITELISTED_IPS")
    )
    webhook_whitelisted_ip_segments: str | None = Field(
        None, validation_alias=AliasChoices("LANGFUSE_WEBHOOK_WHITELISTED_IP_SEGMENTS")
    )
    webhook_timeout_ms: int = Field(10000, gt=0, validation_alias=AliasChoices("LANGFUSE_WEBHOOK_TIMEOUT_MS"))
    # Lightfuse's own: attempts per delivery, the first retry's delay (doubling), how often the outbox is polled
    webhook_max_attempts: int = Field(
        8, ge=1, le=50, validation_alias=AliasChoices("LIGHTFUSE_WEBHOOK_MAX_ATTEMPTS")
    )
    webhook_retry_base_seconds: float = Field(
        10, gt=0, validation_alias=AliasChoices("LIGHTFUSE_WEBHOOK_RETRY_BASE_SECONDS")
    )
    webhook_poll_seconds: float = Field(
        2, gt=0, validation_alias=AliasChoices("LIGHTFUSE_WEBHOOK_POLL_SECONDS")
    )
    # Lightfuse's own: the identity provider's groups/roles claim mapped to roles at every SSO sign-in
    sso_role_claim: str = Field("groups", validation_alias=AliasChoices("LIGHTFUSE_SSO_ROLE_CLAIM"))
    sso_role_mapping: str | None = Field(None, validation_alias=AliasChoices("LIGHTFUSE_SSO_ROLE_MAPPING"))
    # The per-provider variables (AUTH_<PROVIDER>_*, LANGFUSE_CUSTOM_SSO_*_CLAIM) have names built from the
    # provider, so they are taken as a group; services/accounts/sso_config.py reads them.
    sso_env: dict[str, str] = Field(
        default_factory=lambda: {
            k: v for k, v in os.environ.items() if k.startswith(("AUTH_", "LANGFUSE_CUSTOM_SSO_"))
        },
        validation_alias=AliasChoices("LIGHTFUSE_SSO_ENV_SNAPSHOT"),
        repr=False,
    )
    # Request bodies the ingestion routes may hold at once (read, decoding, waiting for the writer); beyond,
    # 503 + Retry-After before the body is read. Bounds memory where the event count does not (bench/README.md).
    ingest_queue_max_bytes: int = Field(
        2 * 1024 * 1024, gt=0, validation_alias=AliasChoices("LIGHTFUSE_INGEST_QUEUE_MAX_BYTES")
    )
    # SQLite's memory (page caches of every connection together, soft limit); 0 = no limit, each connection
    # then caches up to 64 MiB.
    sqlite_memory_limit_mib: int = Field(
        16, ge=0, validation_alias=AliasChoices("LIGHTFUSE_SQLITE_MEMORY_LIMIT_MIB")
    )
    # Prometheus /metrics: on a port of its own when set (then 404 on the app's port), behind a bearer token
    # when one is set.
    metrics_port: int | None = Field(
        None, ge=1, le=65535, validation_alias=AliasChoices("LIGHTFUSE_METRICS_PORT")
    )
    metrics_token: SecretStr | None = Field(None, validation_alias=AliasChoices("LIGHTFUSE_METRICS_TOKEN"))
    # OTLP over gRPC (TraceService/Export; the Collector's default port is 4317) on this port, next to HTTP;
    # unset: no gRPC listener, and grpcio (the [grpc] extra) is never imported.
    otlp_grpc_port: int | None = Field(
        None, ge=1, le=65535, validation_alias=AliasChoices("LIGHTFUSE_OTLP_GRPC_PORT")
    )
    # the instance admin API (/api/admin/organizations): Bearer this key; unset, the API refuses every call
    admin_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("ADMIN_API_KEY"))
    # After SIGTERM: /api/public/ready answers 503 at once, requests are still served this many seconds (for
    # load balancers to take the instance out), then the graceful shutdown starts.
    shutdown_delay_seconds: float = Field(
        5, ge=0, le=300, validation_alias=AliasChoices("LIGHTFUSE_SHUTDOWN_DELAY_SECONDS")
    )
    # How long the graceful shutdown waits for requests in flight before it cancels them.
    shutdown_timeout_seconds: float = Field(
        10, gt=0, le=600, validation_alias=AliasChoices("LIGHTFUSE_SHUTDOWN_TIMEOUT_SECONDS")
    )
    # Self-tracing with OpenTelemetry (Langfuse's names); nothing of OpenTelemetry's SDK is loaded when unset.
    otel_exporter_otlp_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    otel_service_name: str = Field("lightfuse", validation_alias=AliasChoices("OTEL_SERVICE_NAME"))
    otel_trace_sampling_ratio: float = Field(
        1.0, ge=0, le=1, validation_alias=AliasChoices("OTEL_TRACE_SAMPLING_RATIO")
    )
    init: InitSettings = Field(default_factory=InitSettings)
    media: MediaStorageSettings = Field(default_factory=MediaStorageSettings)

    @field_validator("log_level")
    @classmethod
    def _lower_level(cls, value: str) -> str:
        return value.lower()

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def embedded(self) -> bool:
        return not self.database_url

    @property
    def sqlalchemy_url(self) -> str:
        """The URL SQLAlchemy needs: Langfuse's postgresql:// means psycopg 3 here."""
        if self.embedded:
            return f"sqlite:///{(self.data_dir / 'lightfuse.db').resolve()}"
        url = self.database_url or ""
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


def usable_cpus(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> float:
    """The CPUs this process may use: the machine's, capped by a cgroup v2 CPU quota when one is set."""
    cpus = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, int(quota) / int(period))
    except (OSError, ValueError):
        pass
    return cpus


def _secret_file(data_dir: Path, name: str, make) -> str:
    """Read a generated secret from the data dir, creating it (0600) on first start."""
    path = data_dir / name
    if path.exists():
        narrow_to_owner(path)  # files written by older versions may be 0644
        return path.read_text().strip()
    value = make()
    make_private_file(path)
    path.write_text(value + "\n")
    return value


def load_settings(**overrides) -> Settings:
    """Read the environment, validate, and fill generated secrets in embedded mode."""
    settings = Settings(**overrides)
    if settings.encryption_key is not None and not _HEX64.match(settings.encryption_key):
        raise ConfigError(
            "ENCRYPTION_KEY must be 64 hexadecimal characters (256 bits); generate one with "
            "`openssl rand -hex 32`"
        )
    smtp_url = settings.smtp_connection_url.get_secret_value().strip() if settings.smtp_connection_url else ""
    if smtp_url and not smtp_url.lower().startswith(("smtp://", "smtps://")):
        raise ConfigError("SMTP_CONNECTION_URL must start with smtp:// or smtps:// (ses:// is not supported)")
    if settings.embedded:
        make_private_dirs(settings.data_dir)
        narrow_to_owner(settings.data_dir)
        if not settings.salt:
            settings.salt = _secret_file(settings.data_dir, "salt", lambda: secrets.token_hex(32))
        if not settings.encryption_key:
            settings.encryption_key = _secret_file(
                settings.data_dir, "encryption_key", lambda: secrets.token_hex(32)
            )
        if not settings.nextauth_secret:
            settings.nextauth_secret = _secret_file(
                settings.data_dir, "nextauth_secret", lambda: secrets.token_hex(32)
            )
    else:
        missing = [n for n, v in (("SALT", settings.salt),) if not v]
        if missing:
            raise ConfigError(f"{', '.join(missing)} must be set when DATABASE_URL is used")
        if not settings.nextauth_secret:
            raise ConfigError("NEXTAUTH_SECRET must be set when DATABASE_URL is used")
    if settings.otlp_grpc_port and importlib.util.find_spec("grpc") is None:
        raise ConfigError(
            "LIGHTFUSE_OTLP_GRPC_PORT needs the grpc extra: pip install 'lightfuse[grpc]' (the image has it)"
        )
    _check_sso(settings)
    return settings


def _check_sso(settings: Settings) -> None:
    """Parse the SSO variables once at start, so a half-configured provider stops the process with the reason."""
    from lightfuse.services.accounts import sso_config  # late: services import this module
    from lightfuse.services.common.outbound import OutboundPolicy

    try:
        sso_config.load_providers(settings.sso_env)
        sso_config.parse_defaults(
            settings.default_org_id,
            settings.default_org_role,
            settings.default_project_id,
            settings.default_project_role,
        )
        sso_config.parse_role_mapping(settings.sso_role_mapping, sso_config.csv(settings.default_org_id))
        OutboundPolicy(
            settings.sso_whitelisted_hosts, settings.sso_whitelisted_ips, settings.sso_whitelisted_ip_segments
        )
        OutboundPolicy(
            settings.llm_whitelisted_hosts,
            settings.llm_whitelisted_ips,
            settings.llm_whitelisted_ip_segments,
            env_prefix="LANGFUSE_LLM_CONNECTION_WHITELISTED",
        )
        webhook_policy(settings)
    except (sso_config.SsoConfigError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def webhook_policy(settings: Settings) -> OutboundPolicy:
    """The outbound policy of webhook automations (its allow-list variables are checked at start)."""
    from lightfuse.services.common.outbound import OutboundPolicy  # late: services import this module

    return OutboundPolicy(
        settings.webhook_whitelisted_hosts,
        settings.webhook_whitelisted_ips,
        settings.webhook_whitelisted_ip_segments,
        settings.webhook_timeout_ms,
        env_prefix="LANGFUSE_WEBHOOK_WHITELISTED",
    )

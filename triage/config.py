"""Settings (env vars and `.env`) and the TOML config file (queues, SLAs, people). Nothing else."""

from __future__ import annotations

import logging
import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from triage.core import sla_policy
from triage.core.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_TARGETS = {
    "opportunity": "48h",
    "follow_up": "48h",
    "security_assessment": "48h",
    "event": "5d",
    "expedite": "24h",
}
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_SLACK_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_SLACK_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
_DURATION = re.compile(r"^\s*(\d+\s*[dhm]\s*)+$")


class Settings(BaseSettings):
    """Process settings from the environment (and `.env`). Built by create_app(), never at import."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///./triage.db", alias="DATABASE_URL")
    triage_config: Path = Field(Path("./triage.toml"), alias="TRIAGE_CONFIG")
    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    gitlab_url: str = Field("https://gitlab.com", alias="GITLAB_URL")
    gitlab_token: SecretStr | None = Field(None, alias="GITLAB_TOKEN")
    gitlab_webhook_secret: SecretStr | None = Field(None, alias="GITLAB_WEBHOOK_SECRET")
    embedded_worker: bool = Field(True, alias="TRIAGE_EMBEDDED_WORKER")
    api_token: SecretStr | None = Field(None, alias="TRIAGE_API_TOKEN")
    session_secret: SecretStr | None = Field(None, alias="TRIAGE_SESSION_SECRET")
    # Sign in with Slack (the dashboard): the Slack app's OAuth client; the authorize page's address is
    # configurable so staging and tests can point it at another server.
    slack_client_id: str | None = Field(None, alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(None, alias="SLACK_CLIENT_SECRET")
    slack_authorize_url: str = Field("https://slack.com/openid/connect/authorize", alias="SLACK_AUTHORIZE_URL")
    port: int = Field(8000, alias="PORT")
    # How long an outbox entry a worker took stays its own: a worker killed mid-delivery frees its entries
    # for the others after this. Longer than any one delivery (each call times out after 10 s).
    outbox_lease_seconds: float = Field(15.0, alias="TRIAGE_OUTBOX_LEASE_SECONDS", gt=0)
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    log_format: str = Field("text", alias="LOG_FORMAT")  # "json": one JSON object per line
    salesforce_client_id: str | None = Field(None, alias="SALESFORCE_CLIENT_ID")
    salesforce_client_secret: SecretStr | None = Field(None, alias="SALESFORCE_CLIENT_SECRET")
    salesforce_login_url: str = Field("https://login.salesforce.com", alias="SALESFORCE_LOGIN_URL")
    # A CA bundle to trust for Salesforce, for a TLS-inspecting proxy or a test server; unset = the system's.
    salesforce_ca_bundle: Path | None = Field(None, alias="SALESFORCE_CA_BUNDLE")

    @field_validator("database_url")
    @classmethod
    def _normalise_db_url(cls, v: str) -> str:
        # PaaS (Heroku, Render) hand out postgres:// URLs; SQLAlchemy 2 wants a dialect+driver name.
        for prefix in ("postgres://", "postgresql://"):
            if v.startswith(prefix):
                return "postgresql+psycopg://" + v[len(prefix) :]
        return v

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"

    @property
    def slack_configured(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret)

    @property
    def gitlab_configured(self) -> bool:
        return bool(self.gitlab_token)

    @property
    def salesforce_configured(self) -> bool:
        return bool(self.salesforce_client_id and self.salesforce_client_secret)

    @field_validator("salesforce_login_url")
    @classmethod
    def _login_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"SALESFORCE_LOGIN_URL '{v}' is not a URL like https://login.salesforce.com")
        return v.rstrip("/")

    @cached_property
    def config(self) -> Config:
        return load_config(self.triage_config)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_duration(v: str) -> str:
    if not _DURATION.match(v):
        raise ValueError(f"'{v}' is not a duration like \"24h\", \"5d\" or \"90m\"")
    return v


class SlackConfig(_Strict):
    leaders: tuple[str, ...] = ()
    leaders_channel: str | None = None

    @field_validator("leaders")
    @classmethod
    def _user_ids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for u in v:
            if not _SLACK_USER.match(u):
                raise ValueError(f"'{u}' is not a Slack user id (like U0123ABCD)")
        return v

    @field_validator("leaders_channel")
    @classmethod
    def _channel(cls, v: str | None) -> str | None:
        if v is not None and not _SLACK_CHANNEL.match(v):
            raise ValueError(f"'{v}' is not a Slack channel id (like C0123ABCD)")
        return v


class SlaTargets(_Strict):
    opportunity: str = DEFAULT_TARGETS["opportunity"]
    follow_up: str = DEFAULT_TARGETS["follow_up"]
    security_assessment: str = DEFAULT_TARGETS["security_assessment"]
    event: str = DEFAULT_TARGETS["event"]
    expedite: str = DEFAULT_TARGETS["expedite"]

    _v = field_validator("*")(classmethod(lambda cls, v: _check_duration(v)))


class SlaConfig(_Strict):
    clock: Literal["calendar", "weekdays", "business_hours"] = "weekdays"
    business_hours: str = "09:00-17:00"
    reminders: tuple[float, ...] = (0.5, 0.75)
    event_lead: str = sla_policy.DEFAULT_EVENT_LEAD
    targets: SlaTargets = SlaTargets()

    _lead = field_validator("event_lead")(classmethod(lambda cls, v: _check_duration(v)))

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        m = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", v.strip())
        if not m or not (int(m[1]) * 60 + int(m[2]) < int(m[3]) * 60 + int(m[4]) <= 24 * 60):
            raise ValueError(f"'{v}' is not a range like \"09:00-17:00\"")
        return v.strip()

    @field_validator("reminders")
    @classmethod
    def _fractions(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < f < 1 for f in v):
            raise ValueError("each reminder is a fraction of the SLA between 0 and 1, like 0.5")
        return tuple(sorted(set(v)))


class QueueSla(_Strict):
    opportunity: str | None = None
    follow_up: str | None = None
    security_assessment: str | None = None
    event: str | None = None
    expedite: str | None = None

    _v = field_validator("*")(classmethod(lambda cls, v: v if v is None else _check_duration(v)))


class Queue(_Strict):
    key: str
    name: str
    gitlab_project: str
    slack_channel: str
    timezone: str = "UTC"
    holidays: str | None = None
    sa_usergroup: str | None = None
    sa_users: tuple[str, ...] = ()
    engagement: Literal["triage_board", "enterprise"] = "triage_board"
    sla: QueueSla = QueueSla()

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", v):
            raise ValueError(f"'{v}' must be lower-case letters, digits, '-' or '_' (it is a Slack option value)")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{v}' (use an IANA name like America/New_York)") from None
        return v

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, v: str | None) -> str | None:
        """A country code, optionally with a subdivision: "US", "GB-ENG" (England's bank holidays)."""
        if v is None:
            return v
        country, _, subdiv = v.strip().upper().partition("-")
        supported = holidays.list_supported_countries()
        if country not in supported:
            raise ValueError(f"'{v}' is not a country code the holidays calendar knows (like US, GB, DE)")
        if subdiv and subdiv not in supported[country]:
            raise ValueError(f"'{subdiv}' is not a subdivision of {country} the holidays calendar knows "
                             f"(known: {', '.join(supported[country][:12])}...)")
        return f"{country}-{subdiv}" if subdiv else country

    @property
    def holidays_country(self) -> str | None:
        return self.holidays.partition("-")[0] if self.holidays else None

    @property
    def holidays_subdiv(self) -> str | None:
        return self.holidays.partition("-")[2] or None if self.holidays else None

    @field_validator("slack_channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        if not _SLACK_CHANNEL.match(v):
            raise ValueError(f"'{v}' is not a Slack channel id (like C0123ABCD)")
        return v

    @field_validator("sa_usergroup")
    @classmethod
    def _group(cls, v: str | None) -> str | None:
        if v is not None and not _SLACK_GROUP.match(v):
            raise ValueError(f"'{v}' is not a Slack user group id (like S0123ABCD)")
        return v

    @field_validator("sa_users")
    @classmethod
    def _users(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return SlackConfig._user_ids(v)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_SF_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class SalesforceFields(_Strict):
    """API names of the opportunity's Command Plan fields (every org names its custom fields its own way).

    Each key is the request field it prefills and is written back to; unset = not read, not written.
    """

    why_now: str | None = None
    pain: str | None = None
    champion: str | None = None
    command_plan_url: str | None = None  # the Command Plan / Technical Close Plan link
    primary_sa: str | None = None  # a lookup(User) field; the SA who claims or is assigned is written here

    @field_validator("*")
    @classmethod
    def _api_name(cls, v: str | None) -> str | None:
        if v is not None and not _SF_API_NAME.match(v):
            raise ValueError(f"'{v}' is not a Salesforce field API name (like Why_Now__c)")
        return v

    def prefill(self) -> dict[str, str]:
        """Request field -> API name, for the fields that prefill the modal and are written back."""
        return {k: v for k, v in (("why_now", self.why_now), ("pain", self.pain), ("champion", self.champion),
                                  ("command_plan_url", self.command_plan_url)) if v}


class SalesforceConfig(_Strict):
    url: str | None = None  # opportunities are linked as <url>/lightning/r/Opportunity/<id>/view
    stages: tuple[str, ...] = ()  # the org's open StageName values, in order
    min_stage: str | None = None  # SA requests start at this stage (one of `stages`)
    lookup_seconds: float = 1.5  # hard budget of a lookup made while Slack waits (its limit is 3 s)
    fields: SalesforceFields = SalesforceFields()

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip().rstrip("/")
        if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:\d+)?", v):
            raise ValueError(f"'{v}' is not an https URL like https://yourorg.lightning.force.com")
        return v

    @field_validator("lookup_seconds")
    @classmethod
    def _budget(cls, v: float) -> float:
        if not 0 < v <= 2.5:
            raise ValueError("must be more than 0 and at most 2.5 seconds (Slack waits 3 s for the answer)")
        return v

    @model_validator(mode="after")
    def _min_stage_known(self) -> SalesforceConfig:
        if self.min_stage is not None and self.min_stage not in self.stages:
            raise ValueError(f"min_stage '{self.min_stage}' is not one of stages {list(self.stages)}")
        return self

    def opportunity_url(self, opportunity_id: str | None) -> str | None:
        if not self.url or not opportunity_id:
            return None
        return f"{self.url}/lightning/r/Opportunity/{opportunity_id}/view"



_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class DigestConfig(_Strict):
    """When the weekly digest goes to leaders_channel (only when the file has a [digest] table); its time
    zone also frames the dates of every summary (a period's days are days in this zone)."""

    enabled: bool = True
    day: str = "monday"
    hour: int = 9
    timezone: str = "UTC"

    @field_validator("day")
    @classmethod
    def _day(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in _WEEKDAYS:
            raise ValueError(f"'{v}' is not a day of the week (use one of {', '.join(_WEEKDAYS)})")
        return v

    @field_validator("hour")
    @classmethod
    def _hour(cls, v: int) -> int:
        if not 0 <= v <= 23:
            raise ValueError(f"{v} is not an hour of the day (0 to 23)")
        return v

    _tz = field_validator("timezone")(classmethod(lambda cls, v: Queue._tz(v)))

    @property
    def weekday(self) -> int:
        return _WEEKDAYS.index(self.day)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Config(_Strict):
    slack: SlackConfig = SlackConfig()
    sla: SlaConfig = SlaConfig()
    digest: DigestConfig = DigestConfig()
    queues: tuple[Queue, ...] = ()
    salesforce: SalesforceConfig = SalesforceConfig()

    @model_validator(mode="before")
    @classmethod
    def _digest_when_configured(cls, data: object) -> object:
        # The weekly digest is sent only when the file has a [digest] table.
        if isinstance(data, dict) and "digest" not in data:
            return {**data, "digest": {"enabled": False}}
        return data

    @model_validator(mode="after")
    def _unique_keys(self) -> Config:
        seen: set[str] = set()
        for q in self.queues:
            if q.key in seen:
                raise ValueError(f"queue key '{q.key}' is used twice")
            seen.add(q.key)
        return self

    def queue(self, key: str) -> Queue | None:
        return next((q for q in self.queues if q.key == key), None)

    @cached_property
    def _policies(self) -> dict[str, sla_policy.SlaPolicy]:
        return {q.key: sla_policy.SlaPolicy.build(
            clock=self.sla.clock, business_hours=self.sla.business_hours, timezone=q.timezone,
            country=q.holidays_country, subdiv=q.holidays_subdiv, targets=self.sla.targets.model_dump(),
            engagement=q.engagement, overrides={k: v for k, v in q.sla.model_dump().items() if v},
            reminders=self.sla.reminders, event_lead=self.sla.event_lead) for q in self.queues}

    def policy(self, queue_key: str) -> sla_policy.SlaPolicy | None:
        """The queue's SLA policy, built once per loaded config: the one place deadlines come from."""
        return self._policies.get(queue_key)

    @property
    def queue_keys(self) -> tuple[str, ...]:
        return tuple(q.key for q in self.queues)


def _key_path(loc: tuple, data: dict) -> str:
    """Turn pydantic's ('queues', 0, 'timezone') into "queues[0] (amer-east).timezone"."""
    out = ""
    node: object = data
    for part in loc:
        if isinstance(part, int):
            key = node[part].get("key") if isinstance(node, list) and part < len(node) and isinstance(
                node[part], dict) else None
            out += f"[{part}]" + (f" ({key})" if key else "")
        else:
            out += ("." if out else "") + str(part)
        try:
            node = node[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            node = None
    return out


def parse_config(data: dict, *, source: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            where = _key_path(tuple(err["loc"]), data) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (see triage.example.toml for the keys there are)"
            problems.append(f"{where}: {msg}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_config(path: Path) -> Config:
    """Read the TOML config; a missing file means no queues yet (the app still starts)."""
    path = Path(path)
    if not path.exists():
        log.warning("config file %s not found: no queues configured (copy triage.example.toml to start)", path)
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return parse_config(data, source=str(path))

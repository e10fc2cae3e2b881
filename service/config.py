"""Settings: read once, from GATEHOUSE_* environment variables and an optional TOML file.

This is the only module that reads the environment. Each setting's environment
variable is GATEHOUSE_<NAME>; a TOML file named by GATEHOUSE_CONFIG may set the
same keys in lower case (`port = 8080`), and the environment wins over it.
"""

import dataclasses
import ipaddress
import os
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from service.errors import ConfigError
from service.limits import Rate

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.toml"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything Gatehouse is configured with."""

    database_url: str | None = None
    database_owner_url: str | None = None
    data_dir: Path = dataclasses.field(default_factory=lambda: default_data_dir())
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    base_url: str = ""
    log_level: str = "INFO"
    policy_file: Path = _DEFAULT_POLICY
    app_role: str = "gatehouse_app"
    pool_size: int = 8
    db_timeout: float = 5.0
    trusted_proxies: int = 0
    # Who may read /metrics: the client addresses (after trusted_proxies) in these networks; nobody else
    metrics_allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    # `gatehouse worker`'s own metrics server (prometheus-client's): off at port 0
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 0
    # SCIM: how a pushed person is matched to one already known from LDAP
    scim_join_key: str = "email"
    # SCIM: when on, a SCIM client may change or delete only the people it created or its join linked (403 else)
    scim_ownership: bool = False
    # Access checks: which of a person's identifiers a gateway's `user` may be
    check_identifiers: tuple[str, ...] = ("user_name", "email")
    # WebAuthn (admins)
    rp_id: str = ""
    rp_name: str = "Gatehouse"
    webauthn_origins: tuple[str, ...] = ()
    webauthn_device_bound: bool = False
    webauthn_roots: Path | None = None
    webauthn_aaguids: tuple[str, ...] = ()
    # Sessions, tokens, OIDC sign-in
    session_lifetime: int = 8 * 3600
    token_lifetime: int = 900
    token_cache_seconds: int = 5
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_trust_username: bool = False  # the provider controls preferred_username (OIDC Core 5.7 says don't rely on it)
    # LDAP / Active Directory sync (off while ldap_url is empty) and the worker's schedule
    ldap_url: tuple[str, ...] = ()
    ldap_bind_dn: str = ""
    ldap_bind_password: str = dataclasses.field(default="", repr=False)
    ldap_bind_password_file: Path | None = None
    ldap_user_base: str = ""
    ldap_group_base: str = ""
    ldap_user_filter: str = ""
    ldap_group_filter: str = ""
    ldap_flavor: str = "openldap"
    ldap_start_tls: bool = False
    ldap_ca_file: Path | None = None
    ldap_allow_plaintext: bool = False
    ldap_page_size: int = 500
    ldap_sync_minutes: int = 15
    ldap_full_sync_at: int = 2
    # LDAP attribute mapping: "" (0, ()) keeps the flavor's (openldap / ad); README "LDAP attribute mapping"
    ldap_attr_key: str = ""
    ldap_attr_login: str = ""
    ldap_attr_email: str = ""
    ldap_attr_given_name: str = ""
    ldap_attr_family_name: str = ""
    ldap_attr_display_name: str = ""
    ldap_attr_title: str = ""
    ldap_attr_employee_number: str = ""
    ldap_attr_department: str = ""
    ldap_attr_manager: str = ""
    ldap_attr_group_name: str = ""
    ldap_attr_group_key: str = ""
    ldap_attr_group_members: tuple[str, ...] = ()
    ldap_disabled_attr: str = ""
    ldap_disabled_value: str = ""
    ldap_disabled_bit: int = 0
    ldap_builtin_groups: bool = False
    # E-mail (training lapse notices and reminders): off while smtp_host is empty
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "gatehouse@localhost"
    smtp_starttls: bool = False
    smtp_tls: bool = False  # implicit TLS from the first byte (port 465, RFC 8314 §3.3), instead of STARTTLS
    smtp_ca_file: Path | None = None  # PEM of the CA that signed the server's certificate (default: the system's)
    smtp_user: str = ""
    smtp_password: str = dataclasses.field(default="", repr=False)
    # Signed checkpoints of the journal (off while neither a key file nor a PKCS#11 module is set)
    journal_origin: str = ""  # the checkpoint's origin line and key name; default: <base URL host>/gatehouse/journal
    journal_key_file: Path | None = None  # a signed-note private key (development; `gatehouse journal keygen`)
    journal_pkcs11_module: Path | None = None  # e.g. /usr/lib/softhsm/libsofthsm2.so
    journal_pkcs11_token: str = ""  # the token's label
    journal_pkcs11_key: str = ""  # the Ed25519 key pair's label
    journal_pkcs11_pin: str = dataclasses.field(default="", repr=False)
    journal_checkpoint_file: Path | None = None  # each new checkpoint is also written here (a copy outside)
    journal_checkpoint_minutes: int = 10
    journal_checkpoint_webhook_url: str = ""  # each new checkpoint is also POSTed here, signed (connectors/webhook.py)
    journal_checkpoint_webhook_secret_file: Path | None = None  # the HMAC secret of those POSTs
    # Rate limits per client address and endpoint, in each process's memory ("N/SECONDS"; "0" turns one off):
    # the OAuth token endpoint, sign-in (OIDC start and callback, WebAuthn login), admin enrollment, review links
    rate_limit_token: Rate = Rate(60, 60)
    rate_limit_signin: Rate = Rate(30, 60)
    rate_limit_enroll: Rate = Rate(10, 60)
    rate_limit_review: Rate = Rate(60, 60)
    rate_limit_keys: int = 10000  # buckets kept per process (least recently used dropped first)

    @property
    def public_base_url(self) -> str:
        """GATEHOUSE_BASE_URL, else http://HOST:PORT, an IP address (127.0.0.1, 0.0.0.0) named localhost.

        WebAuthn takes its RP ID from this URL's host, and an IP address is no valid RP ID (browsers refuse it:
        "This is an invalid domain"); localhost is, and a browser counts http://localhost as a secure context.
        """
        if self.base_url:
            return self.base_url
        host = self.host
        try:
            ipaddress.ip_address(host.strip("[]"))
            host = "localhost"
        except ValueError:
            pass
        return f"http://{host}:{self.port}"

    @property
    def relying_party_id(self) -> str:
        """The WebAuthn RP ID: GATEHOUSE_RP_ID, else the public base URL's host."""
        return self.rp_id or (urlsplit(self.public_base_url).hostname or "localhost")

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        """Origins a WebAuthn response or a console POST may come from."""
        if self.webauthn_origins:
            return self.webauthn_origins
        parts = urlsplit(self.public_base_url)
        return (f"{parts.scheme}://{parts.netloc}",)

    @property
    def checkpoint_origin(self) -> str:
        """The journal's checkpoint origin (and key name): GATEHOUSE_JOURNAL_ORIGIN, else from the base URL."""
        return self.journal_origin or f"{urlsplit(self.public_base_url).hostname or 'localhost'}/gatehouse/journal"

    @property
    def secure_cookies(self) -> bool:
        return self.public_base_url.startswith("https://")


def default_data_dir() -> Path:
    """Where the embedded database lives when GATEHOUSE_DATA_DIR is not set."""
    if os.geteuid() == 0:
        return Path("/var/lib/gatehouse")
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "gatehouse"


def load_settings(environ: dict[str, str] | None = None, **overrides) -> Settings:
    """Build Settings from the environment (and GATEHOUSE_CONFIG file); raise ConfigError."""
    environ = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    config_file = environ.get("GATEHOUSE_CONFIG")
    if config_file:
        raw.update(_read_toml(Path(config_file)))
    names = {f.name for f in dataclasses.fields(Settings)}
    for name in names:
        value = environ.get("GATEHOUSE_" + name.upper())
        if value is not None and value != "":
            raw[name] = value
    raw.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"GATEHOUSE_CONFIG ({config_file})", f"unknown setting {unknown[0]!r}")
    settings = Settings(**{name: _PARSERS.get(name, _text)(name, value) for name, value in raw.items()})
    if settings.smtp_tls and settings.smtp_starttls:
        raise ConfigError(_env("smtp_tls"), "choose implicit TLS (port 465) or STARTTLS, not both")
    return settings


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError("GATEHOUSE_CONFIG", f"cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("GATEHOUSE_CONFIG", f"{path} is not valid TOML: {e}") from None


def _env(name: str) -> str:
    return "GATEHOUSE_" + name.upper()


def _text(name: str, value) -> str:
    if not isinstance(value, str):
        raise ConfigError(_env(name), f"expected text, got {value!r}")
    return value


def _int_in(low: int, high: int):
    def parse(name: str, value) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(_env(name), f"expected a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise ConfigError(_env(name), f"{number} is out of range ({low}..{high})")
        return number

    return parse


def _seconds(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(_env(name), f"expected a number of seconds, got {value!r}") from None
    if not 0 < number <= 600:
        raise ConfigError(_env(name), f"{number} is out of range (0..600 seconds)")
    return number


def _database_url(name: str, value) -> str:
    value = _text(name, value)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise ConfigError(_env(name), f"malformed URL: {e}") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(_env(name), "expected a postgresql:// URL")
    if not (parts.hostname or "host=" in parts.query) or not parts.path.strip("/"):
        raise ConfigError(_env(name), "the URL must name a host and a database")
    return value


def _base_url(name: str, value) -> str:
    value = _text(name, value).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(_env(name), f"expected an http(s):// URL, got {value!r}")
    return value


def _log_level(name: str, value) -> str:
    level = _text(name, value).upper()
    if level not in _LOG_LEVELS:
        raise ConfigError(_env(name), f"expected one of {', '.join(_LOG_LEVELS)}, got {value!r}")
    return level


def _readable_file(name: str, value) -> Path:
    path = Path(_text(name, value)).expanduser()
    try:
        with path.open("rb"):
            pass
    except OSError as e:
        raise ConfigError(_env(name), f"cannot read {path}: {e.strerror}") from None
    return path


def _path(name: str, value) -> Path:
    return Path(_text(name, value)).expanduser().absolute()


def _origin_line(name: str, value) -> str:
    value = _text(name, value)
    if not value or not value.isprintable() or any(c.isspace() or c == "+" for c in value):
        raise ConfigError(_env(name), f"expected a checkpoint origin such as example.com/journal, got {value!r}")
    return value


def _directory(name: str, value) -> Path:
    path = Path(_text(name, value)).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ConfigError(_env(name), f"{path} is not a directory")
    return path


def _role(name: str, value) -> str:
    value = _text(name, value)
    if not value.replace("_", "").isalnum() or len(value) > 63:
        raise ConfigError(_env(name), f"not a plain role name: {value!r}")
    return value


def _bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(name, value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(_env(name), f"expected true or false, got {value!r}")


def _list(name: str, value) -> tuple[str, ...]:
    items = value if isinstance(value, list) else _text(name, value).split(",")
    return tuple(_text(name, item).strip() for item in items if str(item).strip())


def _networks(name: str, value) -> tuple[str, ...]:
    import ipaddress

    try:
        return tuple(str(ipaddress.ip_network(v, strict=False)) for v in _list(name, value))
    except ValueError as e:
        raise ConfigError(_env(name), f"expected IP networks separated by commas: {e}") from None


def metrics_dir(environ: dict[str, str] | None = None) -> str | None:
    """PROMETHEUS_MULTIPROC_DIR as the operator set it (prometheus-client reads it too), or None."""
    environ = os.environ if environ is None else environ
    return environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _origins(name: str, value) -> tuple[str, ...]:
    origins = _list(name, value)
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise ConfigError(_env(name), f"not an origin (scheme://host[:port]): {origin!r}")
    return tuple(o.rstrip("/") for o in origins)


def _aaguids(name: str, value) -> tuple[str, ...]:
    import uuid

    try:
        return tuple(str(uuid.UUID(v)) for v in _list(name, value))
    except ValueError:
        raise ConfigError(_env(name), "expected AAGUIDs (UUIDs), comma-separated") from None


def _issuer(name: str, value) -> str:
    return _base_url(name, value) if value else ""


def _join_key(name: str, value) -> str:
    value = _text(name, value)
    if value not in ("email", "employeeNumber", "externalId"):
        raise ConfigError(_env(name), f"expected email, employeeNumber or externalId, got {value!r}")
    return value


CHECK_IDENTIFIERS = ("user_name", "email", "employee_number")


def _identifiers(name: str, value) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(_list(name, value)))
    wrong = [v for v in chosen if v not in CHECK_IDENTIFIERS]
    if wrong or not chosen:
        raise ConfigError(_env(name), f"expected one or more of {', '.join(CHECK_IDENTIFIERS)}, comma-separated, "
                                      f"got {value!r}")
    return chosen


def _ldap_urls(name: str, value) -> tuple[str, ...]:
    urls = _list(name, value)
    if not all(urlsplit(u).scheme in ("ldap", "ldaps") and urlsplit(u).hostname for u in urls):
        raise ConfigError(_env(name), f"expected ldap:// or ldaps:// URLs, comma-separated, got {value!r}")
    return urls


def _ldap_flavor(name: str, value) -> str:
    value = _text(name, value)
    if value not in ("openldap", "ad"):
        raise ConfigError(_env(name), f"expected openldap or ad, got {value!r}")
    return value


_LDAP_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+")  # RFC 4512 1.4 descr or numericoid


def _ldap_attribute(name: str, value) -> str:
    value = _text(name, value).strip()
    if value and not _LDAP_ATTRIBUTE.fullmatch(value):
        raise ConfigError(_env(name), f"expected an LDAP attribute name (e.g. mail), got {value!r}")
    return value


def _ldap_attributes(name: str, value) -> tuple[str, ...]:
    return tuple(_ldap_attribute(name, item) for item in _list(name, value))


def _address(name: str, value) -> str:
    value = _text(name, value).strip()
    if not re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+", value):
        raise ConfigError(_env(name), f"expected an e-mail address (name@domain), got {value!r}")
    return value


def _rate(name: str, value) -> Rate:
    text = str(value).strip()
    if text == "0":
        return Rate(0, 1)
    burst, _, seconds = text.partition("/")
    try:
        rate = Rate(int(burst), float(seconds))
    except ValueError:
        raise ConfigError(_env(name), f"expected requests/seconds such as 30/60, or 0 for no limit, got {value!r}") \
            from None
    if not (1 <= rate.burst <= 100000 and 0 < rate.seconds <= 86400):
        raise ConfigError(_env(name), f"{text} is out of range (1..100000 requests per 0..86400 seconds)")
    return rate


_PARSERS = {
    **{f"rate_limit_{door}": _rate for door in ("token", "signin", "enroll", "review")},
    "rate_limit_keys": _int_in(100, 10_000_000),
    "journal_origin": _origin_line,
    "journal_key_file": _readable_file,
    "journal_pkcs11_module": _readable_file,
    "journal_checkpoint_file": _path,
    "journal_checkpoint_minutes": _int_in(1, 24 * 60),
    "journal_checkpoint_webhook_url": _base_url,
    "journal_checkpoint_webhook_secret_file": _readable_file,
    "smtp_port": _int_in(1, 65535),
    "smtp_from": _address,
    "smtp_starttls": _bool,
    "smtp_tls": _bool,
    "smtp_ca_file": _readable_file,
    "ldap_url": _ldap_urls,
    "ldap_bind_password_file": _readable_file,
    "ldap_flavor": _ldap_flavor,
    "ldap_start_tls": _bool,
    "ldap_ca_file": _readable_file,
    "ldap_allow_plaintext": _bool,
    "ldap_page_size": _int_in(0, 100000),
    "ldap_sync_minutes": _int_in(1, 24 * 60),
    "ldap_full_sync_at": _int_in(0, 23),
    **{f"ldap_attr_{field}": _ldap_attribute for field in (
        "key", "login", "email", "given_name", "family_name", "display_name", "title", "employee_number",
        "department", "manager", "group_name", "group_key")},
    "ldap_attr_group_members": _ldap_attributes,
    "ldap_disabled_attr": _ldap_attribute,
    "ldap_disabled_bit": _int_in(0, 2**31 - 1),
    "ldap_builtin_groups": _bool,
    "scim_join_key": _join_key,
    "scim_ownership": _bool,
    "check_identifiers": _identifiers,
    "webauthn_origins": _origins,
    "webauthn_device_bound": _bool,
    "webauthn_roots": _readable_file,
    "webauthn_aaguids": _aaguids,
    "session_lifetime": _int_in(60, 30 * 24 * 3600),
    "token_lifetime": _int_in(60, 24 * 3600),
    "token_cache_seconds": _int_in(0, 60),
    "oidc_issuer": _issuer,
    "oidc_trust_username": _bool,
    "database_url": _database_url,
    "database_owner_url": _database_url,
    "data_dir": _directory,
    "port": _int_in(1, 65535),
    "workers": _int_in(1, 64),
    "pool_size": _int_in(1, 200),
    "trusted_proxies": _int_in(0, 5),
    "metrics_allow": _networks,
    "worker_metrics_port": _int_in(0, 65535),
    "db_timeout": _seconds,
    "base_url": _base_url,
    "log_level": _log_level,
    "policy_file": _readable_file,
    "app_role": _role,
}

"""Django settings, read once from the environment.

Every variable is documented in `.env.example` and the README. Code reads
`django.conf.settings`, never `os.environ`. The defaults are a local, loopback-only run:
SQLite in `var/`, an in-memory channel layer, and no secret to configure.
"""

import os
from pathlib import Path

import dj_database_url
from corsheaders.defaults import default_headers
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state (the SQLite file, the development secret key); git-ignored.
VAR_DIR = Path(os.environ.get("DJANGO_VAR_DIR", BASE_DIR / "var"))

LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"]


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean: 1/true/yes/on or 0/false/no/off (any case)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false).")


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated list; blank entries are dropped."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_number(name: str, default: float, *, minimum: float, cast: type = float) -> float:
    """Read a number no smaller than `minimum`."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return cast(default)
    try:
        value = cast(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if not value >= minimum:  # also rejects NaN
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}.")
    return value


def secret_key(allowed_hosts: list[str]) -> str:
    """The configured key; for a loopback-only run, a random key kept in VAR_DIR."""
    configured = os.environ.get("DJANGO_SECRET_KEY", "").strip()
    if configured:
        return configured
    public = [host for host in allowed_hosts if host not in LOOPBACK_HOSTS]
    if public:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set, but DJANGO_ALLOWED_HOSTS names "
            f"{', '.join(public)}: set DJANGO_SECRET_KEY to a long random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    # Kept on disk so that admin sessions survive a restart of a local run.
    path = VAR_DIR / "dev-secret-key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key = get_random_secret_key()
        path.write_text(key)
        path.chmod(0o600)
        return key


def auth_mode(allowed_hosts: list[str]) -> str:
    """AUTH_MODE: "required" unless set, or unless the service answers on loopback only."""
    raw = os.environ.get("AUTH_MODE", "").strip().lower()
    if raw in {"required", "off"}:
        return raw
    if raw:
        raise ImproperlyConfigured(f"AUTH_MODE={raw!r}: use required or off.")
    public = [host for host in allowed_hosts if host not in LOOPBACK_HOSTS]
    return "required" if public else "off"


DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", LOOPBACK_HOSTS)
SECRET_KEY = secret_key(ALLOWED_HOSTS)
# "required": the API, its sockets and its streams need a user (a token or a session);
# "off": anyone who reaches the port may do anything (docs/access.md).
AUTH_MODE = auth_mode(ALLOWED_HOSTS)
# A Bearer token for /metrics alone (Prometheus), besides staff users' credentials.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "channels",
    "django_tasks",
    "django_tasks_db",
    "accounts",
    "health",
    "backtests",
]

# Django's stock middleware, adapted in project/middleware.py so that the JSON API and the
# probes take no thread hops: header-only hooks run on the event loop, and the session,
# CSRF, auth and messages middleware run for the admin's pages only.
# Django's own classes, so that `manage.py check --deploy` sees what runs; the ASGI
# handler loads each in its adapted form (project/middleware.py ADAPTED: no thread hops
# on API paths), the test client's WSGI handler as it is.
MIDDLEWARE = [
    "project.middleware.RequestIdMiddleware",
    "project.middleware.ContentSecurityPolicyMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
# Paths served without a per-request thread (project/asgi_handler.py): they never touch
# the database, but for /metrics authenticating a staff user's token or session (its
# queries then run on the one shared thread, whose connection request_finished closes).
THREADLESS_PATHS = frozenset({"/healthz", "/metrics"})
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite in VAR_DIR unless DATABASE_URL names another database (postgres://...).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # A server and workers write at once: WAL lets readers read while one writes, a
    # writer waits for another (timeout) instead of failing with "database is locked",
    # and IMMEDIATE takes the write lock when a transaction starts, so that two
    # transactions never deadlock upgrading a read lock (docs/operations.md).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request's database work runs in a thread of its own, so Django's
    # persistent connections cannot be reused: a pool saves a connect per request.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": int(env_number("DATABASE_POOL_SIZE", 10, minimum=1, cast=int)),
        "timeout": 10,
    }

# Bars files (Parquet, each named by its sha256) and run artifacts (one folder per run).
# Shared storage when several machines run workers.
DATA_DIR = Path(os.environ.get("DATA_DIR", VAR_DIR / "data"))
ARTIFACTS_DIR = Path(os.environ.get("ARTIFACTS_DIR", VAR_DIR / "artifacts"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The channel layer carries run statuses from workers to the sockets watching them. In
# memory by default (one process: the server polls the database for statuses instead);
# Redis, shared by every server and worker, when REDIS_URL is set.
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 times socket reads out after 5 s by default, the same 5 s that
            # channels_redis blocks in BZPOPMIN for: a read that waits for the whole pop
            # would time out. A longer socket timeout keeps the pop the one that ends.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Sessions are read from the cache and written through to the database, so that a
# socket's authentication by its session costs one query (the user's). The cache is this
# process's memory, or Redis, shared by every process, when REDIS_URL is set.
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "run-list"

# The job queue: Django's tasks framework, its queue in this database (django-tasks-db).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# A RUNNING run's lease: its worker renews it every third of this; a run whose lease has
# expired (its worker was killed or lost) is requeued, and failed after JOB_MAX_ATTEMPTS.
JOB_LEASE_SECONDS = env_number("JOB_LEASE_SECONDS", 30, minimum=1)
JOB_MAX_ATTEMPTS = int(env_number("JOB_MAX_ATTEMPTS", 3, minimum=1, cast=int))
# Workers run at a lower CPU priority (nice) than servers on the same machine, so that
# computing runs never slows requests and sockets down; 0 runs them at the same.
JOB_WORKER_NICE = int(env_number("JOB_WORKER_NICE", 10, minimum=0, cast=int))
# For tests only: points at which a process kills itself (project/faults.py), e.g. "enqueue".
FAULT_POINTS = frozenset(env_list("FAULT_POINTS", []))
# Playback: the memory a server process may spend on played runs' arrays (bars, equity,
# fills; about 10 MiB for a year of one-minute bars), least recently used out.
PLAYBACK_CACHE_BYTES = int(env_number("PLAYBACK_CACHE_BYTES", 512 * 2**20, minimum=2**20, cast=int))
# How often the server checks the status of runs that sockets wait on, without Redis.
RUN_STATUS_POLL_SECONDS = env_number("RUN_STATUS_POLL_SECONDS", 1, minimum=0.05)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Served by the ASGI app itself (see project/asgi.py): daphne serves no files.
STATIC_URL = "static/"

# Behind a TLS-terminating proxy (which sets X-Forwarded-Proto): HTTPS only, HSTS for a
# year, cookies sent over HTTPS only. The probes stay reachable over plain HTTP.
SECURE = env_bool("DJANGO_SECURE", False)
if SECURE:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = int(env_number("DJANGO_HSTS_SECONDS", 31_536_000, minimum=0, cast=int))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True

# Every response's Content-Security-Policy: no inline script or style anywhere (the
# viewer's and the admin's are static files), no framing (docs/access.md#headers).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)

# CORS for the frontend (the Vite dev server by default).
CORS_ALLOWED_ORIGINS = env_list(
    "DJANGO_CORS_ALLOWED_ORIGINS", ["http://localhost:5173", "http://127.0.0.1:5173"]
)
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After", "WWW-Authenticate"]
# The frontend's origins may send session-authenticated writes (with the CSRF token).
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", CORS_ALLOWED_ORIGINS)
# The request headers the API reads, beyond django-cors-headers' defaults (which have
# Authorization and Content-Type): without them a browser's preflight fails.
CORS_ALLOW_HEADERS = (*default_headers, "idempotency-key", "x-idempotency-key", "x-request-id")

# WebSocket protocol limits (docs/api/ws-protocol.md).
WS_MAX_MESSAGE_BYTES = int(env_number("WS_MAX_MESSAGE_BYTES", 65536, minimum=1, cast=int))
WS_HEARTBEAT_INTERVAL = env_number("WS_HEARTBEAT_INTERVAL", 5.0, minimum=0.01)
# Messages a second per connection, sustained, and the burst allowed; 0 turns it off.
WS_RATE_LIMIT = env_number("WS_RATE_LIMIT", 50, minimum=0)
WS_RATE_BURST = env_number("WS_RATE_BURST", 100, minimum=1)
# A client that floods for this long is closed (code 4008).
WS_FLOOD_CLOSE_SECONDS = env_number("WS_FLOOD_CLOSE_SECONDS", 10, minimum=0.1)
# Open WebSocket connections per server process; the next handshake is refused.
WS_MAX_CONNECTIONS = int(env_number("WS_MAX_CONNECTIONS", 10_000, minimum=1, cast=int))
# HTTP request bodies over this many bytes get 413 before they are read.
HTTP_MAX_BODY_BYTES = int(env_number("HTTP_MAX_BODY_BYTES", 1_048_576, minimum=1, cast=int))
DATA_UPLOAD_MAX_MEMORY_SIZE = HTTP_MAX_BODY_BYTES
# A request line and headers over this many bytes get 431 under uvicorn (its httptools
# protocol has no bound; project/uvicorn_http.py); daphne refuses a header line over 16 KiB.
HTTP_MAX_HEADER_BYTES = int(env_number("HTTP_MAX_HEADER_BYTES", 65_536, minimum=1024, cast=int))
# POST /datasets bodies (a bars file) may be this large; spooled to disk, never held whole.
DATASET_MAX_BYTES = int(env_number("DATASET_MAX_BYTES", 268_435_456, minimum=1, cast=int))

# Quotas per client: a user, or an anonymous client's address (docs/access.md#quotas);
# 0 turns one off. Past one: 429 RATE_LIMITED with Retry-After (a socket: 403).
POSTS_PER_MINUTE = int(env_number("POSTS_PER_MINUTE", 120, minimum=0, cast=int))
RUNS_MAX_ACTIVE = int(env_number("RUNS_MAX_ACTIVE", 20, minimum=0, cast=int))
SSE_MAX_PER_CLIENT = int(env_number("SSE_MAX_PER_CLIENT", 20, minimum=0, cast=int))
WS_MAX_PER_CLIENT = int(env_number("WS_MAX_PER_CLIENT", 200, minimum=0, cast=int))
# Open Server-Sent Events streams per server process (WS_MAX_CONNECTIONS for sockets).
SSE_MAX_CONNECTIONS = int(env_number("SSE_MAX_CONNECTIONS", 1000, minimum=0, cast=int))

# Artifact retention, applied by the workers every ARTIFACTS_PRUNE_SECONDS and by
# `manage.py prune_artifacts`: finished runs' folders older than this many days (0: kept)
# and the oldest past this many bytes in all (0: no limit); never a run being played.
ARTIFACTS_MAX_AGE_DAYS = env_number("ARTIFACTS_MAX_AGE_DAYS", 0, minimum=0)
ARTIFACTS_MAX_BYTES = int(env_number("ARTIFACTS_MAX_BYTES", 0, minimum=0, cast=int))
ARTIFACTS_PRUNE_SECONDS = env_number("ARTIFACTS_PRUNE_SECONDS", 600, minimum=1)

# A run still computing after this many seconds is stopped and ends in ERROR (0: no limit).
JOB_RUN_TIMEOUT_SECONDS = env_number("JOB_RUN_TIMEOUT_SECONDS", 600, minimum=0)
# Parameter sweeps (docs/sweeps.md): the most variants one sweep may have, how many one
# task computes, and how many sweeps a client may have QUEUED or RUNNING at once.
SWEEP_MAX_VARIANTS = int(env_number("SWEEP_MAX_VARIANTS", 100_000, minimum=1, cast=int))
SWEEP_CHUNK_VARIANTS = int(env_number("SWEEP_CHUNK_VARIANTS", 250, minimum=1, cast=int))
SWEEPS_MAX_ACTIVE = int(env_number("SWEEPS_MAX_ACTIVE", 4, minimum=0, cast=int))
# Users' strategy modules, imported at start-up (docs/strategies.md#loading).
BACKTEST_STRATEGY_MODULES = env_list("BACKTEST_STRATEGY_MODULES", [])

# "json": one JSON object per line (request_id, backtest_id included); "console": for people.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json").strip().lower()
if LOG_FORMAT not in {"json", "console"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use json or console.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "project.log.ContextFilter"},
        "client_faults": {"()": "project.log.ClientFaultFilter"},
    },
    "formatters": {
        "json": {"()": "project.log.JsonFormatter"},
        "console": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        },
        "null": {"class": "logging.NullHandler"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "backtests": {"level": "INFO"},
        "project": {"level": "INFO"},
        # daphne's start-up lines say where it listens.
        "daphne": {"level": "INFO"},
        # The task worker's start-up and shutdown lines.
        "django_tasks_db": {"level": "INFO"},
        # A foreign Host header is answered 400 and logged once by django.request as a
        # warning; the security logger would add a traceback for the same event.
        "django.security.DisallowedHost": {"handlers": ["null"], "propagate": False},
        # uvicorn reports a client's invalid UTF-8 at ERROR with a traceback (project/log.py).
        "uvicorn.error": {"filters": ["client_faults"]},
    },
}

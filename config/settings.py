"""Settings, read from the environment.

Production fails closed: SECRET_KEY, DATABASE_URL and CELERY_BROKER_URL are required
and DEBUG is off. SCORECARD_MODE=demo or SCORECARD_MODE=test opt in to the embedded
defaults (SQLite and Celery's filesystem transport under var/); the page footer says so.
"""

import ipaddress
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from whitenoise.compress import Compressor

from config.env import (
    check_broker_url,
    check_fernet_key,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
    local_secret_key,
    parse_database_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("SCORECARD_VAR_DIR") or BASE_DIR / "var")

MODE = env_choice("SCORECARD_MODE", ("production", "demo", "test"), "production")
EMBEDDED = MODE in ("demo", "test")

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not EMBEDDED:
        raise ImproperlyConfigured("SECRET_KEY is required (set SCORECARD_MODE=demo or test to run without one)")
    SECRET_KEY = f"insecure-{MODE}-key-not-for-production"
elif len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
# Rotating SECRET_KEY: put the old key here while the new one takes over, so sessions signed
# with it stay valid until they expire (SESSION_IDLE_MINUTES); then remove it.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])
if any(len(key) < 32 for key in SECRET_KEY_FALLBACKS):
    raise ImproperlyConfigured("SECRET_KEY_FALLBACKS: each key must be at least 32 characters long")

# Stored cluster secrets are encrypted with these Fernet keys, newest first: add a new key in
# front, run `manage.py rotate_secrets`, then drop the old one. Demo and test modes keep one
# generated key under var/.
SCORECARD_SECRET_KEYS = env_list("SCORECARD_SECRET_KEYS", [])
if not SCORECARD_SECRET_KEYS:
    if not EMBEDDED:
        raise ImproperlyConfigured(
            "SCORECARD_SECRET_KEYS is required: one or more Fernet keys, comma separated, newest first "
            "(make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        )
    SCORECARD_SECRET_KEYS = [local_secret_key(VAR_DIR / "secret-key")]
for _key in SCORECARD_SECRET_KEYS:
    check_fernet_key("SCORECARD_SECRET_KEYS", _key)

# The evidence chain's HMAC key (DESIGN.md section 6): kept out of the database and apart
# from SECRET_KEY, so neither a database writer nor a leaked session key can re-sign evidence.
SCORECARD_EVIDENCE_KEY = env_str("SCORECARD_EVIDENCE_KEY")
if not SCORECARD_EVIDENCE_KEY:
    if not EMBEDDED:
        raise ImproperlyConfigured(
            "SCORECARD_EVIDENCE_KEY is required: at least 32 random characters, not the SECRET_KEY "
            "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    SCORECARD_EVIDENCE_KEY = local_secret_key(VAR_DIR / "evidence-key")
elif len(SCORECARD_EVIDENCE_KEY) < 32 or SCORECARD_EVIDENCE_KEY == SECRET_KEY:
    raise ImproperlyConfigured("SCORECARD_EVIDENCE_KEY must be at least 32 characters and differ from SECRET_KEY")
# The full walk of every chain (pages only verify what was appended since the last one).
CHAIN_WALK_SECONDS = env_int("CHAIN_WALK_SECONDS", 3600, minimum=60)
# The queue audit PDFs are built on (any worker that reaches PostgreSQL can build them).
AUDIT_EXPORT_QUEUE = env_str("AUDIT_EXPORT_QUEUE") or "default"
# How often beat records every scorecard's readiness for the trend.
READINESS_SAMPLE_SECONDS = env_int("READINESS_SAMPLE_SECONDS", 3600, minimum=60)
# A row owner's sign-off lapses after this many days, or at once when the row's status changes.
SIGNOFF_VALID_DAYS = env_int("SIGNOFF_VALID_DAYS", 90, minimum=1, maximum=3650)

DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if EMBEDDED else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

_database_url = env_str("DATABASE_URL")
if not _database_url:
    if not EMBEDDED:
        raise ImproperlyConfigured("DATABASE_URL is required, e.g. postgres://user@host:5432/scorecard")
    _database_url = f"sqlite:///{VAR_DIR / 'scorecard.sqlite3'}"
DATABASES = {"default": parse_database_url("DATABASE_URL", _database_url)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The demo runs web, worker and beat against one file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
else:
    # A PostgreSQL that does not answer (restarting, failing over, a dropped route) fails a new
    # connection within 5 s instead of libpq's unbounded wait; web requests show an error,
    # probe tasks retry (drills/tasks.py). Kept connections (60 s) are health-checked before reuse.
    DATABASES["default"]["OPTIONS"] = {"connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1, maximum=60)}

INSTALLED_APPS = [
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "config.apps.StaticFiles",
    "scorecard",
    "drills",
    "api",
    "ninja",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads a body: an oversized one is a 413 with a sentence (config/middleware.py).
    "config.middleware.RequestBodyLimitMiddleware",
    # Static files from the application itself (compressed, hashed names in production).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "scorecard.middleware.AuditActorMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes): after this many failures for one user name from one address,
# that pair is locked out for the cool-off period; the login page says so.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=100)
AXES_COOLOFF_TIME = env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1, maximum=1440) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# Request bodies. Forms, JSON (the API) and YAML bodies are read into memory: at most 2.5 MB
# (a 1 MB YAML import fits: its page posts multipart, unescaped). A multipart post may also
# carry an uploaded file (the YAML import's, at most 1 MB): at most 4 MB in all. Above either,
# a 413 with a sentence (config/middleware.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
DATA_UPLOAD_MAX_NUMBER_FILES = 10
REQUEST_BODY_MAX_BYTES = 4 * 1024 * 1024

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "scorecard.context_processors.mode",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "scorecard-index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "config.staticfiles.PlotlyFinder",
]
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "static")
if EMBEDDED:
    # Demo and tests serve static files straight from the sources: no collectstatic needed.
    WHITENOISE_USE_FINDERS = True
    WHITENOISE_AUTOREFRESH = True
else:
    # `manage.py collectstatic` writes gzip and brotli copies under content-hashed names,
    # served with far-future cache headers.
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    # Source maps (5 MB of the API reference's) serve developers' tools, rarely fetched:
    # compressing them with brotli would double the time collectstatic takes.
    WHITENOISE_SKIP_COMPRESS_EXTENSIONS = [*Compressor.SKIP_COMPRESS_EXTENSIONS, "map"]
    # Pages name static files through {% static %}, which gives the hashed names: the
    # unhashed copies would only be compressed a second time.
    WHITENOISE_KEEP_ONLY_HASHED_FILES = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_HTTPONLY = True
# Idle logout: a session lasts this long after the last request.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_MINUTES", 30, minimum=1, maximum=24 * 60) * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# HTTPS. Cookies are Secure in production unless SESSION_COOKIE_SECURE=false (a trial over
# plain HTTP on a private network: the login page says when this is needed). Redirecting to
# HTTPS and HSTS are off until turned on: both lock browsers out of a site not served over
# HTTPS. Behind a TLS-terminating proxy, SECURE_PROXY_SSL_HEADER names the header it sets.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not EMBEDDED)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, maximum=2 * 365 * 86400)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
if _proxy_header := env_str("SECURE_PROXY_SSL_HEADER"):
    if not re.fullmatch(r"HTTP_[A-Z0-9_]+", _proxy_header):
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must name a request header as Django sees it, e.g. HTTP_X_FORWARDED_PROTO"
        )
    SECURE_PROXY_SSL_HEADER = (_proxy_header, "https")
CSRF_FAILURE_VIEW = "scorecard.views.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Scripts and styles from our own static files only (the pages have no inline code).
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}

# Celery. Limits are reconciled at start-up (drills/checks.py): every probe's parameters must
# fit the soft time limit, and the Redis visibility timeout must exceed the longest task (a
# drill of the longest allowed duration), or Redis would hand a running task to a second worker.
_broker_url = env_str("CELERY_BROKER_URL")
if not _broker_url:
    if not EMBEDDED:
        raise ImproperlyConfigured("CELERY_BROKER_URL is required, e.g. redis://host:6379/0")
    _broker_url = "filesystem://localhost/"
CELERY_BROKER_URL = check_broker_url("CELERY_BROKER_URL", _broker_url)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 600, minimum=60)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 30
# How long Redis keeps a delivered, unacknowledged message before giving it to another worker:
# above the longest drill (drills.E001), so only a whole worker killed (main process and all)
# waits this long for its message to come back; a killed pool process is redelivered at once
# (reject on worker lost, below). docs/operations.md "Restarts".
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 4200, minimum=60)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
if CELERY_BROKER_URL.startswith("filesystem"):
    _queue_dir = VAR_DIR / "celery-queue"
    # The filesystem transport needs its folders before any process declares a queue.
    _queue_dir.mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery-processed").mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery-control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery-processed"),
        # Broadcast (pidbox) messages: kept under var/ too, not in the working directory.
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
    }
# A broker that does not answer fails the request quickly (the page says so) instead of hanging.
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
# Runs still queued this long never reached a worker; beat marks them failed with the reason.
RUN_QUEUE_TIMEOUT_SECONDS = env_int("RUN_QUEUE_TIMEOUT_SECONDS", 1800, minimum=60)
CELERY_TASK_DEFAULT_QUEUE = "default"
# Acknowledge after the task ran: a worker that dies mid-run leaves its message in Redis.
CELERY_TASK_ACKS_LATE = True
# A pool process killed mid-task (OOM killer, SIGKILL) puts its message back at once; the
# redelivery takes the run over (scorecard.services.check_run_claim).
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A worker reserves one message per pool process: what it holds is what it runs, so the rest
# of a queue stays with the other workers, and a killed worker holds back no waiting work.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis lost mid-task: the probe or drill goes on (its result goes to PostgreSQL, and a drill
# must finish its recovery); cancelling it would leave a drilled cluster to the watchdog.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# A worker started or cut off while Redis is down waits for it, however long, instead of exiting.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Schedules live in the Check table (drills.beat); beat wakes at least this often to see edits.
CELERY_BEAT_SCHEDULER = "drills.beat:CheckScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
# A running drill beats every 0.5 s; the watchdog recovers drills silent for longer than this.
DRILL_HEARTBEAT_STALE_SECONDS = env_int("DRILL_HEARTBEAT_STALE_SECONDS", 30, minimum=5, maximum=3600)

# /metrics answers only addresses in these networks (comma-separated CIDRs; unset: any address
# with a token). Behind a proxy REMOTE_ADDR is the proxy's: restrict there (docs/metrics.md).
METRICS_ALLOWED_NETWORKS = []
for _cidr in env_list("METRICS_ALLOWED_NETWORKS", []):
    try:
        METRICS_ALLOWED_NETWORKS.append(ipaddress.ip_network(_cidr))
    except ValueError as _error:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_NETWORKS must be comma-separated networks such as 10.0.0.0/8 or fd00::/8; {_error}"
        ) from None

# Where `manage.py sandbox` writes the sandbox cluster's bootstrap address and socket.
SANDBOX_STATE_FILE = Path(env_str("SANDBOX_STATE_FILE") or VAR_DIR / "sandbox" / "state.json")

LOG_LEVEL = env_choice("LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

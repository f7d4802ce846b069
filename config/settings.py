"""Herald settings, read from the environment with django-environ.

Without ``DATABASE_URL`` / ``REDIS_URL`` an embedded PostgreSQL and Redis are started under
``var/`` (see ``config/embedded.py``); set them for production.
"""

import os
import sys
from pathlib import Path

import environ
from celery.schedules import crontab  # noqa: F401  (handy in overrides of CELERY_BEAT_SCHEDULE)
from cryptography.fernet import Fernet

from django.core.exceptions import ImproperlyConfigured

from config import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
TESTING = "pytest" in sys.modules

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
# With DEBUG off (production) the settings below that guard sessions and secrets must be given: Herald refuses to
# start rather than run with a key printed in its own source.
PRODUCTION = not DEBUG and not TESTING
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-in-production"
SECRET_KEY = env("SECRET_KEY", default=DEV_SECRET_KEY)
if PRODUCTION and (SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is off, to a random value of at least 50 characters (it signs sessions): "
        'python -c "import secrets; print(secrets.token_urlsafe(50))"'
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_TZ = True
LANGUAGE_CODE = "en-us"
FORMAT_MODULE_PATH = ["config.formats"]  # times shown as "2026-11-27 03:30 UTC" (config/formats/en/formats.py)
USE_I18N = True

# Where contacts' numbers are assumed to be when written without a country code.
DEFAULT_PHONE_REGION = env("DEFAULT_PHONE_REGION", default="IN")
# Base URL at which the providers reach our webhooks (shown on each provider account's page).
HERALD_PUBLIC_URL = env("HERALD_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
# Seconds to wait for a provider's answer before treating the request as lost (then reconciled).
PROVIDER_HTTP_TIMEOUT = env.float("PROVIDER_HTTP_TIMEOUT", default=30.0)
# Where the provider sandbox listens in development (demo accounts point at it).
SANDBOX_URL = env("SANDBOX_URL", default="http://127.0.0.1:8025").rstrip("/")

# --- Services -------------------------------------------------------------------------------------
if "DATABASE_URL" not in os.environ:
    os.environ["DATABASE_URL"] = embedded.postgres_url()
# A test session gets a Redis of its own, so that its Celery worker only sees its own tasks; so does each process of
# a session run side by side (pytest-xdist), which would otherwise inherit the first process's.
_inherited_test_redis = TESTING and os.environ.get("HERALD_TEST_REDIS_OWNER", str(os.getpid())) != str(os.getpid())
if "REDIS_URL" not in os.environ or _inherited_test_redis:
    if TESTING:
        os.environ["REDIS_URL"] = embedded.private_redis_url()
        os.environ["HERALD_TEST_REDIS_OWNER"] = str(os.getpid())
    else:
        os.environ["REDIS_URL"] = embedded.redis_url()
REDIS_URL = env("REDIS_URL")

DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0 if TESTING else 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Two test sessions may share the embedded server; each gets its own test database.
DATABASES["default"]["TEST"] = {"NAME": env("HERALD_TEST_DATABASE", default=f"test_herald_{os.getpid()}")}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# Fernet key(s) for provider credentials at rest; comma-separated for rotation (newest first).
# In development a key is generated once under var/; production must set it.
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY", default="")
FERNET_KEY_HOWTO = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
if not FIELD_ENCRYPTION_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured(
            f"FIELD_ENCRYPTION_KEY must be set when DEBUG is off, to a Fernet key: {FERNET_KEY_HOWTO}"
        )
    FIELD_ENCRYPTION_KEY = embedded.dev_encryption_key()
for _key in filter(None, (key.strip() for key in FIELD_ENCRYPTION_KEY.split(","))):  # as providers.crypto reads them
    try:  # refused at start, not at the first credential read or saved
        Fernet(_key.encode())
    except ValueError:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY is not a Fernet key (32 random bytes in url-safe base64, 44 characters; several "
            f"separated by commas): {FERNET_KEY_HOWTO}"
        ) from None

# --- Django ---------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's scripts served by Herald itself: /api/docs/ works offline
    "django_celery_beat",
    "contacts",
    "providers",
    "campaigns",
    "config",  # config/admin.py: the API tokens' admin page, without their keys (after rest_framework.authtoken)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.middleware.CommonMiddleware",  # the API's paths answered in JSON, a missing slash a 308
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise serves from here after collectstatic
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# --- HTTPS ------------------------------------------------------------------------------------------------------
# Proxies in front of the web server (a load balancer, nginx terminating TLS); see REST_FRAMEWORK["NUM_PROXIES"].
TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", default=0)
if TRUSTED_PROXIES:
    # The proxy says whether the browser came over https: without it a request through a proxy on another machine
    # (gunicorn believes the header from 127.0.0.1 only) looked like http, so the admin's sign-in form posted from
    # https://… was refused as cross-site (CSRF "Origin checking failed"), HSTS was never sent, and the links the
    # API gives (status_url and Location, next and previous, an import's error_report_url) said http://, so a client
    # following them sent its token in clear. The proxy must set the header itself (nginx: proxy_set_header
    # X-Forwarded-Proto $scheme).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Served over https (by default when DEBUG is off and HERALD_PUBLIC_URL is https): cookies only over https, and HSTS.
HTTPS = env.bool("HTTPS", default=not DEBUG and HERALD_PUBLIC_URL.startswith("https://"))
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)

MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
# Imports stream large files from disk; keep uploads out of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_url_secrets": {"()": "config.log.RedactUrlSecrets"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "pgserver": {"level": "WARNING"},
        # runserver's request lines (as Django logs them), without a webhook URL's ?secret=
        "django.server": {
            "handlers": ["django.server"],
            "level": "INFO",
            "propagate": False,
            "filters": ["redact_url_secrets"],
        },
    },
}

# --- Sign-in throttling (config/login_throttle.py): the API's token endpoint and the admin's login page -----------
# After this many failed attempts from one address, or for one username, within the last LOGIN_FAILURE_WINDOW
# seconds (a sliding window), attempts are refused (429, Retry-After) until the count within it falls below the
# limit. 0 turns a limit off.
LOGIN_FAILURES_PER_IP = env.int("LOGIN_FAILURES_PER_IP", default=20)
LOGIN_FAILURES_PER_USERNAME = env.int("LOGIN_FAILURES_PER_USERNAME", default=10)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=900)

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.authentication.TokenAuthentication",  # a key with a null character is a 401, not a 500
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["config.permissions.StrictModelPermissions"],
    # Bodies are JSON; an import's upload takes multipart (its view says so). A form body read a checkbox left out
    # as unticked: a contact posted without `is_active` was made inactive, and never sent to.
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": [
        "config.filters.FilterBackend",  # strict booleans, see config/filters.py
        "config.filters.SearchFilter",  # its errors name search
        "config.filters.OrderingFilter",  # unknown fields are a 400
    ],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",  # documents the error answers too
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Proxies in front of the web server whose X-Forwarded-For names the client (sign-in throttling counts per
    # client address); 0 trusts none, so that a client cannot pick its address by sending the header itself.
    "NUM_PROXIES": TRUSTED_PROXIES,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Herald API",
    "DESCRIPTION": "Contacts, audiences, providers and campaigns; transactional sends and delivery status.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/schema/ and /api/docs/ need a signed-in user (a token, or the admin's session), as /api/v1/ does; no model
    # permission, as they show no data. /api/docs/ sends a browser without a session to the admin's login.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {},
    # From drf-spectacular-sidecar, not a CDN: a self-hosted Herald often has no way out to the internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Campaign engine (seconds unless said otherwise) ----------------------------------------------
DISPATCHERS_PER_CAMPAIGN = env.int("DISPATCHERS_PER_CAMPAIGN", default=2)
# Frames of one recipient (Hyber) are sent this many at a time by each dispatcher, within the rate limit.
SINGLE_RECIPIENT_CONCURRENCY = env.int("SINGLE_RECIPIENT_CONCURRENCY", default=8)
DISPATCH_TASK_BUDGET = env.float("DISPATCH_TASK_BUDGET", default=30.0)  # a dispatcher task re-queues itself after
DISPATCH_LOCK_TTL = env.float("DISPATCH_LOCK_TTL", default=60.0)  # a dead dispatcher's slot frees after this
FRAME_MAX_ATTEMPTS = env.int("FRAME_MAX_ATTEMPTS", default=8)
FRAME_RETRY_BASE = env.float("FRAME_RETRY_BASE", default=2.0)  # backoff: base * 2^(attempt-1), ±50% jitter
FRAME_RETRY_MAX = env.float("FRAME_RETRY_MAX", default=300.0)
# A request waits this long at most for its token from the account's rate limit; then it is not made (a frame waits
# again, its attempt not counted), never sent beyond the limit.
RATE_LIMIT_MAX_WAIT = env.float("RATE_LIMIT_MAX_WAIT", default=60.0)
# A frame whose request is made longer than this after its recipients' opt-outs were checked (it waited for its
# token) checks them again first: one who opted out meanwhile is not sent (campaigns/services/dispatch.py).
OPT_OUT_RECHECK_AFTER = env.float("OPT_OUT_RECHECK_AFTER", default=2.0)
CAMPAIGN_MAX_CONSECUTIVE_FAILURES = env.int("CAMPAIGN_MAX_CONSECUTIVE_FAILURES", default=10)
# "Send a test" (campaigns/services/send_test.py): at most this many tests (each to up to five numbers) a minute per
# campaign, so that a test is never a way around launching it; 0 turns the limit off.
CAMPAIGN_TESTS_PER_MINUTE = env.int("CAMPAIGN_TESTS_PER_MINUTE", default=3)
# Deleting campaigns with more messages than this (together) hides them at once and deletes their messages and
# frames in a Celery task, in batches of CAMPAIGN_DELETE_BATCH rows; fewer go within the request.
CAMPAIGN_DELETE_INLINE_MAX_MESSAGES = env.int("CAMPAIGN_DELETE_INLINE_MAX_MESSAGES", default=10_000)
CAMPAIGN_DELETE_BATCH = env.int("CAMPAIGN_DELETE_BATCH", default=20_000)
REPORT_WINDOW_HOURS = env.float("REPORT_WINDOW_HOURS", default=72.0)  # then unreported messages expire
POLL_AFTER = env.float("POLL_AFTER", default=120.0)  # poll pull APIs for reports this long after sending
POLL_INTERVAL = env.float("POLL_INTERVAL", default=300.0)
CALLBACK_SETTLE = env.float("CALLBACK_SETTLE", default=600.0)  # Devino: wait this long for reports of a lost frame
# MOBtexting, Hyber: after a lost answer, "not found" means never received only this long after (a vendor slower
# than PROVIDER_HTTP_TIMEOUT may still be taking the request); until then the frame waits instead of resending.
LOOKUP_SETTLE = env.float("LOOKUP_SETTLE", default=90.0)
STATUS_APPLY_BATCH = env.int("STATUS_APPLY_BATCH", default=5000)
STATUS_APPLY_CONNECTIONS = env.int("STATUS_APPLY_CONNECTIONS", default=2)  # report appliers side by side
# Audiences over this many contact ids are materialised in PREPARE_CONNECTIONS shares side by side.
PREPARE_CONNECTIONS = env.int("PREPARE_CONNECTIONS", default=2)
# A prepared campaign's stored cost measures each recipient's personalised text up to this many; beyond, a sample
# of as many, scaled (the composer's estimate before launch measures all of them).
PREPARE_COST_SAMPLE = env.int("PREPARE_COST_SAMPLE", default=20_000)
PREPARE_SPLIT_MIN_CONTACTS = env.int("PREPARE_SPLIT_MIN_CONTACTS", default=20000)
# Promotional traffic only inside this window (local time of the zone), per account kind; the
# account's options["promo_window"] overrides it. Launches outside it are deferred to the next opening.
PROMOTIONAL_WINDOWS = {
    "default": {"start": "09:00", "end": "21:00", "tz": "Asia/Kolkata", "days": [0, 1, 2, 3, 4, 5, 6]},
    "octopush": {"start": "08:00", "end": "20:30", "tz": "Europe/Paris", "days": [0, 1, 2, 3, 4, 5]},
}
# A transactional send's Idempotency-Key answers retries this long; then it is forgotten and may send anew.
IDEMPOTENCY_KEY_RETENTION_HOURS = env.float("IDEMPOTENCY_KEY_RETENTION_HOURS", default=24.0)
IDENTICAL_TEXT_LIMIT_PER_HOUR = 6  # MOBtexting/TRAI: identical texts from one sender to one number

# --- Imports (contacts.imports) -------------------------------------------------------------------
IMPORT_MAX_FILE_MB = env.float("IMPORT_MAX_FILE_MB", default=200.0)  # an upload over this is refused
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=1_000_000)  # a file of more rows is refused before merging
IMPORT_CHUNK_SIZE = env.int("IMPORT_CHUNK_SIZE", default=20_000)  # rows a transaction (and a progress step)
IMPORT_MERGE_CONNECTIONS = env.int("IMPORT_MERGE_CONNECTIONS", default=2)  # chunks merged side by side

# --- Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# A task left unacknowledged by a killed worker goes back to the queue after this long.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=300)}
# The admin and /healthz?background=1 raise the alarm when beat's heartbeat (every 30 s) has not been sent or run by a
# worker for this many seconds: scheduled campaigns are not starting and running ones not sending.
BACKGROUND_STALE_AFTER = env.float("BACKGROUND_STALE_AFTER", default=180.0)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

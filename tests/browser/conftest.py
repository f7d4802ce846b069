"""Browser tests: the admin in headless Chromium (Playwright for Python), against the whole stack.

Herald runs in its own gunicorn process on the test database (`web_server`), a real Celery worker sends
(`celery_worker`), the provider sandbox answers and reports delivery (`sandbox`). The browser logs in through the
login page as a superuser created in the test database.

Debian's Chromium (/usr/bin/chromium) is required: without it these tests are skipped with a clear reason, and the
end of the run says so; with HERALD_REQUIRE_BROWSER=1 (as .ci/run sets) a missing browser fails them instead.

Every `steps("what")` block saves a screenshot to tests/artifacts/<test>/<nn>-<what>.png; the folder is kept only
when the test fails (or with HERALD_KEEP_SCREENSHOTS=1), so a failure shows each step that led to it.
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

from django.contrib.auth import get_user_model
from django.db import connection

from contacts.models import Tag
from providers.models import DltTemplate, ProviderAccount, Sender
from providers.sandbox.client import SandboxClient
from providers.services import provider_account_setup
from tests.conftest import ENGINE_TEST_SETTINGS, ROOT
from tests.factories import CREDENTIALS

CHROMIUM = Path(os.environ.get("HERALD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
ARTIFACTS = ROOT / "tests" / "artifacts"
USERNAME, PASSWORD = "staff-admin", "browser-test-password-1"
DLT_ENTITY = "1101234567890123456"
MISSING_BROWSER = (
    f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium` to run the browser tests"
)


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say plainly when the browser tests did not run, so that a green `make test` is not mistaken for a full one."""
    here = Path(__file__).parent.resolve()
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if (config.rootpath / report.nodeid.split("::")[0]).resolve().is_relative_to(here)
    ]
    if skipped:
        terminalreporter.write_sep("!", "BROWSER TESTS DID NOT RUN", yellow=True, bold=True)
        terminalreporter.write_line(
            f"{len(skipped)} browser test(s) skipped: {MISSING_BROWSER}. "
            "CI (.ci/run) installs it and sets HERALD_REQUIRE_BROWSER=1, which turns a missing browser into a failure."
        )


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not CHROMIUM.exists():
        if os.environ.get("HERALD_REQUIRE_BROWSER") == "1":
            pytest.fail(f"HERALD_REQUIRE_BROWSER=1 but {MISSING_BROWSER}.", pytrace=False)
        pytest.skip(MISSING_BROWSER)
    return str(CHROMIUM)


@pytest.fixture(autouse=True)
def _browser_first(chromium_path):
    """Skip (or fail) before any server starts when there is no browser."""


@pytest.fixture
def media_root(web_server, session_media):
    """Uploads and error reports: the session's media folder, shared with the web and worker processes."""
    return session_media


@pytest.fixture
def stack(media_root, settings, web_server, celery_worker, sandbox):
    """The whole product: web (gunicorn), worker, sandbox with fast delivery reports (90 % delivered)."""
    settings.HERALD_PUBLIC_URL = web_server.url
    for name, value in ENGINE_TEST_SETTINGS.items():
        setattr(settings, name, value)
    sandbox.configure(dlr_delay=0.3, dlr_jitter=0.1, dlr_mix={"delivered": 0.9, "undelivered": 0.1})
    return web_server


@pytest.fixture
def staff_user(transactional_db):
    return get_user_model().objects.create_superuser(USERNAME, email="staff@herald.local", password=PASSWORD)


@pytest.fixture
def page(request, chromium_path, web_server, staff_user, monkeypatch):
    """A logged-in admin page in headless Chromium, on the test's web server."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
    context = browser.new_context(
        base_url=web_server.url, viewport={"width": 1400, "height": 1000}, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.on("console", lambda message: message.type == "error" and errors.append(f"{page.url}: {message.text}"))
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#herald-dashboard")
    page.js_errors = errors
    try:
        yield page
    finally:
        context.close()
        browser.close()
        playwright.stop()


class Steps:
    """`with steps("compose"):` saves a screenshot of the page once the step is done, or when it fails."""

    def __init__(self, page, directory: Path):
        self.page = page
        self.directory = directory
        self.count = 0

    @contextmanager
    def __call__(self, name: str):
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        try:
            yield
        except BaseException:
            self._shoot(f"{self.count:02d}-{slug}-FAILED")
            errors = getattr(self.page, "js_errors", [])
            if errors:
                (self.directory / "browser-errors.txt").write_text("\n".join(errors))
            raise
        self._shoot(f"{self.count:02d}-{slug}")

    def _shoot(self, name: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self.page.screenshot(path=str(self.directory / f"{name}.png"), full_page=True)
        except Exception as exc:  # a dead page must not hide the test's own failure
            (self.directory / f"{name}.txt").write_text(f"no screenshot: {exc}")


@pytest.fixture
def steps(request, page):
    directory = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(directory, ignore_errors=True)
    recorder = Steps(page, directory)
    yield recorder
    report = getattr(request.node, "report_call", None)
    if report is not None and report.passed and os.environ.get("HERALD_KEEP_SCREENSHOTS") != "1":
        shutil.rmtree(directory, ignore_errors=True)


# --- Data the browser works on -----------------------------------------------------------------------------------


def sandbox_account(sandbox, kind: str = "mobtexting", **fields) -> ProviderAccount:
    """An account of `kind` on the sandbox, set up as `make run` does, with an approved sender HERALD."""
    fields = {
        "name": f"{kind.capitalize()} sandbox", "base_url": sandbox.base_url(kind), "channels": ["sms"],
        "credentials": dict(CREDENTIALS[kind]), "options": {"client_id": "herald-test"} if kind == "hyber" else {},
        "price_per_part": "0.01", **fields,
    }  # fmt: skip
    account = ProviderAccount.objects.create(kind=kind, **fields)
    SandboxClient(sandbox.url).console_settings(account)
    provider_account_setup(account=account)
    Sender.objects.create(
        account=account, name="HERALD", service="T", status="approved",
        country="IN" if kind == "mobtexting" else "", dlt_entity_id=DLT_ENTITY if kind == "mobtexting" else "",
    )  # fmt: skip
    return account


def dlt_template(account: ProviderAccount, body: str = "Hello {#var#}, your code is {#var#}. - Herald") -> DltTemplate:
    template = DltTemplate.objects.create(
        account=account, name="Greeting", dlt_template_id=f"1107{account.pk:015d}", body=body
    )
    template.senders.set(account.senders.all())
    return template


def contacts_tagged(count: int, tag_name: str, start: int = 0) -> Tag:
    """`count` contacts with valid Indian mobiles and first names, all carrying one tag, written set-based."""
    tag, _ = Tag.objects.get_or_create(name=tag_name)
    with connection.cursor() as cursor:
        cursor.execute(
            """WITH added AS (
                   INSERT INTO contacts_contact (phone, first_name)
                   SELECT '+9199' || lpad((%s + n)::text, 8, '0'), 'Guest ' || n FROM generate_series(1, %s) n
                   ON CONFLICT (phone) DO UPDATE SET phone = EXCLUDED.phone RETURNING id)
               INSERT INTO contacts_contacttag (contact_id, tag_id) SELECT id, %s FROM added ON CONFLICT DO NOTHING""",
            [start, count, tag.pk],
        )
        # Statistics as autovacuum would keep them. A test database's tables are emptied between tests, and their
        # statistics can then say "no rows" while a test holds thousands it has not committed (autovacuum cannot
        # see them): a bulk untag of 12,000 contacts was then planned as nested loops over both tables and ran for
        # over 15 minutes in CI. ANALYZE in this transaction counts its own rows.
        cursor.execute("ANALYZE contacts_contact, contacts_contacttag")
    return tag


def pick(page, where, text: str) -> None:
    """Choose `text` in the admin autocomplete (select2) field inside `where` (a selector or a locator)."""
    root = page.locator(where) if isinstance(where, str) else where
    root.locator(".select2-selection").click()
    page.keyboard.type(text)
    page.locator(".select2-results__option", has_text=text).first.click()


def assert_list_fits(page, cell: str) -> None:
    """The admin list on `page` needs no sideways scroll, and its first row's `cell` (a selector inside the row) is
    inside the list's box, in sight."""
    sizes = page.evaluate(
        """(cell) => {
            const results = document.querySelector('#changelist .results');
            const shown = document.querySelector('#result_list tbody tr ' + cell);
            return {scroll: results.scrollWidth, width: results.clientWidth,
                    cellRight: shown.getBoundingClientRect().right,
                    resultsRight: results.getBoundingClientRect().right};
        }""",
        cell,
    )
    assert sizes["scroll"] <= sizes["width"], sizes
    assert sizes["cellRight"] <= sizes["resultsRight"] + 1, sizes

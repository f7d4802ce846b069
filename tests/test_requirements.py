"""`make run` installs requirements.txt alone; the suite runs with requirements-dev.txt on top, which pulls in
more (pytest brings `packaging`, for one). So a module the product imports that only the dev tools happen to
install passes every test and breaks `make run` on a fresh machine, as kombu's Redis transport did, importing
`packaging` without declaring it. This test boots what the web, worker and beat processes import with every
module of the other installed distributions hidden, as in a venv that has requirements.txt alone (optional
imports, such as celery's of greenlet, then fall back as they would there)."""

import importlib.metadata as metadata
import json
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

# What the processes `make run` starts import before serving: Django and the URLs (web), the Celery app with
# its tasks, the worker and beat, the Redis transport the broker URL selects, gunicorn (production's server).
BOOT = """
import importlib.abc, json, sys

HIDDEN = set(json.loads(sys.argv[1]))


class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r} (not installed by requirements.txt)", name=name)
        return None


sys.meta_path.insert(0, Hide())
import django
django.setup()
import config.urls, config.wsgi
from config.celery import app
app.loader.import_default_modules()
import celery.apps.worker, celery.apps.beat, django_celery_beat.schedulers, kombu.transport.redis
import gunicorn.app.wsgiapp
"""


def runtime_distributions() -> set[str]:
    """requirements.txt and everything its distributions require (for this Python and the extras asked)."""
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    todo, extras_of = [Requirement(line) for line in lines if line], {}
    while todo:
        requirement = todo.pop()
        name, extras = canonicalize_name(requirement.name), set(requirement.extras)
        if name in extras_of and extras <= extras_of[name]:
            continue
        extras_of[name] = extras_of.get(name, set()) | extras
        for dependency in map(Requirement, metadata.distribution(name).requires or []):
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras_of[name] or {""}):
                todo.append(dependency)
    return set(extras_of)


def test_the_processes_boot_with_only_what_requirements_txt_installs():
    runtime = runtime_distributions()
    hidden = sorted(
        module
        for module, distributions in metadata.packages_distributions().items()
        if not {canonicalize_name(d) for d in distributions} & runtime
    )
    booted = subprocess.run(
        [sys.executable, "-c", BOOT, json.dumps(hidden)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert booted.returncode == 0, booted.stderr[-2000:]

"""A real stateful app, end to end over SSH: a small Python web service built from git that
counts visits in Redis and keeps notes in PostgreSQL, both reached through ``expose``, both
with volumes and healthchecks. The images are Debian's own packages (.ci/real-images), so
what is shown is what Redis and PostgreSQL really do: their data survives ``destroy`` and a
new deploy (they were stopped, not killed: no crash recovery), a rollback that left two tags
on one image survives ``prune``, a dump piped into ``psql`` is restored, and ``status`` shows
every service healthy."""

import json
import subprocess
import time
import urllib.request

import pytest

from support import docker, inspect

APP = '''\
"""Counts visits in Redis (GET /), keeps notes in PostgreSQL (POST / adds one)."""
import contextlib, json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import psycopg2, redis

VERSION = "{version}"
visits = redis.Redis.from_url(os.environ["REDIS_URL"])


def notes(added=None):
    with contextlib.closing(psycopg2.connect(os.environ["DATABASE_URL"])) as db, db, db.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, text text NOT NULL)")
        if added is not None:
            cursor.execute("INSERT INTO notes (text) VALUES (%s)", (added,))
        cursor.execute("SELECT text FROM notes ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            return self.reply({{"ok": True}})
        self.reply({{"visits": visits.incr("visits"), "notes": notes(), "greeting": os.environ["GREETING"],
                    "version": VERSION}})

    def do_POST(self):
        self.reply({{"notes": notes(self.rfile.read(int(self.headers["Content-Length"])).decode())}})

    def reply(self, document):
        body = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("", 8000), Handler).serve_forever()
'''

DOCKERFILE = 'FROM local/python:latest\nCOPY app.py /app/app.py\nCMD ["python3", "-u", "/app/app.py"]\n'

TEMPLATE = """\
Vars: {greeting: hello}
redis:
  image: local/redis
  cmd: [redis-server, --protected-mode, "no", --dir, /data]
  volumes: [/data]
  register: {6379: redis}
  healthcheck: {cmd: "redis-cli ping | grep -q PONG", interval: 1s, start_period: 60s}
  stop_timeout: 30
db:
  image: local/postgres
  volumes: [/var/lib/postgresql/data]
  env: {POSTGRES_PASSWORD: {secret: DB_PASSWORD}, POSTGRES_DB: "{instance}"}
  register: {5432: sql}
  healthcheck: {cmd: "pg_isready -q -h 127.0.0.1", interval: 1s, start_period: 120s}
  stop_timeout: 30
web:
  git: .
  env: {GREETING: "{greeting}", PGPASSWORD: {secret: DB_PASSWORD}}
  register: {8000: http}
  ports: ["127.0.0.1::8000"]
  expose:
    "redis:redis": {env: REDIS_URL, format: "redis://{host}:{port}/0"}
    "db:sql": {env: DATABASE_URL, format: "postgresql://postgres@{host}:{port}/{instance}"}
  healthcheck: {cmd: "python3 -c 'import urllib.request as u; u.urlopen(\\"http://127.0.0.1:8000/health\\")'",
                interval: 1s, start_period: 60s}
"""

# secrets and settings of every deployer command here: PostgreSQL's first start (initdb)
# takes a while on a loaded machine
ENV = {"DB_PASSWORD": "pg-s3cret'$(not run)", "FABRIC_DEPLOYER_HEALTH_TIMEOUT": "180"}
CRASH_RECOVERY = ("not properly shut down", "automatic recovery in progress")


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   check=True, capture_output=True)


def commit(repo, version):
    (repo / "app.py").write_text(APP.format(version=version))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", version)


@pytest.fixture
def repo(tmp_path, real_images):
    """The app's git repository: its code, Dockerfile and template, at version one."""
    root = tmp_path / "shop"
    root.mkdir()
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "deploy.yaml").write_text(TEMPLATE)
    git(root, "init", "-q")
    commit(root, "one")
    return root


@pytest.fixture
def shop(deployer_cli, repo, unique_instance):
    """run(*args) of deployer with the app's secrets and settings, once the app is deployed."""

    def run(*args, **kwargs):
        return deployer_cli(*args, env=ENV, **kwargs)

    run("deploy", repo / "deploy.yaml", "--instance", unique_instance, check=True)
    yield run
    run("destroy", unique_instance, "--volumes", "--yes")


def web(run, instance, method="GET", data=None):
    """The web service's answer, at the port the host publishes it on (its endpoint is on
    the instance's private network only)."""
    published = docker("port", f"{instance}.web", "8000").stdout.split()[0]
    url = f"http://{published}/"
    request = urllib.request.Request(url, data=data, method=method)
    for _ in range(50):  # it listens a moment after it was found healthy elsewhere
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the web service never answered")


def test_redis_keys_and_postgres_rows_survive_destroy_and_a_new_deploy_without_crash_recovery(shop, repo,
                                                                                             unique_instance):
    web(shop, unique_instance, "POST", b"first note")
    web(shop, unique_instance)
    before = web(shop, unique_instance)

    shop("destroy", unique_instance, check=True)
    assert not docker("ps", "-aq", "--filter", f"label=deployer.instance={unique_instance}").stdout.strip()
    shop("deploy", repo / "deploy.yaml", "--instance", unique_instance, check=True)
    after = web(shop, unique_instance)

    assert (before["visits"], before["notes"], before["greeting"]) == (2, ["first note"], "hello")
    assert (after["visits"], after["notes"]) == (3, ["first note"])  # Redis wrote its dump when stopped
    log = shop("logs", unique_instance, "--service", "db", check=True).stdout
    assert "database system was shut down at" in log
    assert not any(words in log for words in CRASH_RECOVERY), log


def test_prune_after_a_rollback_that_left_two_tags_on_one_image_keeps_the_running_image_and_run_works(
        shop, repo, unique_instance):
    commit(repo, "two")
    shop("deploy", repo / "deploy.yaml", "--instance", unique_instance, check=True)
    git(repo, "revert", "--no-edit", "HEAD")  # the first version's tree: its image again, under a new tag
    shop("deploy", repo / "deploy.yaml", "--instance", unique_instance, check=True)
    shop("rollback", unique_instance, "--to", "1", check=True)
    image = inspect(f"{unique_instance}.web", "{{.Image}}")
    tags = docker("image", "inspect", "--format", '{{join .RepoTags " "}}', image).stdout.split()
    assert len(tags) == 2 and inspect(f"{unique_instance}.web", "{{.Config.Image}}") in tags

    pruned = shop("prune", unique_instance, check=True).stdout

    assert "pruned 1 image built for" in pruned and not any(tag in pruned for tag in tags)
    one_off = shop("run", unique_instance, "web", "--", "python3", "-c",
                   "import psycopg2, redis; print(open('/app/app.py').read().count('VERSION = \"one\"'))")
    assert (one_off.returncode, one_off.stdout) == (0, "1\n"), one_off.stderr
    assert web(shop, unique_instance)["version"] == "one"
    assert "is up to date" in shop("redeploy", unique_instance, check=True).stdout


def test_a_sql_dump_piped_into_exec_psql_is_restored(shop, tmp_path, unique_instance):
    dump = ("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, text text NOT NULL);\n"
            + "".join(f"INSERT INTO notes (text) VALUES ('restored note {n} – ünïcode');\n" for n in range(2000)))
    (tmp_path / "dump.sql").write_text(dump)

    with open(tmp_path / "dump.sql") as stdin:
        restored = shop("exec", unique_instance, "db", "--", "psql", "-v", "ON_ERROR_STOP=1", "-q", "-d",
                        unique_instance, stdin=stdin)
    counted = shop("exec", unique_instance, "db", "--", "psql", "-tA", "-d", unique_instance,
                   input="select count(*) from notes;\n")

    assert restored.returncode == 0, restored.stderr
    assert (counted.returncode, counted.stdout) == (0, "2000\n"), counted.stderr
    assert web(shop, unique_instance)["notes"][-1] == "restored note 1999 – ünïcode"


def test_status_shows_every_service_running_and_healthy(shop, unique_instance):
    status = json.loads(shop("status", unique_instance, "--json", check=True).stdout)
    table = shop("status", unique_instance, check=True).stdout

    assert {(s["service"], s["state"], s["health"]) for s in status["services"]} == {
        ("redis", "running (healthy)", "healthy"), ("db", "running (healthy)", "healthy"),
        ("web", "running (healthy)", "healthy")}
    assert table.count("running (healthy)") == 3

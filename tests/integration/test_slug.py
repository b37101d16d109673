"""Apps without a Dockerfile built as buildpack slugs on the host, run by the slug runner.

The stand-in builder and runner (.ci/slug-images) follow the Heroku-ish contract; the
tests point deployer's settings at them (FABRIC_DEPLOYER_SLUG_*, or a fabric.yaml).
"""

import json
import os
import re
import subprocess
import time

import pytest

from support import containers_of, docker, inspect

PROCFILE = "web: httpd -f -p 8080 -h /app/www\nworker: sleep 3600\n"


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path):
    """A git repo whose app (in app/) has a Procfile and no Dockerfile, a template at its top."""
    root = tmp_path / "repo"
    (root / "app" / "www").mkdir(parents=True)
    (root / "app" / "Procfile").write_text(PROCFILE)
    (root / "app" / "www" / "index.html").write_text("one\n")
    (root / "deploy.yaml").write_text("web:\n  git: app\n  cmd: web\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "one")
    return root


@pytest.fixture
def deploy(deployer_cli, repo, unique_instance, slug_images):
    """deploy(*flags, quiet=False, env=None, check=None) of the repo's template as the test's
    instance; ``quiet``: deployer's -q."""
    def run(*flags, quiet=False, env=None, check=None):
        return deployer_cli(*["-q"] * quiet, "deploy", repo / "deploy.yaml", "--instance", unique_instance, *flags,
                            env={**slug_images, **(env or {})}, check=check)
    run.env = slug_images
    return run


def served(instance, page="index.html"):
    """The page as the web process serves it, fetched from inside its container."""
    result = docker("exec", f"{instance}.web", "wget", "-qO-", f"http://127.0.0.1:8080/{page}")
    assert result.returncode == 0, result.stderr
    return result.stdout


def commit(repo, text):
    (repo / "app" / "www" / "index.html").write_text(text)
    git(repo, "commit", "-qam", text)


def instance_dir(sshd, instance):
    return sshd.state_dir / "instances" / instance


def test_a_procfile_app_runs_its_web_process_from_a_slug_built_once_per_commit(deploy, repo, sshd, unique_instance):
    first = deploy(check=True)

    assert served(unique_instance) == "one\n"
    sha = git(repo, "rev-parse", "HEAD").strip()
    image = inspect(f"{unique_instance}.web", "{{.Config.Image}}")
    assert image.startswith(f"deployer/{unique_instance}/web:{sha[:12]}-") and "create  web" in first.stdout
    assert json.loads(inspect(f"{unique_instance}.web", "{{json .Args}}"))[-2:] == ["start", "web"]
    # the builder's cache is the instance's; the work directory is gone
    assert sorted(p.name for p in (instance_dir(sshd, unique_instance) / "cache").iterdir()) == ["web"]
    assert not list(instance_dir(sshd, unique_instance).glob("build*"))

    again = deploy(check=True)
    assert "is up to date" in again.stdout and "web | " not in again.stderr

    commit(repo, "two\n")
    third = deploy(check=True)

    assert served(unique_instance) == "two\n"
    assert f"recreate  web      image {image} -> deployer/{unique_instance}/web:" in third.stdout
    assert "web | -----> Cached builds: 2" in third.stderr  # the cache survived the first build


def test_rollback_and_redeploy_run_the_slug_images_again(deploy, deployer_cli, repo, unique_instance):
    deploy(check=True)
    commit(repo, "two\n")
    deploy(check=True)

    deployer_cli("rollback", unique_instance, check=True)
    assert served(unique_instance) == "one\n"

    deployer_cli("redeploy", unique_instance, "--force", check=True)
    assert served(unique_instance) == "one\n"
    assert json.loads(inspect(f"{unique_instance}.web", "{{json .Args}}"))[-2:] == ["start", "web"]


def test_build_output_streams_to_stderr_prefixed_with_the_service_and_q_silences_it(deploy, repo):
    loud = deploy(check=True)

    lines = loud.stderr.splitlines()
    assert "web | -----> Procfile app detected" in lines
    assert any(re.match(r"web \| Step 1/\d : FROM local/slugrunner", line) for line in lines)
    assert lines.index("web | -----> Procfile app detected") < lines.index("web | -----> Compiled slug")
    assert "web |" not in loud.stdout

    commit(repo, "two\n")
    quiet = deploy(quiet=True, check=True)
    assert quiet.stdout == "" and quiet.stderr == ""


def test_verbose_shows_the_builds_docker_commands_and_leaves_nothing_in_tmp(deploy, deployer_cli, repo,
                                                                           unique_instance):
    before = set(os.listdir("/tmp"))
    loud = deployer_cli("-v", "deploy", repo / "deploy.yaml", "--instance", unique_instance,
                        env=deploy.env, check=True)

    assert "$ docker run --rm -i -a stdin -a stdout -a stderr --network deployer-" in loud.stderr
    assert f"$ docker build --force-rm --label deployer.instance={unique_instance} -t deployer/{unique_instance}/web:" \
        in loud.stderr
    assert "web | -----> Compiled slug" in loud.stderr
    assert served(unique_instance) == "one\n"
    assert {n for n in set(os.listdir("/tmp")) - before if n.startswith("tmp.")} == set()  # mktemp's: none left


def test_a_process_type_missing_from_the_procfile_is_refused_before_the_host(deploy, repo, sshd, unique_instance):
    (repo / "deploy.yaml").write_text("web:\n  git: app\n  cmd: wbe\n")

    result = deploy()

    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "deploy.yaml: web.cmd: 'wbe' is not a process type of the Procfile in app" in result.stderr
    assert "(known: web, worker)" in result.stderr
    assert not containers_of(unique_instance) and not instance_dir(sshd, unique_instance).exists()


def test_an_app_with_neither_dockerfile_nor_procfile_is_refused_by_name(deploy, repo, sshd, unique_instance):
    git(repo, "rm", "-q", "app/Procfile")
    git(repo, "commit", "-qm", "no Procfile")

    result = deploy()

    assert result.returncode == 2
    assert "web.git: nothing to build in app at" in result.stderr and "there is neither" in result.stderr
    assert not instance_dir(sshd, unique_instance).exists()


def test_a_missing_builder_image_is_named_and_the_running_version_stays(deploy, deployer_cli, repo, tmp_path,
                                                                       unique_instance):
    deploy(check=True)
    running = inspect(f"{unique_instance}.web", "{{.Id}}")
    commit(repo, "two\n")
    (tmp_path / "fabric.yaml").write_text(  # the project's settings, this time
        "deployer:\n  slug:\n    builder_image: local/no-such-builder\n    runner_image: local/slugrunner\n")

    result = deployer_cli("deploy", repo / "deploy.yaml", "--instance", unique_instance, cwd=tmp_path)

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(
        "failed: the slug builder image local/no-such-builder is not on the host "
        "(setting deployer.slug.builder_image; pull or build it there)"
    )
    assert inspect(f"{unique_instance}.web", "{{.Id}}") == running
    assert served(unique_instance) == "one\n"


def test_a_failed_slug_build_shows_the_builders_last_lines_and_changes_nothing(deploy, repo, sshd, unique_instance):
    deploy(check=True)
    running = inspect(f"{unique_instance}.web", "{{.Id}}")
    (repo / "app" / ".build").write_text("echo compiling\necho 'app.c:3: syntax error' >&2\nexit 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "broken")

    result = deploy(quiet=True)

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "build of web (" in result.stderr and "app.c:3: syntax error | slugbuilder: .build failed" in result.stderr
    assert inspect(f"{unique_instance}.web", "{{.Id}}") == running
    assert not list(instance_dir(sshd, unique_instance).glob("build*"))


def test_dirty_deploys_the_work_tree_and_says_so_in_the_version(deploy, repo, unique_instance):
    deploy(check=True)
    (repo / "app" / "www" / "index.html").write_text("uncommitted\n")
    (repo / "app" / "www" / "new.html").write_text("untracked\n")
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "app" / "www" / "debug.log").write_text("ignored\n")
    status = git(repo, "status", "--porcelain")

    left_out = deploy(check=True)
    assert "warning: web: uncommitted changes" in left_out.stderr and "--dirty deploys them" in left_out.stderr
    assert served(unique_instance) == "one\n"

    dirty = deploy("--dirty", check=True)

    sha = git(repo, "rev-parse", "HEAD").strip()
    assert inspect(f"{unique_instance}.web", "{{.Config.Image}}").startswith(
        f"deployer/{unique_instance}/web:{sha[:12]}-dirty-")
    assert served(unique_instance) == "uncommitted\n" and served(unique_instance, "new.html") == "untracked\n"
    assert docker("exec", f"{unique_instance}.web", "test", "-e", "/app/www/debug.log").returncode != 0
    assert "warning" not in dirty.stderr
    assert git(repo, "status", "--porcelain") == status  # the repo's own index is untouched
    assert "is up to date" in deploy("--dirty", check=True).stdout


def test_a_builder_that_stops_reading_fails_with_its_own_message_and_changes_nothing(deploy, repo, unique_instance):
    deploy(check=True)
    running = inspect(f"{unique_instance}.web", "{{.Id}}")
    (repo / "app" / "www" / "big.bin").write_bytes(os.urandom(8 * 1024 * 1024))  # more than the SSH window holds
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "big")

    result = deploy(env={"FABRIC_DEPLOYER_SLUG_BUILDER_IMAGE": "local/busybox:latest"})  # runs `-`: no such command

    assert result.returncode == 1 and "Traceback" not in result.stderr and "SSH" not in result.stderr
    assert "build of web (" in result.stderr and 'exec: "-": executable file not found' in result.stderr
    assert inspect(f"{unique_instance}.web", "{{.Id}}") == running


def test_build_output_arrives_while_the_build_runs(deployer_started, repo, slug_images, unique_instance):
    (repo / "app" / ".build").write_text("echo compiling step one\nsleep 3\necho compiling step two\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "slow build")
    proc = deployer_started("deploy", repo / "deploy.yaml", "--instance", unique_instance, env=slug_images)

    seen = {}
    for line in proc.stderr:  # the user's terminal, as it were
        seen.setdefault(line.rstrip("\n"), time.monotonic())
    proc.wait(timeout=120)

    assert proc.returncode == 0
    assert seen["web | compiling step two"] - seen["web | compiling step one"] >= 2


def test_the_slug_builder_runs_on_the_instances_private_network(deploy, repo, unique_instance, other_instance,
                                                                deployer_cli, tmp_path):
    """Its compile step reaches the instance's services by their names, and no other
    instance's (issue 21: builds' run steps join the instance's network)."""
    (tmp_path / "db.yaml").write_text("db: {image: local/busybox, cmd: sleep 3600}\n")
    for instance in (unique_instance, other_instance):
        deployer_cli("deploy", tmp_path / "db.yaml", "--instance", instance, check=True)
    (repo / "deploy.yaml").write_text("web:\n  git: app\n  cmd: web\ndb: {image: local/busybox, cmd: sleep 3600}\n")
    probe = "for n in db.{0} db.{1}; do if nslookup $n >/dev/null 2>&1; then echo \"$n: found\"; else echo \"$n: unknown\"; fi; done\n"
    (repo / "app" / ".build").write_text(probe.format(unique_instance, other_instance))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "probe")

    built = deploy(check=True)

    assert f"web | db.{unique_instance}: found" in built.stderr
    assert f"web | db.{other_instance}: unknown" in built.stderr

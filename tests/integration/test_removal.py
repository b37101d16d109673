"""Removing things on a real engine: containers go gracefully (a service's shutdown work is
done), and prune never takes the image a container runs, even with two tags on one id."""

import subprocess

import pytest

from support import docker, inspect

# A service that writes a file into its volume when it is stopped (SIGTERM), as a database
# writes its dump or checkpoint; killed, it writes nothing.
GRACEFUL = """\
{name}:
  image: local/busybox
  cmd: ["sh", "-c", "trap 'echo stopped gracefully > /data/shutdown; exit 0' TERM; while true; do sleep 1; done"]
  volumes: [/data]
"""


def shutdown_file(sshd, instance, service):
    """What the service wrote at shutdown into its volume (None: nothing)."""
    found = list((sshd.volume_dir / instance / service).glob("*/shutdown"))
    return found[0].read_text() if found else None


def test_destroy_stops_each_container_gracefully_so_its_shutdown_work_is_kept(deployer_cli, sshd, tmp_path,
                                                                             unique_instance):
    template = tmp_path / "app.yaml"
    template.write_text(GRACEFUL.format(name="db"))
    deployer_cli("deploy", template, "--instance", unique_instance, check=True)

    deployer_cli("destroy", unique_instance, check=True)

    assert shutdown_file(sshd, unique_instance, "db") == "stopped gracefully\n"


def test_a_service_removed_from_the_template_is_stopped_gracefully(deployer_cli, sshd, tmp_path, unique_instance):
    template = tmp_path / "app.yaml"
    template.write_text(GRACEFUL.format(name="db") + GRACEFUL.format(name="cache"))
    deployer_cli("deploy", template, "--instance", unique_instance, check=True)
    template.write_text(GRACEFUL.format(name="db"))

    result = deployer_cli("deploy", template, "--instance", unique_instance, check=True)

    assert "remove  cache" in result.stdout
    assert shutdown_file(sshd, unique_instance, "cache") == "stopped gracefully\n"
    assert shutdown_file(sshd, unique_instance, "db") is None  # kept: it still runs


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   check=True, capture_output=True)


@pytest.fixture
def reverted(deployer_cli, tmp_path, unique_instance):
    """An app deployed three times from git: one, two, then a revert of two, whose build is
    the first one again (the same image id, under a second tag)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Dockerfile").write_text('FROM local/busybox:latest\nCOPY version /version\nCMD ["sleep", "3600"]\n')
    (repo / "version").write_text("one\n")
    (repo / "deploy.yaml").write_text("web:\n  git: .\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "one")
    deployer_cli("deploy", repo / "deploy.yaml", "--instance", unique_instance, check=True)
    (repo / "version").write_text("two\n")
    git(repo, "commit", "-qam", "two")
    deployer_cli("deploy", repo / "deploy.yaml", "--instance", unique_instance, check=True)
    git(repo, "revert", "--no-edit", "HEAD")
    deployer_cli("deploy", repo / "deploy.yaml", "--instance", unique_instance, check=True)
    return repo


def test_prune_after_a_rollback_keeps_both_tags_of_the_running_image_and_run_works(deployer_cli, reverted,
                                                                                  unique_instance):
    deployer_cli("rollback", unique_instance, "--to", "1", check=True)
    running = inspect(f"{unique_instance}.web", "{{.Config.Image}}")
    image_id = inspect(f"{unique_instance}.web", "{{.Image}}")
    tags = docker("image", "inspect", "--format", "{{join .RepoTags \" \"}}", image_id).stdout.split()
    assert running in tags and len(tags) == 2, tags  # the situation: two tags on the running image

    pruned = deployer_cli("prune", unique_instance, check=True).stdout

    assert "pruned 1 image built for" in pruned  # release 2's build, which nothing uses
    assert not any(tag in pruned for tag in tags)
    kept = docker("image", "inspect", "--format", "{{join .RepoTags \" \"}}", image_id).stdout.split()
    assert sorted(kept) == sorted(tags)
    result = deployer_cli("run", unique_instance, "web", "--", "cat", "/version")
    assert (result.returncode, result.stdout) == (0, "one\n"), result.stderr
    assert "is up to date" in deployer_cli("redeploy", unique_instance, check=True).stdout

"""Release commands and hooks (issue 18), over the test sshd and the real Docker engine: a
migration-like ``release`` that writes a row to a volume, the old container serving on
while a failing one stops the deploy, and hooks on this machine around the deploy, the
post hook while the host still holds the instance's lock."""

import json
import threading
import time
import urllib.request

import pytest
from harness.poll import wait_for
from support import docker, finish, many

SHOP = """\
Hooks:
  post-deploy: 'echo "$DEPLOYER_RESULT $DEPLOYER_CHANGED" >> post.log; env > env.log; while [ ! -e go ]; do sleep 0.1; done'
web:
  image: local/busybox
  cmd: [sh, -c, 'echo "serving v$V" > /data/index.html; exec httpd -f -p 8080 -h /data']
  volumes: [/data]
  ports: ["127.0.0.1::8080"]
  env: {V: "1", PW: {secret: PW}}
  release: [sh, -c, 'echo row >> /data/rows; echo "migrated: $(wc -l < /data/rows) rows"; exit $FAIL']
"""
PW = "hunter2-$(touch /tmp/pwned)-'"


INSTANCE_PREFIX = "hk"


@pytest.fixture
def shop(tmp_path):
    """The template, beside it the go file its post-deploy hook waits for (present: no wait)."""
    (tmp_path / "go").touch()
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP)
    return path


def deploy(cli, template, instance, *args, fail=0, version=1, **kwargs):
    template.write_text(SHOP.replace('V: "1"', f'V: "{version}"').replace("exit $FAIL", f"exit {fail}"))
    return cli("deploy", template, "--instance", instance, *args, env={"PW": PW}, **kwargs)


def rows(instance):
    return docker("exec", f"{instance}.web", "cat", "/data/rows").stdout.count("row")


def test_a_release_runs_once_per_changed_deploy_streams_its_output_and_is_in_the_history(deployer_cli, shop,
                                                                                          unique_instance):
    first = deploy(deployer_cli, shop, unique_instance, check=True)
    noop = deploy(deployer_cli, shop, unique_instance, check=True)
    dry = deploy(deployer_cli, shop, unique_instance, "--dry-run", version=2, check=True)
    changed = deploy(deployer_cli, shop, unique_instance, "--json", version=2, check=True)

    assert "web release | migrated: 1 rows" in first.stderr and "release command of web: exit code 0" in first.stdout
    assert "release command" not in noop.stdout and "web release |" not in noop.stderr
    assert "release command of web would run: sh -c" in dry.stdout and rows(unique_instance) == 2
    document = json.loads(changed.stdout)
    assert [(r["service"], r["exit_code"]) for r in document["releases"]] == [("web", 0)]
    assert [h["name"] for h in document["hooks"]] == ["post-deploy"]
    history = json.loads(deployer_cli("history", unique_instance, "--json", check=True).stdout)["releases"]
    assert [[(r["service"], r["exit_code"]) for r in h["releases"]] for h in history] == [[("web", 0)], [("web", 0)]]
    assert all(r["seconds"] > 0 for h in history for r in h["releases"])


def test_a_failing_release_leaves_the_old_container_serving_every_request_and_the_deploy_exits_1(
        deployer_cli, shop, unique_instance):
    deploy(deployer_cli, shop, unique_instance, check=True)
    url = "http://" + docker("port", f"{unique_instance}.web", "8080").stdout.split()[0] + "/"
    answers, stop = [], threading.Event()

    def poll():  # without pause, for as long as the deploy runs
        while not stop.is_set():
            try:
                answers.append(urllib.request.urlopen(url, timeout=5).read().decode())
            except OSError as e:
                answers.append(repr(e))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        failed = deploy(deployer_cli, shop, unique_instance, version=2, fail=3)
    finally:
        stop.set()
        poller.join()

    assert failed.returncode == 1, failed.stderr
    assert "the release command of web failed (exit code 3): none of its containers was replaced" in failed.stderr
    assert "  | migrated: 2 rows" in failed.stderr  # its last lines
    assert len(answers) > 10 and set(answers) == {"serving v1\n"}
    assert (shop.parent / "post.log").read_text().splitlines()[-1].strip() == "failed"  # nothing changed
    attempt = json.loads(deployer_cli("history", unique_instance, "--json", check=True).stdout)["releases"][-1]
    assert (attempt["release"], attempt["result"], attempt["releases"][0]["exit_code"]) == (0, "failed at web", 3)


def test_a_release_that_hangs_is_ended_after_the_release_timeout(deployer_cli, shop, unique_instance):
    shop.write_text(SHOP.replace("exit $FAIL", "exec sleep 600"))
    started = time.monotonic()

    hung = deployer_cli("deploy", shop, "--instance", unique_instance,
                        env={"PW": PW, "FABRIC_DEPLOYER_RELEASE_TIMEOUT": "2"})

    assert hung.returncode == 1 and time.monotonic() - started < 30
    assert "the release command of web did not end within 2 s (deployer.release_timeout): stopped" in hung.stderr
    assert docker("ps", "-aq", "--filter", f"label=deployer.one-off={unique_instance}").stdout == ""


def test_a_failing_pre_deploy_hook_leaves_the_host_untouched(deployer_cli, shop, unique_instance, sshd):
    deploy(deployer_cli, shop, unique_instance, check=True)
    directory = sshd.state_dir / "instances" / unique_instance
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in directory.iterdir() if p.is_file()}
    checked = shop.parent / "check.yaml"
    checked.write_text(SHOP.replace("Hooks:\n", "Hooks:\n  pre-deploy: 'echo not green; exit 5'\n").replace('V: "1"', 'V: "2"'))

    refused = deployer_cli("deploy", checked, "--instance", unique_instance, env={"PW": PW})
    new = deployer_cli("deploy", checked, "--instance", unique_instance + "n", env={"PW": PW})

    assert refused.returncode == 1
    assert (f"instance {unique_instance}: {checked}: Hooks.pre-deploy: pre-deploy hook failed (exit code 5): "
            "nothing was done on the host\n  | not green") in refused.stderr
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in directory.iterdir() if p.is_file()}
    assert after == before  # lock.info names the last holder: the lock was not taken
    assert new.returncode == 1 and not (sshd.state_dir / "instances" / (unique_instance + "n")).exists()


def test_post_deploy_sees_what_changed_while_the_lock_is_held_and_no_secret(deployer_cli, deployer_started, shop,
                                                                             unique_instance):
    deploy(deployer_cli, shop, unique_instance, check=True)
    (shop.parent / "go").unlink()
    shop.write_text(SHOP.replace('V: "1"', 'V: "2"').replace("exit $FAIL", "exit 0"))
    post_log = shop.parent / "post.log"

    first = deployer_started("deploy", shop, "--instance", unique_instance, env={"PW": PW})
    wait_for(lambda: post_log.read_text().count("\n") == 2, "the post-deploy hook", timeout=60)
    refused = deployer_cli("deploy", shop, "--instance", unique_instance, "--lock-wait", "0", "--no-hooks",
                           env={"PW": PW})
    second = deployer_started("deploy", shop, "--instance", unique_instance, "--lock-wait", "60", env={"PW": PW})
    time.sleep(2)
    waited = second.poll() is None
    (shop.parent / "go").touch()

    assert finish(first)[0] == 0 and finish(second)[0] == 0
    assert post_log.read_text().splitlines() == ["ok web", "ok web"]
    assert refused.returncode == 1 and "locked by" in refused.stderr and waited
    env = (shop.parent / "env.log").read_text()
    assert "DEPLOYER_CHANGED=web" in env and f"DEPLOYER_INSTANCE={unique_instance}" in env and "hunter2" not in env


def test_with_several_hosts_each_host_runs_the_hooks_once(three_hosts, tmp_path, unique_instance):
    template = tmp_path / "app.yaml"
    template.write_text("Hooks:\n  pre-deploy: echo pre >> hooks.log\n"
                        "  post-deploy: echo \"$DEPLOYER_HOST $DEPLOYER_RESULT\" >> hooks.log\n"
                        "web: {image: local/busybox, cmd: sleep 3600}\n")
    try:
        deployed = many(three_hosts, "deploy", template, "--instance", unique_instance)
    finally:
        many(three_hosts, "destroy", unique_instance, "--volumes")

    assert deployed.returncode == 1  # the third host's engine is unreachable
    assert sorted((tmp_path / "hooks.log").read_text().splitlines()) == [
        "127.0.0.1 failed", "127.0.0.1 ok", "127.0.0.1 ok", "pre", "pre", "pre"]


def test_a_rollback_runs_fabric_yamls_rollback_hooks_and_no_release_command(deployer_cli, shop, unique_instance):
    deploy(deployer_cli, shop, unique_instance, check=True)
    deploy(deployer_cli, shop, unique_instance, version=2, check=True)
    hooks = {"FABRIC_DEPLOYER_HOOKS_PRE_ROLLBACK": "echo pre $DEPLOYER_INSTANCE > rollback.log",
             "FABRIC_DEPLOYER_HOOKS_POST_ROLLBACK": "echo post $DEPLOYER_RESULT $DEPLOYER_RELEASE >> rollback.log"}

    back = deployer_cli("rollback", unique_instance, env=hooks, cwd=shop.parent, check=True)

    assert (shop.parent / "rollback.log").read_text() == f"pre {unique_instance}\npost ok 3\n"
    assert "release command" not in back.stdout and rows(unique_instance) == 2

"""Many instances, many hosts, CI: variables, secrets, parallel hosts, JSON, a user's fabfile."""

import json
import os
import stat
import subprocess
import time

from support import APP, docker, env_of, inspect, many


def on_engine(sock, *args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, env=dict(os.environ, DOCKER_HOST=sock))


def test_three_hosts_deploy_at_once_and_a_failing_one_does_not_stop_the_others(
    three_hosts, second_engine, app, unique_instance
):
    a, b, c = three_hosts
    started = time.monotonic()
    result = many(three_hosts, "deploy", app, "--instance", unique_instance)
    parallel = time.monotonic() - started
    try:
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"== {a.target}: ok" in result.stdout and f"== {b.target}: ok" in result.stdout
        assert f"== {c.target}: FAILED" in result.stdout
        assert f"error: host {c.target}: instance {unique_instance}:" in result.stderr
        summary = result.stdout.split("HOST", 1)[1]
        assert f"{a.target}  {unique_instance}" in summary and "failed (1)" in summary
        assert inspect(f"{unique_instance}.web", "{{.State.Running}}") == "true"
        assert on_engine(second_engine, "inspect", "-f", "{{.State.Running}}", f"{unique_instance}.web").stdout == "true\n"

        started = time.monotonic()
        serial = many(three_hosts, "--parallel", "1", "deploy", app, "--instance", unique_instance, "--force")
        one_by_one = time.monotonic() - started
        assert serial.returncode == 1
        print(f"three hosts: at once {parallel:.2f}s, one by one {one_by_one:.2f}s ({one_by_one / parallel:.2f}x)")
    finally:
        many(three_hosts, "destroy", unique_instance, "--volumes")


def test_fail_fast_starts_no_more_hosts_after_a_failure(three_hosts, app, unique_instance):
    a, b, c = three_hosts

    result = many([c, a, b], "--parallel", "1", "--fail-fast", "deploy", app, "--instance", unique_instance)

    assert result.returncode == 1
    assert f"== {c.target}: FAILED" in result.stdout
    assert "not started: another host failed (--fail-fast)" in result.stderr
    assert docker("ps", "-aq", "--filter", f"label=deployer.instance={unique_instance}").stdout == ""


def test_json_of_several_hosts_is_one_document(three_hosts, app, unique_instance):
    a, b, c = three_hosts
    try:
        result = many(three_hosts, "deploy", app, "--instance", unique_instance, "--json")

        document = json.loads(result.stdout)
        assert [h["host"] for h in document["hosts"]] == [a.target, b.target, c.target]
        assert [h["ok"] for h in document["hosts"]] == [True, True, False]
        actions = document["hosts"][0]["result"]["actions"]
        assert [(a["service"], a["action"], a["reason"]) for a in actions] == [("web", "create", "new"), ("worker", "create", "new")]
        assert all(isinstance(a["seconds"], float) and a["seconds"] > 0 for a in actions)
        assert document["hosts"][2]["exit_code"] == 1 and document["hosts"][2]["result"] is None
    finally:
        many(three_hosts, "destroy", unique_instance, "--volumes")


def test_json_documents_of_one_host(deployer_cli, app, unique_instance):
    deployed = json.loads(deployer_cli("deploy", app, "--instance", unique_instance, "--json", check=True).stdout)
    listed = json.loads(deployer_cli("list", "--json", check=True).stdout)
    status = json.loads(deployer_cli("status", unique_instance, "--json", check=True).stdout)
    history = json.loads(deployer_cli("history", unique_instance, "--json", check=True).stdout)
    valid = json.loads(deployer_cli("validate", app, "--json", host=False, check=True).stdout)

    assert (deployed["instance"], deployed["release"], deployed["applied"], deployed["changed"]) == (unique_instance, 1, True, 2)
    assert {"instance": unique_instance, "release": 1} .items() <= next(
        i for i in listed["instances"] if i["instance"] == unique_instance).items()
    assert [(s["service"], s["state"]) for s in status["services"]] == [("web", "running"), ("worker", "running")]
    assert [r["release"] for r in history["releases"]] == [1]
    assert history["releases"][0]["changes"] == {"web": "create: new", "worker": "create: new"}
    assert valid == {"template": str(app), "valid": True,
                     "services": [{"service": "web", "image": "local/busybox"}, {"service": "worker", "image": "local/busybox"}]}


def test_variables_are_filled_per_instance_and_remembered_by_redeploy(deployer_cli, app, unique_instance, tmp_path):
    second = unique_instance + "v"
    app.write_text(APP.replace("GREETING: hello", "GREETING: 'hello {domain} from {instance}'"))
    try:
        deployer_cli("deploy", app, "--instance", unique_instance, "--var", "domain=c1.example.com", check=True)
        (tmp_path / "c2.yaml").write_text("domain: c2.example.com\n")
        deployer_cli("deploy", app, "--instance", second, "--vars", tmp_path / "c2.yaml", check=True)

        assert env_of(f"{unique_instance}.web")["GREETING"] == f"hello c1.example.com from {unique_instance}"
        assert env_of(f"{second}.web")["GREETING"] == f"hello c2.example.com from {second}"

        deployer_cli("redeploy", unique_instance, "--force", check=True, cwd=tmp_path)
        assert env_of(f"{unique_instance}.web")["GREETING"] == f"hello c1.example.com from {unique_instance}"
        missing = deployer_cli("deploy", app, "--instance", unique_instance + "n")
        assert missing.returncode == 2 and "variables without a value: domain" in missing.stderr
    finally:
        deployer_cli("destroy", second, "--volumes")


def test_a_templates_defaults_yield_to_values_given_now_or_to_an_earlier_deploy(deployer_cli, app, unique_instance):
    greeting = APP.replace("GREETING: hello", "GREETING: '{greeting} {who}'")
    app.write_text("Vars: {greeting: hello, who: world}\n" + greeting)
    assert deployer_cli("validate", app, host=False).returncode == 0  # CI needs no dummy --var

    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    first = env_of(f"{unique_instance}.web")["GREETING"]
    deployer_cli("deploy", app, "--instance", unique_instance, "--var", "greeting=hi", check=True)
    given = env_of(f"{unique_instance}.web")["GREETING"]
    app.write_text("Vars: {greeting: hello, who: everyone}\n" + greeting)
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    assert (first, given) == ("hello world", "hi world")
    assert env_of(f"{unique_instance}.web")["GREETING"] == "hi everyone"  # kept from before; the new default


def test_a_secret_reaches_the_container_and_nothing_else(deployer_cli, app, unique_instance, sshd, tmp_path):
    secret = "s3cr3t-value-that-must-not-leak"
    app.write_text(APP + "  env: {DB_PASSWORD: {secret: DB_PASSWORD}}\n")
    (tmp_path / "secrets.env").write_text(f"DB_PASSWORD='{secret}'\n")

    missing = deployer_cli("deploy", app, "--instance", unique_instance)
    assert missing.returncode == 2 and "worker.env.DB_PASSWORD: secret 'DB_PASSWORD' is not set" in missing.stderr
    assert docker("ps", "-aq", "--filter", f"label=deployer.instance={unique_instance}").stdout == ""

    outputs = [
        deployer_cli("deploy", app, "--instance", unique_instance, "--secrets", tmp_path / "secrets.env", check=True),
        deployer_cli("deploy", app, "--instance", unique_instance, "--force", "--dry-run", "--json", check=True),
        deployer_cli("redeploy", unique_instance, "--force", check=True),  # the stored secret: none given again
        deployer_cli("status", unique_instance, "--json", check=True),
        deployer_cli("history", unique_instance, "--json", check=True),
        deployer_cli("list", check=True),
        deployer_cli("logs", unique_instance, check=True),
    ]

    assert env_of(f"{unique_instance}.worker")["DB_PASSWORD"] == secret
    for result in outputs:
        assert secret not in result.stdout + result.stderr
    for root in (sshd.state_dir, sshd.volume_dir):
        for path in root.rglob("*"):
            if path.is_file() and secret.encode() in path.read_bytes():
                assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_a_failed_start_shows_the_containers_last_lines_with_every_secret_masked(deployer_cli, unique_instance, tmp_path):
    secret = "hunter2-TOPSECRET"
    app = tmp_path / "app.yaml"
    app.write_text("web:\n  image: local/busybox\n  env: {DB_PASSWORD: {secret: DB_PASSWORD}, SHORT: {secret: SHORT}}\n"
                   "  cmd: [sh, -c, 'echo config: DB_PASSWORD=$DB_PASSWORD; echo short $SHORT shortly; exit 1']\n")
    env = {"DB_PASSWORD": secret, "SHORT": "ly"}

    for extra in ((), ("--json",)):
        failed = deployer_cli("deploy", app, "--instance", unique_instance, *extra, env=env)

        assert failed.returncode == 1, failed.stderr
        assert "| config: DB_PASSWORD=***" in failed.stderr  # the container's own line, its secret masked
        assert "| short *** shortly" in failed.stderr  # a two-character secret: masked only where it stands alone
        assert secret not in failed.stdout + failed.stderr


def test_a_users_fabfile_runs_its_own_task_next_to_deployers(fab_cli, app, unique_instance, tmp_path, sshd):
    # tasks imported flat have no collection defaults: settings come from the project's fabric.yaml
    (tmp_path / "fabric.yaml").write_text(f"deployer:\n  known_hosts: {sshd.known_hosts}\n")
    (tmp_path / "fabfile.py").write_text(
        "from fabric import task\n"
        "from deployer.tasks import *  # deploy, status, ...\n\n\n"
        "@task\n"
        "def hello(c):\n"
        "    print('hello from my own task on', c.host)\n"
    )

    result = fab_cli("hello", "deploy", app, "--instance", unique_instance, cwd=tmp_path, check=True)

    assert "hello from my own task on 127.0.0.1" in result.stdout
    assert f"deployed {unique_instance}" in result.stdout
    assert inspect(f"{unique_instance}.web", "{{.State.Running}}") == "true"

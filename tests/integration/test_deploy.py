"""Deploys through a real sshd into the real Docker engine, checked as a user would."""

import json
import socket

from deployer.errors import EXIT_UNREACHABLE
from support import APP, docker, env_of, inspect


def test_two_instances_of_one_template_run_side_by_side(deployer_cli, app, unique_instance, other_instance, sshd):
    for name in (unique_instance, other_instance):
        result = deployer_cli("deploy", app, "--instance", name, check=True)
        assert f"deployed {name} on {sshd.target}" in result.stdout
    for name in (unique_instance, other_instance):
        for service in ("web", "worker"):
            assert inspect(f"{name}.{service}", "{{.State.Running}}") == "true"
        assert env_of(f"{name}.web")["GREETING"] == "hello"
        assert env_of(f"{name}.worker")["TZ"] == "UTC"
        assert inspect(f"{name}.web", "{{.HostConfig.RestartPolicy.Name}}") == "unless-stopped"
    listing = deployer_cli("list", check=True).stdout
    assert unique_instance in listing and other_instance in listing


def test_a_file_written_in_a_volume_survives_a_redeploy(deployer_cli, app, unique_instance, sshd):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    first = inspect(f"{unique_instance}.web", "{{.Id}}")
    assert docker("exec", f"{unique_instance}.web", "sh", "-c", "echo kept > /www/index.html").returncode == 0

    result = deployer_cli("deploy", app, "--instance", unique_instance, "--force", check=True)

    assert "forced (--force)" in result.stdout and "release 2" in result.stdout
    assert inspect(f"{unique_instance}.web", "{{.Id}}") != first
    assert docker("exec", f"{unique_instance}.web", "cat", "/www/index.html").stdout == "kept\n"
    assert (sshd.volume_dir / unique_instance / "web" / "www" / "index.html").read_text() == "kept\n"


def test_a_volume_driver_s_named_volume_keeps_its_data_across_a_redeploy_and_destroy_volumes_removes_it(
        deployer_cli, unique_instance, sshd, tmp_path):
    app = tmp_path / "db.yaml"
    app.write_text("db:\n  image: local/busybox\n  cmd: [sh, -c, 'echo x >>/data/words; exec sleep 3600']\n"
                   "  volumes: [/data]\n  volume_driver: local\n")
    volume = f"{unique_instance}_db_data"

    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    deployer_cli("deploy", app, "--instance", unique_instance, "--force", check=True)

    assert docker("exec", f"{unique_instance}.db", "cat", "/data/words").stdout == "x\nx\n"
    assert docker("volume", "inspect", "--format", "{{.Driver}}", volume).stdout == "local\n"
    assert not (sshd.volume_dir / unique_instance).exists()  # no host directory: the driver's volume
    deployer_cli("destroy", unique_instance, check=True)
    assert docker("volume", "inspect", volume).returncode == 0  # kept
    deployer_cli("destroy", unique_instance, "--volumes", check=True)
    assert docker("volume", "inspect", volume).returncode != 0


def test_list_and_status_are_answered_from_the_hosts_files_alone(deployer_cli, app, unique_instance, sshd, tmp_path):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    app.unlink()  # no local template any more: only the host knows the instance

    listing = deployer_cli("list", check=True, cwd=tmp_path).stdout
    status = deployer_cli("status", unique_instance, check=True, cwd=tmp_path).stdout

    line = next(l for l in listing.splitlines() if l.startswith(unique_instance))
    assert "web, worker" in line and str(app) in line
    rows = {l.split()[0]: l for l in status.splitlines()[2:]}
    assert set(rows) == {"web", "worker"}
    assert f"{unique_instance}.web" in rows["web"] and "running" in rows["web"]
    assert "127.0.0.1:" in rows["web"] and "->8080/tcp" in rows["web"]
    assert f"{sshd.volume_dir}/{unique_instance}/web/www:/www" in rows["web"]
    state = sshd.state_dir / "instances" / unique_instance / "state.json"
    assert state.stat().st_mode & 0o777 == 0o600
    assert json.loads(state.read_text())["services"]["web"]["container"] == f"{unique_instance}.web"
    assert (state.parent / "template.yaml").read_text() == APP


def test_destroy_leaves_nothing_but_the_volumes(deployer_cli, app, unique_instance, sshd):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    result = deployer_cli("destroy", unique_instance, check=True)

    assert "volumes kept" in result.stdout
    assert docker("ps", "-aq", "--filter", f"label=deployer.instance={unique_instance}").stdout == ""
    assert not (sshd.state_dir / "instances" / unique_instance).exists()
    assert (sshd.volume_dir / unique_instance / "web" / "www").is_dir()
    assert unique_instance not in deployer_cli("list", check=True).stdout
    assert "no such instance" in deployer_cli("status", unique_instance, check=False).stderr

    deployer_cli("destroy", unique_instance, "--volumes", check=True)
    assert not (sshd.volume_dir / unique_instance).exists()
    again = deployer_cli("destroy", unique_instance, check=False)
    assert again.returncode == 1 and "no such instance" in again.stderr


HOSTILE = [
    "it's \"quoted\"",
    "$(touch {canary}.dollar)",
    "`touch {canary}.backtick`",
    "a; touch {canary}.semicolon | cat",
    "two\nlines and  spaces ",
    "--leading-dash",
    "ünïcode ✓",
]


def test_hostile_values_arrive_verbatim_and_nothing_runs_on_the_host(deployer_cli, unique_instance, tmp_path):
    canary = tmp_path / "canary"
    values = [value.format(canary=canary) for value in HOSTILE]
    template = {
        "Env": {f"T{i}": value for i, value in enumerate(values)},
        "probe": {
            "image": "local/busybox",
            "cmd": ["sh", "-c", 'printf "%s" "$1" > /out/arg; exec sleep 3600', "sh", values[1] + values[4]],
            "volumes": ["/out"],
            "labels": {"note": values[0]},
        },
    }
    path = tmp_path / "hostile.yaml"
    path.write_text(json.dumps(template))  # JSON is YAML

    deployer_cli("deploy", path, "--instance", unique_instance, check=True)

    container = f"{unique_instance}.probe"
    env = env_of(container)
    assert [env[f"T{i}"] for i in range(len(values))] == values
    assert docker("exec", container, "cat", "/out/arg").stdout == values[1] + values[4]
    assert json.loads(inspect(container, "{{json .Config.Labels}}"))["note"] == values[0]
    assert list(tmp_path.glob("canary*")) == []


def test_a_deploy_that_fails_keeps_the_running_instance_and_its_state(deployer_cli, app, unique_instance, tmp_path):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    running = inspect(f"{unique_instance}.web", "{{.Id}}")
    with socket.socket() as taken:  # the new web wants a host port something else holds
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broken = tmp_path / "broken.yaml"
        broken.write_text(APP.replace("127.0.0.1::8080", f"127.0.0.1:{taken.getsockname()[1]}:8080"))

        result = deployer_cli("deploy", broken, "--instance", unique_instance, check=False)

    assert result.returncode == 1
    assert "deploy stopped at service 'web'" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert inspect(f"{unique_instance}.web", "{{.Id}}") == running
    assert inspect(f"{unique_instance}.web", "{{.State.Running}}") == "true"
    status = deployer_cli("status", unique_instance, check=True).stdout
    assert "release 1" in status


def test_plain_fab_and_the_classic_colon_syntax_deploy_over_ssh(fab_cli, deployer_cli, app, unique_instance):
    fab_cli("deploy", app, "--instance", unique_instance, check=True)
    assert inspect(f"{unique_instance}.web", "{{.State.Running}}") == "true"

    result = deployer_cli(f"deploy:{app},instance={unique_instance},force=true", check=True)

    assert "release 2" in result.stdout
    fab_cli("destroy", unique_instance, check=True)
    assert docker("ps", "-aq", "--filter", f"label=deployer.instance={unique_instance}").stdout == ""


def test_without_a_host_deploy_uses_the_local_engine(deployer_cli, app, unique_instance, sshd):
    result = deployer_cli("deploy", app, "--instance", unique_instance, host=False, check=True)

    assert f"deployed {unique_instance} on local" in result.stdout
    assert inspect(f"{unique_instance}.worker", "{{.State.Running}}") == "true"
    assert (sshd.state_dir / "instances" / unique_instance / "state.json").is_file()


def test_an_unreachable_host_is_one_line_naming_it(deployer_cli, app, unique_instance):
    result = deployer_cli("-H", "root@127.0.0.1:1", "deploy", app, "--instance", unique_instance, host=False)

    assert result.returncode == EXIT_UNREACHABLE
    assert result.stderr.startswith("error: host root@127.0.0.1:1: cannot connect")
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_host_key_is_refused_unless_first_contact_is_allowed(deployer_cli, app, unique_instance):
    unknown = {"FABRIC_DEPLOYER_KNOWN_HOSTS": "/dev/null"}

    refused = deployer_cli("deploy", app, "--instance", unique_instance, env=unknown)

    assert refused.returncode == EXIT_UNREACHABLE
    assert "not found in known_hosts" in refused.stderr and "deployer.accept_new_hosts" in refused.stderr
    assert docker("ps", "-aq", "--filter", f"label=deployer.instance={unique_instance}").stdout == ""
    allowed = {**unknown, "FABRIC_DEPLOYER_ACCEPT_NEW_HOSTS": "true"}
    deployer_cli("deploy", app, "--instance", unique_instance, env=allowed, check=True)


def test_a_deploy_shows_each_steps_time_and_quiet_shows_nothing_but_errors(deployer_cli, app, unique_instance):
    shown = deployer_cli("deploy", app, "--instance", unique_instance, check=True).stdout
    quiet = deployer_cli("-q", "deploy", app, "--instance", unique_instance, "--force", check=True)
    failed = deployer_cli("-q", "status", unique_instance + "x")

    header, *rows = shown.splitlines()[:3]
    assert header.split() == ["ACTION", "SERVICE", "WHY", "TIME"]
    assert all(row.split()[-1].endswith("s") and float(row.split()[-1][:-1]) > 0 for row in rows)
    assert quiet.stdout == "" and quiet.stderr == ""
    assert failed.returncode == 1 and failed.stdout == "" and "no such instance" in failed.stderr


def test_a_host_port_another_instance_holds_is_named_with_that_instance(deployer_cli, app, unique_instance,
                                                                       other_instance):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.write_text(APP.replace('"127.0.0.1::8080"', f'"127.0.0.1:{port}:8080"'))
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    result = deployer_cli("deploy", app, "--instance", other_instance)

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"host port {port} is held by instance {unique_instance} (its container {unique_instance}.web)" in result.stderr


def test_a_failed_first_deploy_leaves_no_lock_files_and_history_says_what_happened(deployer_cli, app, sshd,
                                                                                 unique_instance):
    app.write_text("web:\n  image: local/busybox\n  cmd: sh -c 'echo no config; exit 3'\n")

    failed = deployer_cli("deploy", app, "--instance", unique_instance)
    history = deployer_cli("history", unique_instance)

    assert failed.returncode == 1 and "deploy stopped at service 'web' (create)" in failed.stderr
    assert not list((sshd.state_dir / "instances" / unique_instance).glob("lock*"))
    (row,) = history.stdout.splitlines()[1:]
    assert row.startswith("-  ") and "failed at web" in row and "the new container of web did not start well (" in row
    assert "no releases in the history to roll back to" in deployer_cli("rollback", unique_instance).stderr

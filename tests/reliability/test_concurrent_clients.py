"""Two clients at once on one host: different instances both deploy, on host ports that
do not collide; the same instance serializes, each release on top of the other."""

import json

import pytest
from faultkit import start_cli, state_file
from support import APP, docker, env_of, finish, remove_instance


@pytest.fixture
def second_instance(unique_instance):
    name = unique_instance + "x"
    yield name
    remove_instance(name)


def _host_port(container):
    ports = json.loads(docker("inspect", "--format", "{{json .NetworkSettings.Ports}}", container).stdout)
    return ports["8080/tcp"][0]["HostPort"]


def test_two_clients_deploying_different_instances_at_once_both_succeed_on_distinct_ports(
    app, unique_instance, second_instance, sshd
):
    clients = [start_cli(sshd, "deploy", app, "--instance", name, "--lock-wait", 0)
               for name in (unique_instance, second_instance)]

    outcomes = [finish(client) for client in clients]

    for (code, out, err), name in zip(outcomes, (unique_instance, second_instance)):
        assert code == 0, err
        assert f"deployed {name}" in out
        assert state_file(sshd, name).is_file()
    assert _host_port(f"{unique_instance}.web") != _host_port(f"{second_instance}.web")


def test_two_clients_deploying_one_instance_at_once_serialize_into_two_releases(
    deployer_cli, app, unique_instance, sshd, tmp_path
):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    templates = [tmp_path / f"{greeting}.yaml" for greeting in ("one", "two")]
    for path in templates:
        path.write_text(APP.replace("GREETING: hello", f"GREETING: {path.stem}"))
    clients = [start_cli(sshd, "deploy", path, "--instance", unique_instance, "--lock-wait", 60)
               for path in templates]

    outcomes = [finish(client) for client in clients]

    assert all(code == 0 for code, _, _ in outcomes), outcomes
    releases = sorted(int(out.split("release ")[1].split(",")[0]) for _, out, _ in outcomes)
    assert releases == [2, 3], outcomes
    last = templates[[("release 3" in out) for _, out, _ in outcomes].index(True)]
    assert env_of(f"{unique_instance}.web")["GREETING"] == last.stem
    history = deployer_cli("history", unique_instance, check=True).stdout.split("\n")[1:]
    assert sorted(int(line.split()[0]) for line in history if line.strip()) == [1, 2, 3]
    assert json.loads(state_file(sshd, unique_instance).read_text())["release"] == 3

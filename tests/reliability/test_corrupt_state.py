"""A state.json that is truncated, not JSON, empty, or written by a newer deployer stops
every task that reads it with one line naming the file and exit 1; the file (and the
containers) stay exactly as they were."""

import json

import pytest
from faultkit import container_id, state_file
from support import APP


@pytest.fixture(scope="module")
def deployed(session_cli, module_instance, sshd, tmp_path_factory):
    """The instance deployed once (release 1), its good state, and a changed template."""
    tmp = tmp_path_factory.mktemp("corrupt")
    template = tmp / "app.yaml"
    template.write_text(APP)
    changed = tmp / "changed.yaml"
    changed.write_text(APP.replace("GREETING: hello", "GREETING: changed"))
    session_cli("deploy", template, "--instance", module_instance, check=True)
    path = state_file(sshd, module_instance)
    return dict(template=template, changed=changed, path=path, good=path.read_bytes(), instance=module_instance)


@pytest.fixture
def fresh(deployer_cli, unique_instance, sshd, app):
    """The instance deployed once for this test alone."""
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    path = state_file(sshd, unique_instance)
    return dict(template=app, changed=app, path=path, good=path.read_bytes(), instance=unique_instance)


def _corruptions(good):
    newer = json.loads(good)
    newer["format"] = 99
    newer["something_new"] = {"only": "a newer deployer knows"}
    return {
        "truncated": good[: len(good) // 2],
        "not JSON": b"this is not JSON {\xff\xfe\x00",
        "a JSON array": b"[]\n",
        "empty": b"",
        "blank": b" \n\n",
        "newer format": json.dumps(newer, indent=2).encode() + b"\n",
    }


CORRUPTIONS = ["truncated", "not JSON", "a JSON array", "empty", "blank", "newer format"]
COMMANDS = {
    "status": lambda d: ["status", d["instance"]],
    "deploy": lambda d: ["deploy", d["template"], "--instance", d["instance"]],
    "deploy a change": lambda d: ["deploy", d["changed"], "--instance", d["instance"]],
    "deploy --dry-run": lambda d: ["deploy", d["changed"], "--instance", d["instance"], "--dry-run"],
    "redeploy": lambda d: ["redeploy", d["instance"]],
    "list": lambda d: ["list"],
    "stop": lambda d: ["stop", d["instance"]],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_damaged_state_file_stops_the_task_naming_the_file_and_stays_unchanged(
    deployer_cli, deployed, corruption, command
):
    path = deployed["path"]
    bad = _corruptions(deployed["good"])[corruption]
    containers = {s: container_id(f"{deployed['instance']}.{s}") for s in ("web", "worker")}
    path.write_bytes(bad)
    try:
        result = deployer_cli(*COMMANDS[command](deployed))

        assert result.returncode == 1, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert f"{path}" in lines[0], result.stderr
        assert "newer deployer" in lines[0] if corruption == "newer format" else "corrupt" in lines[0], lines[0]
        assert path.read_bytes() == bad
        assert {s: container_id(f"{deployed['instance']}.{s}") for s in containers} == containers
    finally:
        path.write_bytes(deployed["good"])


@pytest.mark.parametrize("command", ["status", "deploy", "list"])
def test_a_valid_state_file_without_a_final_newline_is_read_as_it_is(deployer_cli, fresh, command):
    """A state file edited by hand (or by a tool) may end without a newline; the
    script's next section marker must not run into its last line."""
    deployed = fresh
    path = deployed["path"]
    neighbour = path.parent.with_name(path.parent.name + "z") / "state.json"  # listed after it
    neighbour.parent.mkdir(mode=0o700)
    neighbour.write_bytes(deployed["good"].replace(deployed["instance"].encode(), neighbour.parent.name.encode()))
    path.write_bytes(deployed["good"].rstrip(b"\n"))
    try:
        result = deployer_cli(*COMMANDS[command](deployed))

        assert result.returncode == 0, result
        assert "release 1" in result.stdout or " 1 " in result.stdout, result.stdout
    finally:
        path.write_bytes(deployed["good"])
        neighbour.unlink()
        neighbour.parent.rmdir()

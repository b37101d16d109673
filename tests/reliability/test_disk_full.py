"""The state directory's disk fills up: a deploy fails cleanly, saying it could not write,
the previous state.json stays intact, and once there is room again a deploy makes the
state describe what runs.

The state dir is a 64 KiB tmpfs (root mounts it), used in local mode (no -H), so only
this test's deploys see it."""

import json
import subprocess

import pytest
from faultkit import write_template
from support import docker

from deployer.model.state import InstanceState

TEMPLATE = {
    "web": {"image": "local/busybox", "cmd": ["sleep", "3600"], "env": {"ROUND": "one"}},
    "worker": {"image": "local/busybox", "cmd": ["sleep", "3600"], "env": {"ROUND": "one"}},
}


@pytest.fixture
def small_disk(tmp_path):
    mountpoint = tmp_path / "state"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)], check=True, timeout=30)
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], timeout=30)


def _fill(directory):
    """Fill the file system up to the last byte."""
    result = subprocess.run(["dd", "if=/dev/zero", f"of={directory / 'filler'}", "bs=4k"], capture_output=True,
                            timeout=60)
    assert b"No space left on device" in result.stderr, result.stderr
    extra = subprocess.run(["dd", "if=/dev/zero", f"of={directory / 'filler2'}", "bs=1", "count=4096"],
                           capture_output=True, timeout=60)
    assert extra.returncode != 0


@pytest.fixture
def full_disk_deploy(deployer_cli, unique_instance, small_disk, tmp_path):
    """Release 1 deployed to the small disk, the disk filled, then a changed template
    deployed: the outcome, with the state file before and after."""
    env = {"DEPLOYER_STATE_DIR": str(small_disk)}
    deployer_cli("deploy", write_template(tmp_path, TEMPLATE, "one.yaml"), "--instance", unique_instance,
                 host=False, env=env, check=True)
    state = small_disk / "instances" / unique_instance / "state.json"
    before = state.read_bytes()
    _fill(small_disk)
    changed = json.loads(json.dumps(TEMPLATE))
    changed["web"]["env"]["ROUND"] = changed["worker"]["env"]["ROUND"] = "two"
    two = write_template(tmp_path, changed, "two.yaml")

    result = deployer_cli("deploy", two, "--instance", unique_instance, host=False, env=env)

    return dict(result=result, state=state, before=before, env=env, template=two, disk=small_disk)


def test_a_deploy_onto_a_full_disk_fails_with_one_line_saying_it_could_not_write(full_disk_deploy):
    result = full_disk_deploy["result"]
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "could not write" in lines[0], lines[0]


def test_a_deploy_onto_a_full_disk_leaves_the_previous_state_file_intact(full_disk_deploy):
    state = full_disk_deploy["state"]
    assert state.read_bytes() == full_disk_deploy["before"]
    assert InstanceState.from_json(state.read_text(), str(state)).release == 1
    assert not [p.name for p in state.parent.iterdir() if ".tmp." in p.name], "a temporary file was left behind"


def test_after_a_full_disk_is_freed_the_next_deploy_makes_the_state_describe_what_runs(
    full_disk_deploy, deployer_cli, unique_instance
):
    (full_disk_deploy["disk"] / "filler").unlink()
    (full_disk_deploy["disk"] / "filler2").unlink(missing_ok=True)

    deployer_cli("deploy", full_disk_deploy["template"], "--instance", unique_instance, host=False,
                 env=full_disk_deploy["env"], check=True)

    state = json.loads(full_disk_deploy["state"].read_text())
    for service in ("web", "worker"):
        label = docker("inspect", "--format", '{{index .Config.Labels "deployer.config-hash"}}',
                       f"{unique_instance}.{service}").stdout.strip()
        assert state["services"][service]["config_hash"] == label, f"the state does not describe {service}"
        assert dict(state["services"][service]["spec"]["env"])["ROUND"] == "two"
    status = deployer_cli("status", unique_instance, host=False, env=full_disk_deploy["env"], check=True)
    assert "differs from the state" not in status.stdout, status.stdout
    history = deployer_cli("history", unique_instance, host=False, env=full_disk_deploy["env"], check=True)
    assert "Traceback" not in history.stderr

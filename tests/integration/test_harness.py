"""Prove the integration harness itself works: sshd with SetEnv, the test image, fabric."""

import subprocess

import fabric


def test_ssh_session_gets_state_dir(sshd):
    res = subprocess.run(
        ["ssh", "-p", str(sshd.port), "-i", str(sshd.key), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         f"root@{sshd.host}", "echo $DEPLOYER_STATE_DIR $DEPLOYER_VOLUME_DIR"],
        capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [str(sshd.state_dir), str(sshd.volume_dir)]


def test_busybox_image_runs(busybox_image):
    res = subprocess.run(["docker", "run", "--rm", busybox_image, "sh", "-c", "echo hi"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "hi\n"


def test_fabric_connection_reaches_docker(sshd, docker_engine):
    with fabric.Connection(sshd.host, port=sshd.port, user="root",
                           connect_kwargs={"key_filename": str(sshd.key),
                                           "look_for_keys": False,
                                           "allow_agent": False}) as c:
        res = c.run("docker info --format '{{.ServerVersion}}'", hide=True, in_stream=False)
    assert res.ok
    assert res.stdout.strip() == docker_engine

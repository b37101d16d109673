"""The benchmark runs at all (one quick round; its figures are not asserted here)."""

import os
import subprocess
import sys

from conftest import REPO_ROOT


def test_the_benchmark_runs_and_counts_one_ssh_session_per_deploy(docker_engine, busybox_image):
    # the benchmark times deployer through its daemon too: not pinned off for it (tests/conftest.py)
    env = {key: value for key, value in os.environ.items() if key != "DEPLOYER_DAEMON"}
    result = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "run"), "--quick"],
                            capture_output=True, text=True, timeout=300, env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "| deployer |" in result.stdout
    assert "counter check: all 3 floor runs counted exactly 1 session on 1 connection" in result.stdout
    assert "5 services: first deploy 1/1, no-op re-deploy 1/1, one service's env changed 1/1" in result.stdout


def test_the_router_benchmark_runs_and_fails_no_request_during_its_swaps(docker_engine, busybox_image):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "run-router"), "--quick"],
                            capture_output=True, text=True, timeout=600)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "| through the router |" in result.stdout and "| straight to the container |" in result.stdout
    lines = result.stdout.splitlines()
    swaps = lines[next(i for i, line in enumerate(lines) if line.startswith("swaps:")) + 3].split("|")
    assert swaps[2].strip() == "0", result.stdout  # failed requests during the swaps
    rows = [line.split("|") for line in lines if line.startswith(("| 1 |", "| 3 |"))]  # 1 and 3 replicas
    assert [r[1].strip() for r in rows] == ["1", "3"] and [r[5].strip() for r in rows] == ["0", "0"], result.stdout
    assert f"this machine has {os.cpu_count()} CPUs" in result.stdout and "ratio 3/1: " in result.stdout

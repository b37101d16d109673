"""``TASK --help`` prints the task's help, as ``--help TASK`` does, and runs nothing (in a
process of its own: invoke keeps a task's help strings only for its first parse)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def deployer(*args):
    return subprocess.run([sys.executable, "-m", "deployer", *args], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={"PATH": "/usr/bin:/bin", "DEPLOYER_DAEMON": "0", "HOME": "/nonexistent"}, timeout=60)


@pytest.mark.parametrize(
    "args",
    [("deploy", "--help"), ("--help", "deploy"), ("deploy", "app.yaml", "--instance", "c1", "-h"),
     ("deploy:app.yaml,instance=c1", "--help")],
    ids=["after", "before", "after arguments, short", "after a classic call"],
)
def test_a_tasks_help_is_printed_wherever_help_is_asked_and_the_task_does_not_run(args):
    shown = deployer(*args)

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Usage: deployer [--core-opts] deploy [--options]")
    assert "--dry-run" in shown.stdout and "error" not in shown.stderr


def test_validate_help_reads_no_template_named_help():
    shown = deployer("validate", "--help")

    assert shown.returncode == 0 and "Check a template without any host" in shown.stdout
    assert "cannot read template" not in shown.stdout + shown.stderr

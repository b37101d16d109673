"""``deployer import FILE``, in-process: the template on stdout, the report on stderr,
``--check``'s exit code, ``--json``'s document, one error line for bad input."""

import json

import pytest

from deployer.cli.program import program
from deployer.errors import EXIT_USAGE

COMPOSE = """\
services:
  web:
    image: team/web
    environment: {REDIS_URL: "redis://redis:6379/0"}
    network_mode: bridge
  redis: {image: "redis:7", expose: ["6379"]}
"""


def run(monkeypatch, tmp_path, *args, text=COMPOSE):
    """``deployer ARGS`` in tmp_path, holding compose.yaml: (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text(text)
    try:
        program.run(["deployer", *args])
    except SystemExit as e:
        return e.code or 0
    return 0


def test_import_prints_the_template_and_on_stderr_what_it_dropped(capsys, monkeypatch, tmp_path):
    code = run(monkeypatch, tmp_path, "import", "compose.yaml")

    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith("# deployer template imported from compose.yaml by `deployer import`.\n")
    assert "  expose:\n    redis:6379: {env: REDIS_URL, format: 'redis://{host}:{port}/0'}\n" in out
    assert err.splitlines() == [
        "web.network_mode: dropped: deployer runs every container on its instance's private network; host networking and "
        "sharing another container's network are not in its templates",
    ]


def test_check_exits_1_when_something_was_dropped_and_0_when_all_was_carried(capsys, monkeypatch, tmp_path):
    dropped = run(monkeypatch, tmp_path, "import", "compose.yaml", "--check")
    out, err = capsys.readouterr()
    carried = run(monkeypatch, tmp_path, "import", "--check", "compose.yaml", text="services:\n  a: {image: x}\n")

    assert (dropped, carried) == (1, 0)
    assert out == "" and err.startswith("web.network_mode: dropped: ")


def test_json_is_the_template_and_the_dropped_keys(capsys, monkeypatch, tmp_path):
    code = run(monkeypatch, tmp_path, "import", "compose.yaml", "--json", "--check")

    document = json.loads(capsys.readouterr().out)
    assert code == 1
    assert document["template"].startswith("# deployer template imported from compose.yaml")
    assert document["dropped"] == [{"service": "web", "key": "network_mode", "why": document["dropped"][0]["why"]}]
    assert document["variables"] == [] and document["secrets"] == []


@pytest.mark.parametrize("text, message", [
    ("services: [\n", "error: compose.yaml: line 2, column 1: invalid YAML: "),
    ("name: x\n", "error: compose.yaml: not a compose file: no 'services:'\n"),
    ("services:\n  web: {ports: ['80']}\n", "error: compose.yaml: web: no image and no build: nothing to run\n"),
])
def test_bad_input_is_one_error_line_exit_2_and_nothing_on_stdout(capsys, monkeypatch, tmp_path, text, message):
    code = run(monkeypatch, tmp_path, "import", "compose.yaml", text=text)

    out, err = capsys.readouterr()
    assert code == EXIT_USAGE and out == ""
    assert err.startswith(message) and len(err.splitlines()) == 1

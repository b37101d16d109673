"""The ``deployer`` command: the classic ``task:arg,key=value`` form, and validate in-process.

``Program.classic`` looks task names up in ``program.collection``, which invoke only sets
while parsing a command line (``parse_collection`` makes it the bundled namespace); the
fixture sets it the same way. ``program.run`` runs in-process: validate needs no host.
"""

import pytest

from deployer.cli.program import program
from deployer.errors import EXIT_USAGE


@pytest.fixture
def classic(monkeypatch):
    monkeypatch.setattr(program, "collection", program.namespace, raising=False)
    return program.classic


@pytest.mark.parametrize(
    "token, args",
    [
        ("deploy:t.yaml,instance=c1", ["deploy", "--template=t.yaml", "--instance=c1"]),
        ("deploy:template=t.yaml,instance=c1", ["deploy", "--template=t.yaml", "--instance=c1"]),
        ("deploy:t.yaml,instance=c1,dry_run=yes", ["deploy", "--template=t.yaml", "--instance=c1", "--dry-run"]),
        ("deploy:t.yaml,instance=c1,dry-run=true,force=false", ["deploy", "--template=t.yaml", "--instance=c1", "--dry-run"]),
        ("destroy:c1,volumes=true", ["destroy", "--instance=c1", "--volumes"]),
        ("destroy:c1,volumes=no", ["destroy", "--instance=c1"]),
        ("destroy:instance=c1", ["destroy", "--instance=c1"]),
        ("status:c1", ["status", "--instance=c1"]),
        ("validate:templates/app.yaml", ["validate", "--template=templates/app.yaml"]),
        ("list:", ["list"]),
        (r"deploy:a\,b.yaml,instance=c1", ["deploy", "--template=a,b.yaml", "--instance=c1"]),
        ("deploy:t.yaml,instance=c=1", ["deploy", "--template=t.yaml", "--instance=c=1"]),
    ],
)
def test_a_classic_token_becomes_the_tasks_flags(classic, token, args):
    assert classic(token) == args


@pytest.mark.parametrize(
    "token",
    [
        "deploy",
        "--instance=c1",
        "web1:2222",
        "colonless",
        "deployy:t.yaml",
        "undeploy:c1",
        "history:c1,true,extra",  # more values than parameters: invoke says what is wrong
    ],
)
def test_a_token_that_is_not_a_classic_task_call_is_left_alone(classic, token):
    assert classic(token) == [token]


def test_classic_values_fill_the_tasks_parameters_in_order(classic):
    # Fabric 1's `fab deploy:t.yaml,c1` called deploy("t.yaml", "c1"): every
    # parameter, with or without a default, takes a value by position.
    assert classic("deploy:t.yaml,c1") == ["deploy", "--template=t.yaml", "--instance=c1"]


def test_validate_in_the_classic_form_prints_ok_with_the_service_names(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.yaml").write_text("elsdoerfer/rethinkdb: rethinkdb --bind all\napp: {image: team/app, cmd: web}\n")

    program.run(["deployer", "validate:app.yaml"], exit=False)

    assert capsys.readouterr().out == "app.yaml: ok (2 services: rethinkdb, app)\n"


def test_an_invalid_template_is_one_error_line_and_exit_code_2(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.yaml").write_text("app: {image: team/app, ports: [eighty]}\n")

    with pytest.raises(SystemExit) as exited:
        program.run(["deployer", "validate:app.yaml"])

    out, err = capsys.readouterr()
    assert exited.value.code == EXIT_USAGE
    assert out == ""
    assert err == (
        "error: app.yaml: app.ports[0]: expected a port such as 8080, '80:8080' or "
        "'127.0.0.1:80:8080/udp', got 'eighty'\n"
    )

"""The classic ``task:arg,key=value`` form and the words after ``--`` (deployer/classic.py),
for the ``deployer`` command and plain ``fab``; validate runs in-process (no host needed).

The tests of the real ``fab`` executable, over the test sshd, are in
tests/integration/test_fab.py.
"""

import json
import shlex
import subprocess
import sys

import fabric
import fabric.main
import pytest
from invoke import Collection, Exit, task

from deployer import classic
from deployer.cli.program import Program, program
from deployer.errors import EXIT_USAGE
from deployer.tasks import ns


def translate(*tokens):
    return classic.translate(ns, list(tokens))


@pytest.mark.parametrize(
    "token, args",
    [
        ("deploy:t.yaml,instance=c1", ["deploy", "--template=t.yaml", "--instance=c1"]),
        ("deploy:template=t.yaml,instance=c1", ["deploy", "--template=t.yaml", "--instance=c1"]),
        ("deploy:t.yaml,instance=c1,dry_run=yes", ["deploy", "--template=t.yaml", "--instance=c1", "--dry-run"]),
        ("deploy:t.yaml,instance=c1,dry-run=true,force=false", ["deploy", "--template=t.yaml", "--instance=c1", "--dry-run"]),
        ("deploy:t.yaml,instance=c1,force=1,pull=0", ["deploy", "--template=t.yaml", "--instance=c1", "--force"]),
        ("destroy:c1,volumes=true", ["destroy", "--instance=c1", "--volumes"]),
        ("destroy:c1,volumes=NO", ["destroy", "--instance=c1"]),
        ("destroy:c1,yes", ["destroy", "--instance=c1", "--volumes"]),
        ("destroy:instance=c1", ["destroy", "--instance=c1"]),
        ("status:c1", ["status", "--instance=c1"]),
        ("validate:templates/app.yaml", ["validate", "--template=templates/app.yaml"]),
        ("list:", ["list"]),
        (r"deploy:a\,b.yaml,instance=c1", ["deploy", "--template=a,b.yaml", "--instance=c1"]),
        ("deploy:t.yaml,instance=c=1", ["deploy", "--template=t.yaml", "--instance=c=1"]),
        ("deploy:t.yaml,instance=c1,var=A=1,var=B=2", ["deploy", "--template=t.yaml", "--instance=c1", "--var=A=1",
                                                        "--var=B=2"]),
        ("run:c1,web,echo hi", ["run", "--instance=c1", "--service=web", "--command=echo hi"]),
    ],
)
def test_a_classic_token_becomes_the_tasks_flags(token, args):
    assert translate(token) == args


@pytest.mark.parametrize(
    "token",
    ["deploy", "--instance=c1", "web1:2222", "colonless", "deployy:t.yaml", "undeploy:c1", ":c1"],
)
def test_a_token_that_is_not_a_classic_task_call_is_left_alone(token):
    assert translate(token) == [token]


def test_a_flags_value_that_looks_like_a_call_stays_a_value():
    assert translate("exec", "c1", "web", "--command", "logs:x", "status:c1") == [
        "exec", "c1", "web", "--command", "logs:x", "status", "--instance=c1"]


def test_classic_values_fill_the_tasks_parameters_in_order():
    # Fabric 1's `fab deploy:t.yaml,c1` called deploy("t.yaml", "c1"): every
    # parameter, with or without a default, takes a value by position.
    assert translate("deploy:t.yaml,c1") == ["deploy", "--template=t.yaml", "--instance=c1"]


@pytest.mark.parametrize(
    "token, message",
    [
        ("destroy:c1,volumes=maybe",
         "error: 'destroy:c1,volumes=maybe': volumes is true or false (true/false, yes/no, 1/0), got 'maybe'"),
        ("history:c1,true,extra", "error: 'history:c1,true,extra': history takes at most 2 values (instance, json)"),
        ("status:instnce=c1", "error: 'status:instnce=c1': status has no parameter 'instnce' (instance, json)"),
    ],
)
def test_a_classic_call_the_task_cannot_take_is_an_error_naming_it(token, message):
    with pytest.raises(Exit) as raised:
        translate(token)

    assert raised.value.code == EXIT_USAGE and raised.value.message == message


@task
def greet(c, name, loud=False, polite=True):
    """Greet someone (a user's own task)."""
    text = f"hello {name}" + ("!" if loud else "") + (" please" if polite else "")
    print(text)


@classic.after_dashes("command")
@task
def words(c, command=None):
    """Print the words it was given, one per line."""
    for word in shlex.split(command or ""):
        print(f"[{word}]")


USERS = Collection(greet, words)
USERS.add_collection(ns, "deployer")


def test_a_users_own_tasks_and_nested_deployer_tasks_take_the_classic_form():
    assert classic.translate(USERS, ["greet:world,loud=yes,polite=no", "deployer.status:c1"]) == [
        "greet", "--name=world", "--loud", "--no-polite", "deployer.status", "--instance=c1"]


def test_the_words_after_the_double_dash_reach_the_task_as_they_were_given(capsys):
    own = Program(name="t", binary="t", namespace=USERS, config_class=fabric.Config)
    given = ["sh", "-c", "echo a b; exit 3", "it's", "$(touch /tmp/x)", ""]

    own.run(["t", "words", "--", *given], exit=False)

    assert capsys.readouterr().out == "".join(f"[{word}]\n" for word in given)


def test_a_command_given_both_after_the_double_dash_and_as_a_flag_is_an_error(capsys):
    own = Program(name="t", binary="t", namespace=USERS, config_class=fabric.Config)

    with pytest.raises(SystemExit) as exited:
        own.run(["t", "words", "--command", "ls", "--", "pwd"])

    assert exited.value.code == EXIT_USAGE
    assert capsys.readouterr().err == "error: words: give the command after -- or as --command, not both\n"


def test_plain_fab_reads_the_classic_form_and_the_double_dash_once_deployer_tasks_are_imported(
    capsys, monkeypatch, tmp_path
):
    # under `fab`, importing deployer.tasks attaches to fabric.main.program; here the
    # module is imported already, so a fresh fab program is attached by hand
    monkeypatch.setattr(fabric.main, "program", fabric.main.make_program())
    (tmp_path / "fabfile.py").write_text(
        "from invoke import task\nfrom deployer.tasks import *\n\n\n"
        "@task\ndef greet(c, name, loud=False):\n    print('hello', name + ('!' if loud else ''))\n"
    )
    classic.attach_to_fab()
    classic.attach_to_fab()  # once is enough: no second wrapping

    fabric.main.program.run(["fab", "-r", str(tmp_path), "greet:world,loud=true", "validate:app.yaml"], exit=False)

    out, err = capsys.readouterr()
    assert out == "hello world!\n" and "cannot read template" in err


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


def test_every_task_says_in_one_whole_line_what_it_does_and_every_flag_has_help():
    # in a process of its own: invoke hands each task's help to the first parse, and
    # forgets it there (Task.arg_opts pops it), so it is gone once a test ran a command
    listing = subprocess.run([sys.executable, "-c", LISTING], capture_output=True, text=True, check=True)
    for name, (first, parameters, helped) in json.loads(listing.stdout).items():
        assert first.endswith(".") and len(first) <= 100, (name, first)
        assert set(parameters) <= set(helped), (name, set(parameters) - set(helped))


LISTING = """
import json
from deployer import classic
from deployer.tasks import ns
print(json.dumps({name: (ns[name].__doc__.strip().splitlines()[0], list(classic._parameters(ns[name])),
                         [key.replace("-", "_") for key in ns[name].help]) for name in ns.task_names}))
"""

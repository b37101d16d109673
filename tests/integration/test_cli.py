"""What a user sees from the command line: the shipped templates, and one-line errors."""

import time
import urllib.request

import pytest

from deployer.errors import EXIT_USAGE
from support import containers_of, on_terminal


def test_the_demo_template_deploys_and_serves_its_greeting(deployer_cli, unique_instance):
    deployer_cli("deploy", "templates/demo.yaml", "--instance", unique_instance, check=True)
    try:
        assert _fetch("http://127.0.0.1:8080/") == "Hello from deployer\n"
    finally:
        deployer_cli("destroy", unique_instance, "--volumes", check=True)


def _fetch(url, attempts=50):
    """httpd is up a moment after its container starts."""
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def test_the_origin_example_validates_its_app_being_a_buildpack_slug(deployer_cli):
    result = deployer_cli("validate", "templates/example.yaml", host=False, check=True)

    assert result.stdout == "templates/example.yaml: ok (2 services: rethinkdb, app)\n"


@pytest.mark.parametrize(
    "text, args, expected",
    [
        ("web:\n  image: x\n   bad: [\n", (), "app.yaml: line 3, column 7: invalid YAML"),
        ("web:\n  image: x\n  colour: red\n", (), "app.yaml: web.colour: unknown key"),
        ("web:\n  image: x\n  env: [A]\n", (), "app.yaml: web.env: expected a mapping"),
        ("web app:\n  cmd: x\n", (), "app.yaml: web app: no image"),
        ("web: {image: x}\n", ("--instance", "../etc"), "invalid instance name '../etc'"),
    ],
)
def test_a_bad_template_or_name_is_one_line_exit_2_and_nothing_deployed(deployer_cli, tmp_path, text, args, expected):
    (tmp_path / "app.yaml").write_text(text)

    result = deployer_cli("deploy", "app.yaml", *(args or ("--instance", "x")), cwd=tmp_path)

    assert result.returncode == EXIT_USAGE
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""


def test_a_missing_template_file_names_it(deployer_cli, tmp_path):
    result = deployer_cli("validate", tmp_path / "nope.yaml", host=False)

    assert result.returncode == EXIT_USAGE
    assert result.stderr == f"error: {tmp_path / 'nope.yaml'}: cannot read template: No such file or directory\n"


def test_destroy_on_a_terminal_asks_first_and_no_answer_but_yes_keeps_the_instance(deployer_cli, app, sshd,
                                                                                  unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    code, shown = on_terminal(sshd, "destroy", unique_instance, answer="n")

    assert f"destroy {unique_instance} on {sshd.target} (release 1: web, worker): its containers, built images and " \
           "state (volumes are kept)? [y/N]" in shown
    assert code == 1 and "not destroyed: the answer was not yes (--yes does not ask)" in shown
    assert len(containers_of(unique_instance)) == 2
    code, shown = on_terminal(sshd, "destroy", unique_instance, answer="yes")
    assert code == 0 and f"destroyed {unique_instance} on" in shown and not containers_of(unique_instance)


def test_destroy_with_yes_or_without_a_terminal_asks_nothing(deployer_cli, app, sshd, unique_instance, other_instance):
    for name in (unique_instance, other_instance):
        deployer_cli("deploy", app, "--instance", name, check=True)

    code, shown = on_terminal(sshd, "destroy", unique_instance, "--yes", answer="n")
    piped = deployer_cli("destroy", other_instance, input="n\n")

    assert code == 0 and "[y/N]" not in shown and not containers_of(unique_instance)
    assert piped.returncode == 0 and "[y/N]" not in piped.stderr and not containers_of(other_instance)

"""Output for people while a host works: -v's commands (secrets masked), waits, live rows."""

import io
import json
import shlex

import pytest

from deployer.cli import live as live_output, output
from deployer.engine import Released
from deployer.model.plan import Action
from deployer.ops.converge import Deployed
from deployer.ops.hooks import Ran

HOSTILE = ["it's a secret", 'q"uo"te', "$(touch /tmp/pwned)", "new\nline", "back\\slash", "'\"'\"'"]


class Terminal(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.fixture
def screen(monkeypatch):
    """(stdout, stderr) as a terminal, or not: screen(tty=True)."""

    def make(tty=True):
        out, err = Terminal(tty), Terminal(tty)
        monkeypatch.setattr("sys.stdout", out)
        monkeypatch.setattr("sys.stderr", err)
        return out, err

    monkeypatch.delenv("NO_COLOR", raising=False)
    return make


@pytest.mark.parametrize("secret", HOSTILE)
def test_a_secret_never_shows_in_a_command_whatever_it_holds(secret):
    argv = ["docker", "run", "-e", f"PW={secret}", "-e", "A=1", "--label", f"x={secret}{secret}", "img", "sh", "-c", secret]

    line = output.command_line(argv, {secret})

    assert line == "docker run -e 'PW=***' -e A=1 --label 'x=******' img sh -c '***'"
    for form in (secret, shlex.quote(secret), output.printable(secret)):
        assert form not in line


def test_a_command_is_one_line_a_shell_reads_back():
    assert output.command_line(["docker", "run", "-e", "MOTD=hi\nthere", "x y"], set()) == (
        "docker run -e 'MOTD=hi\\nthere' 'x y'"
    )


def test_the_longer_of_two_overlapping_secrets_is_masked_whole():
    assert output.masked("pw=abcdef", {"abc", "abcdef"}) == "pw=***"


def test_a_file_written_shows_its_name_and_size_never_its_content():
    assert output.traced("put", ["/var/lib/deployer/instances/c1/state.json", "1234"], set()) == (
        "$ put /var/lib/deployer/instances/c1/state.json (1234 bytes)"
    )


def test_a_garbled_record_shows_none_of_its_fields():
    assert output.traced("garbled", ["run"], set()) == "$ ... (not shown: other output cut into what the host sent)"


def test_verbose_lines_go_to_stderr_with_the_host_and_secrets_masked(screen):
    out, err = screen(tty=False)
    live = live_output.Live("web1", verbose=True)

    live("secrets", "s3cr3t", "")
    live("run", "docker", "run", "-e", "PW=s3cr3t", "img")

    assert err.getvalue() == "web1: $ docker run -e 'PW=***' img\n"
    assert out.getvalue() == ""


def test_without_verbose_commands_are_not_shown(screen):
    out, err = screen(tty=True)

    live_output.Live("web1")("run", "docker", "ps")

    assert err.getvalue() == out.getvalue() == ""


def test_a_lock_wait_counts_on_one_terminal_line(screen):
    out, err = screen(tty=True)
    live = live_output.Live("web1")

    for second in ("0", "1", "2"):
        live("waiting", second, "c1", "ann@laptop", "since", "2024-05-01T10:00:00Z")
    live("roots")

    line = "web1: waiting for the lock of instance c1 (held by ann@laptop since 2024-05-01T10:00:00Z)"
    assert err.getvalue() == f"\r{line} 0 s\r{line} 1 s\r{line} 2 s\n"


def test_a_lock_wait_is_one_line_when_not_on_a_terminal(screen):
    out, err = screen(tty=False)
    live = live_output.Live("web1")

    for second in ("0", "1", "2"):
        live("waiting", second, "c1", "ann@laptop", "since", "T")
    live("health", "c1.web", "2")
    live("health", "c1.web", "3")

    assert err.getvalue() == (
        "web1: waiting for the lock of instance c1 (held by ann@laptop since T)\n"
        "web1: waiting for c1.web to be healthy\n"
    )


ACTIONS = (
    Action("keep", "db", "unchanged"),
    Action("recreate", "web", "env.A changed"),
    Action("create", "worker", "new"),
)


def test_on_a_terminal_each_row_shows_as_its_step_is_done_in_colour(screen):
    out, err = screen(tty=True)
    live = live_output.Live("web1")

    live("apply", ACTIONS)
    live("ok", "worker", "10.0", "10.5")
    live("ok", "web", "10.0", "11.25")
    live("applied", "worker", "web")

    assert out.getvalue().splitlines() == [
        "ACTION    SERVICE  WHY            TIME",
        "\033[2mkeep      db       unchanged\033[0m",
        "\033[32mcreate    worker   new            0.5s\033[0m",
        "\033[32mrecreate  web      env.A changed  1.2s\033[0m",
    ]


def test_steps_not_done_show_as_failed_in_red(screen):
    out, err = screen(tty=True)
    live = live_output.Live("web1")

    live("apply", ACTIONS)
    live("applied")

    assert out.getvalue().splitlines()[-2:] == [
        "\033[31mrecreate  web      env.A changed  failed\033[0m",
        "\033[31mcreate    worker   new            failed\033[0m",
    ]


def test_no_colour_with_no_color(screen, monkeypatch):
    out, err = screen(tty=True)
    monkeypatch.setenv("NO_COLOR", "1")
    live = live_output.Live("web1")

    live("apply", ACTIONS)
    live("ok", "web", "1", "2")

    assert "\033" not in out.getvalue() and "recreate  web      env.A changed  1.0s" in out.getvalue()


def test_not_on_a_terminal_nothing_shows_until_the_end(screen):
    out, err = screen(tty=False)
    live = live_output.Live("web1")

    live("apply", ACTIONS)
    live("ok", "web", "1", "2")

    assert out.getvalue() == "" and live.table is None


def test_a_secret_is_masked_as_a_json_string_shows_it_too():
    secret = 'pa"ss\\word'

    assert output.masked(json.dumps({"error": f"x {secret} y"}), {secret}) == '{"error": "x *** y"}'


@pytest.mark.parametrize(
    "line, shown",
    [("ly", "***"), ("short ly shortly", "short *** shortly"), ("PW=ly;", "PW=***;"), ("lyly", "lyly")],
)
def test_a_secret_of_one_or_two_characters_is_masked_only_where_it_stands_alone(line, shown):
    assert output.masked(line, {"ly"}) == shown


def test_a_release_commands_lines_show_on_stderr_as_they_come_prefixed_and_masked(screen):
    out, err = screen(tty=False)
    live = live_output.Live("web1")

    live("secrets", "hunter2")
    live("release", "web", "migrating with hunter2")

    assert out.getvalue() == "" and err.getvalue() == "web release | migrating with ***\n"


def test_a_deploy_shows_its_releases_and_hooks_to_people_and_in_json(screen):
    out, _ = screen(tty=False)
    result = Deployed("web1", "c1", 2, ACTIONS, 1.0, releases=(Released("web", 0, 1.25),),
                      hooks=(Ran("post-deploy", 3, 0.5, ("last",)),))
    dry = Deployed("web1", "c1", 1, ACTIONS, 1.0, applied=False, releases=(Released("web", command=("a b", "c")),))

    output.deployed(result)
    output.deployed(dry, dry_run=True)
    output.deployed(result, as_json=True)

    shown, document = out.getvalue().split("{", 1)
    assert "release command of web: exit code 0 in 1.2s\nhook post-deploy: exit code 3 in 0.5s\n" in shown
    assert "release command of web would run: 'a b' c\n" in shown
    document = json.loads("{" + document)
    assert document["releases"] == [{"service": "web", "exit_code": 0, "seconds": 1.25}]
    assert document["hooks"] == [{"name": "post-deploy", "exit_code": 3, "seconds": 0.5}]

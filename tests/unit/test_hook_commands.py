"""Hooks (ops/hooks.py): the user's commands around a deploy or a rollback, on the
deploying machine, through ``sh -c`` in the template's directory, run for real here."""

import types

import pytest

from deployer.errors import DeployerError
from deployer.model import template
from deployer.ops import hooks
from deployer.ops.converge import Deployed
from deployer.ops.deploy import Options
from deployer.settings import Settings

SHOW = 'echo "$DEPLOYER_INSTANCE|$DEPLOYER_HOST|$DEPLOYER_TEMPLATE|$DEPLOYER_RESULT|$DEPLOYER_CHANGED|' \
       '$DEPLOYER_RELEASE|$DEPLOYER_DRY_RUN|${PW-unset}|$(pwd)"'


def host(**settings):
    return types.SimpleNamespace(name="root@web1:22", hostname="web1", settings=Settings.parse(settings))


def loaded(tmp_path, text, name="app.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return template.parse(text, str(path))


def deploy_hooks(tmp_path, text, options=Options(), secrets=None, **settings):
    """The hooks of a deploy of ``text``, their output lines collected in ``.lines``."""
    lines = []
    options = Options(dry_run=options.dry_run, hooks=options.hooks, progress=lambda name, line: lines.append((name, line)))
    made = hooks.of("deploy", host(**settings), "c1", options, loaded(tmp_path, text), secrets)
    made.lines = lines
    return made


def done(release=2):
    return Deployed("root@web1:22", "c1", release, (), 0.1)


def test_a_hook_gets_the_deploys_variables_in_the_templates_directory(tmp_path):
    made = deploy_hooks(tmp_path, f"Hooks: {{pre-deploy: '{SHOW}', post-deploy: '{SHOW}'}}\nweb: {{}}\n")

    made.pre()
    made.post(True, ["web", "db"], 3)

    path = tmp_path / "app.yaml"
    assert made.lines == [("pre-deploy", f"c1|web1|{path}||||0|unset|{tmp_path}"),
                          ("post-deploy", f"c1|web1|{path}|ok|web db|3|0|unset|{tmp_path}")]
    assert [(r.name, r.exit_code) for r in made.ran] == [("pre-deploy", 0), ("post-deploy", 0)]


def test_no_hook_sees_a_secret_by_its_name_or_by_its_value(tmp_path, monkeypatch):
    monkeypatch.setenv("PW", "hunter2")
    monkeypatch.setenv("COPY", "hunter2")
    made = deploy_hooks(tmp_path, "Hooks: {pre-deploy: 'env'}\nweb: {env: {X: {secret: PW}}}\n", secrets={"PW": "hunter2"})

    made.pre()

    seen = [line for _, line in made.lines]
    assert "DEPLOYER_INSTANCE=c1" in seen and not any("hunter2" in line or line.startswith("PW=") for line in seen)


def test_a_hostile_value_reaches_a_hook_as_data_never_as_shell(tmp_path):
    made = deploy_hooks(tmp_path, "Hooks: {pre-deploy: 'printf \"%s\\\\n\" \"$DEPLOYER_TEMPLATE\"'}\nweb: {}\n")
    hostile = tmp_path / "$(touch pwned) `touch pwned`; 'x'.yaml"
    made.variables["DEPLOYER_TEMPLATE"] = str(hostile)

    made.pre()

    assert made.lines == [("pre-deploy", str(hostile))] and not (tmp_path / "pwned").exists()


def test_a_failing_pre_hook_stops_the_deploy_naming_the_hook_where_it_is_set_and_its_last_lines(tmp_path):
    made = deploy_hooks(tmp_path, "Hooks: {pre-deploy: 'seq 1 12; exit 4'}\nweb: {}\n")
    ran = []

    with pytest.raises(DeployerError) as error:
        hooks.around(made, lambda post: ran.append(post))

    assert str(error.value) == (f"host root@web1:22: instance c1: {tmp_path}/app.yaml: Hooks.pre-deploy: "
                                "pre-deploy hook failed (exit code 4): nothing was done on the host")
    assert error.value.details == [str(n) for n in range(3, 13)] and ran == []


def test_the_post_hook_runs_once_and_its_failure_is_the_tasks_once_the_result_is_shown(tmp_path):
    made = deploy_hooks(tmp_path, "web: {}\n", **{"hooks": {"post_deploy": "echo $DEPLOYER_RESULT; exit 3"}})

    def deploying(post):
        post(True, ["web"], 2)
        post(False)  # the same deploy failing later: no second run
        return done()

    result = hooks.around(made, deploying)

    assert [h.to_dict()["exit_code"] for h in result.hooks] == [3] and made.lines == [("post-deploy", "ok")]
    with pytest.raises(DeployerError) as error:
        hooks.check(result)
    assert str(error.value) == ("host root@web1:22: instance c1: deployer.hooks.post_deploy: post-deploy hook failed "
                                "(exit code 3): the deploy itself is done (release 2)")


def test_a_deploy_failing_before_its_lock_still_gets_its_post_hook_as_failed(tmp_path):
    made = deploy_hooks(tmp_path, "Hooks: {post-deploy: 'echo $DEPLOYER_RESULT'}\nweb: {}\n")

    def unreachable(post):
        raise DeployerError("cannot connect")

    with pytest.raises(DeployerError, match="cannot connect"):
        hooks.around(made, unreachable)
    assert made.lines == [("post-deploy", "failed")]


def test_the_templates_hook_wins_over_fabric_yamls_and_a_rollback_takes_fabric_yamls_alone(tmp_path, monkeypatch):
    settings = {"hooks": {"pre-deploy": "echo yaml", "post_deploy": "echo yaml post", "pre_rollback": "echo back"}}
    made = deploy_hooks(tmp_path, "Hooks: {pre-deploy: echo template}\nweb: {}\n", **settings)
    monkeypatch.chdir(tmp_path)
    rollback = hooks.of("rollback", host(**settings), "c1", Options())

    assert {name: command for name, (command, _) in made.commands.items()} == {
        "pre-deploy": "echo template", "post-deploy": "echo yaml post"}
    assert {name: command for name, (command, _) in rollback.commands.items()} == {"pre-rollback": "echo back"}
    assert rollback.directory == str(tmp_path)


def test_no_hooks_runs_none_and_says_so_once(tmp_path):
    made = deploy_hooks(tmp_path, "Hooks: {pre-deploy: 'exit 1', post-deploy: 'exit 1'}\nweb: {}\n", Options(hooks=False))
    posts = []

    result = hooks.around(made, lambda post: (posts.append(post), done())[-1])

    assert posts == [None]  # no post hook to wait for: the host releases its lock at once
    assert result.hooks == () and result.notes == ("--no-hooks: pre-deploy, post-deploy not run",)


def test_a_dry_run_says_so_to_its_hooks(tmp_path):
    made = deploy_hooks(tmp_path, "Hooks: {pre-deploy: 'echo $DEPLOYER_DRY_RUN'}\nweb: {}\n", Options(dry_run=True))

    made.pre()

    assert made.lines == [("pre-deploy", "1")]

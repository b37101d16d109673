"""Hostile input, table-driven: names are refused with one clear line and exit 2 before
anything reaches the host; values reach the container verbatim; a canary file proves that
no shell on the host ever ran any of them; volume paths never leave the instance's
volume directory."""

import json
import os
import posixpath
import secrets
import shlex
import subprocess
import sys

import pytest
from faultkit import REPO_ROOT, cli_env, exists, inspect_json, running, write_template
from support import docker, env_of, remove_instance

CANARY = "{canary}"  # replaced by a path under the test's tmp_path

# Values that would run something if any shell on the host interpreted them. Every one
# must arrive in the container exactly as written.
VALUES = {
    "single quote": "it's",
    "double quote": 'say "hi"',
    "unbalanced quotes": "'\"'\"",
    "dollar paren": f"$(touch {CANARY}.dollar)",
    "backticks": f"`touch {CANARY}.backtick`",
    "semicolon": f"x; touch {CANARY}.semicolon",
    "pipe": f"x | touch {CANARY}.pipe",
    "and": f"x && touch {CANARY}.and",
    "quote breakout": f"'; touch {CANARY}.single; '",
    "double quote breakout": f'"; touch {CANARY}.double; "',
    "variables": "${HOME} $PATH $0 $$ ${B}",
    "backslashes": "a\\b\\\\c\\n",
    "newline": f"line one\ntouch {CANARY}.newline\n",
    "carriage return and tab": "a\rb\tc",
    "leading dash": "--privileged",
    "lone dash": "-",
    "percent": "%s %n %%",
    "glob": "* ? [a-z] ~",
    "unicode": "ünïcödé ✓ 日本語 🚀",
    "spaces only": "   ",
    "empty": "",
    "boundary-like": "@@deployer-0000000000000000 end",
    "ten kilobytes": "x" * 10240,
}

# Container paths; each is mounted from a directory deployer chooses under
# <volume_dir>/<instance>/<service>/.
VOLUME_PATHS = {
    "dotdot": "/../../etc/escape",
    "dotdot in the middle": "/data/../../../../root/escape",
    "double slash": "//double",
    "dot dirs": "/a/./b/../c",
    "semicolon": f"/data; touch {CANARY}.vsemicolon",
    "dollar paren": f"/$(touch {CANARY}.vdollar)",
    "backticks": f"/`touch {CANARY}.vbacktick`",
    "pipe": "/a|b",
    "quotes": "/q'uo\"te",
    "spaces": "/with space",
    "leading dash": "/-rf",
    "dots only": "/...",
    "unicode": "/dätä",
    "newline": "/new\nline",
}

# Label names Docker takes as they are (no blank, no '=': see the refused ones below).
LABEL_KEYS = {
    "dollar paren": f"k$(touch${{IFS}}{CANARY}.lkdollar)",
    "backticks": f"k`touch${{IFS}}{CANARY}.lkbacktick`",
    "quotes": "k'\"",
    "semicolon": "k;x",
    "leading dash": "-k",
    "unicode": "kë✓",
    "newline": "k\nx",
}


def _fill(text, canary):
    return text.replace(CANARY, str(canary))


@pytest.fixture(scope="module")
def hostile(sshd, docker_engine, busybox_image, tmp_path_factory):
    """One deploy carrying every hostile value in env, labels, cmd, --var, workdir and
    volumes (one deploy for the whole table: each check below reads docker inspect)."""
    tmp = tmp_path_factory.mktemp("hostile")
    canary = tmp / "canary"
    instance = f"h{secrets.token_hex(4)}"
    values = {name: _fill(v, canary) for name, v in VALUES.items()}
    names = sorted(values)
    volumes = {name: _fill(p, canary) for name, p in VOLUME_PATHS.items()}
    label_keys = {name: _fill(k, canary) for name, k in LABEL_KEYS.items()}
    var_value = _fill(f"$(touch {CANARY}.var) `touch {CANARY}.var2`", canary)
    default = _fill(f"'$(touch {CANARY}.default)' `touch {CANARY}.default2`", canary)
    template = {
        "Env": {f"S{i}": values[n] for i, n in enumerate(names)},
        "Vars": {"hostile_default": default},
        "probe": {
            "image": "local/busybox",
            "cmd": ["sh", "-c", "exec sleep 3600", "sh", *(values[n] for n in names)],
            "env": {f"V{i}": values[n] for i, n in enumerate(names)} | {"FROM_VAR": "{hostile}", "FROM_DEFAULT": "{hostile_default}"},
            "labels": {f"v{i}": values[n] for i, n in enumerate(names)}
            | {key: "label-key-probe" for key in label_keys.values()},
            "workdir": _fill(f"/work dir/$(touch {CANARY}.workdir)", canary),
        },
        "strcmd": {
            "image": "local/busybox",
            "cmd": _fill(
                f"sh -c 'exec sleep 3600' sh '$(touch {CANARY}.s1)' \"`touch {CANARY}.s2`\" a\\;b -x 'it'\\''s'",
                canary,
            ),
        },
        "vols": {
            "image": "local/busybox",
            "cmd": ["sleep", "3600"],
            "volumes": sorted(volumes.values()),
        },
    }
    path = write_template(tmp, template)
    cmd = [sys.executable, "-m", "deployer", "-H", sshd.target, "-i", str(sshd.key),
           "deploy", str(path), f"--instance={instance}", f"--var=hostile={var_value}"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, env=cli_env(sshd))
    yield dict(result=result, instance=instance, values=values, names=names, canary=canary,
               volumes=volumes, label_keys=label_keys, var_value=var_value, default=default, tmp=tmp, sshd=sshd,
               template=template)
    remove_instance(instance)


def test_a_template_full_of_hostile_values_deploys(hostile):
    result = hostile["result"]
    assert result.returncode == 0, result.stderr
    for service in ("probe", "strcmd", "vols"):
        assert running(f"{hostile['instance']}.{service}")


@pytest.mark.parametrize("name", sorted(VALUES))
def test_a_hostile_env_value_reaches_the_container_verbatim(hostile, name):
    index = hostile["names"].index(name)
    env = env_of(f"{hostile['instance']}.probe")
    assert env[f"V{index}"] == hostile["values"][name]
    assert env[f"S{index}"] == hostile["values"][name]  # through the template-wide Env


@pytest.mark.parametrize("name", sorted(VALUES))
def test_a_hostile_label_value_reaches_the_container_verbatim(hostile, name):
    index = hostile["names"].index(name)
    labels = inspect_json(f"{hostile['instance']}.probe")["Config"]["Labels"]
    assert labels[f"v{index}"] == hostile["values"][name]


@pytest.mark.parametrize("name", sorted(LABEL_KEYS))
def test_a_hostile_label_name_reaches_the_container_verbatim(hostile, name):
    labels = inspect_json(f"{hostile['instance']}.probe")["Config"]["Labels"]
    assert labels.get(hostile["label_keys"][name]) == "label-key-probe", labels


def test_hostile_command_words_reach_the_container_verbatim(hostile):
    config = inspect_json(f"{hostile['instance']}.probe")["Config"]
    assert config["Cmd"] == hostile["template"]["probe"]["cmd"]


def test_a_command_string_is_split_into_words_and_no_shell_reads_them(hostile):
    config = inspect_json(f"{hostile['instance']}.strcmd")["Config"]
    assert config["Cmd"] == shlex.split(hostile["template"]["strcmd"]["cmd"])


def test_a_hostile_variable_value_or_default_reaches_the_container_verbatim(hostile):
    assert env_of(f"{hostile['instance']}.probe")["FROM_VAR"] == hostile["var_value"]
    assert env_of(f"{hostile['instance']}.probe")["FROM_DEFAULT"] == hostile["default"]


def test_a_hostile_workdir_reaches_the_container_verbatim(hostile):
    config = inspect_json(f"{hostile['instance']}.probe")["Config"]
    assert config["WorkingDir"] == hostile["template"]["probe"]["workdir"]


@pytest.mark.parametrize("name", sorted(VOLUME_PATHS))
def test_a_hostile_volume_path_is_mounted_from_inside_the_instances_volume_directory(hostile, name):
    instance = hostile["instance"]
    path = hostile["volumes"][name]
    wanted = "/" + posixpath.normpath(path).lstrip("/")
    mounts = {m["Destination"]: m for m in inspect_json(f"{instance}.vols")["Mounts"]}
    assert wanted in mounts, sorted(mounts)
    source = mounts[wanted]["Source"]
    base = os.path.realpath(hostile["sshd"].volume_dir / instance / "vols")
    assert os.path.dirname(source) == base, source
    assert os.path.basename(source) not in ("", ".", "..")
    assert os.path.realpath(source) == source  # no symlink, no dot-dot on the way
    assert os.path.isdir(source)


def test_no_hostile_value_ran_anything_on_the_host(hostile):
    assert hostile["result"].returncode == 0, hostile["result"].stderr
    assert sorted(p.name for p in hostile["tmp"].glob("canary*")) == []


def test_the_state_on_the_host_holds_the_hostile_values_exactly(hostile):
    state = json.loads((hostile["sshd"].state_dir / "instances" / hostile["instance"] / "state.json").read_text())
    env = dict(state["services"]["probe"]["spec"]["env"])
    for index, name in enumerate(hostile["names"]):
        assert env[f"V{index}"] == hostile["values"][name], name
    stored = (hostile["sshd"].state_dir / "instances" / hostile["instance"] / "template.yaml").read_text()
    assert json.loads(stored) == hostile["template"]


# -- names: refused before anything reaches the host -------------------------------------

BAD_NAMES = {
    "semicolon": f"a;touch {CANARY}.n1",
    "dollar paren": f"$(touch {CANARY}.n2)",
    "backticks": f"`touch {CANARY}.n3`",
    "pipe": "a|b",
    "ampersand": "a&b",
    "single quote": "a'b",
    "double quote": 'a"b',
    "space": "a b",
    "newline": "a\nb",
    "tab": "a\tb",
    "leading dash": "-rf",
    "double leading dash": "--help",
    "slash": "a/b",
    "dot dot": "..",
    "dot": "a.b",
    "unicode": "ünï",
    "empty": "",
    "too long": "a" * 64,
    "ten kilobytes": "a" * 10240,
}


def _one_error_line(result, *fragments):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], result.stderr


def _no_instance_dir(sshd, instance):
    """Nothing was created for the instance on the host (when its name can be a path)."""
    if instance in ("", ".", "..") or "/" in instance or "\0" in instance or len(instance.encode()) > 255:
        return True
    return not (sshd.state_dir / "instances" / instance).exists()


@pytest.mark.parametrize("command", ["deploy", "status", "destroy"])
@pytest.mark.parametrize("name", sorted(BAD_NAMES))
def test_a_hostile_instance_name_is_refused_with_one_line_and_exit_2(deployer_cli, app, tmp_path, sshd, name, command):
    instance = _fill(BAD_NAMES[name], tmp_path / "canary")
    args = [command, *([app] if command == "deploy" else []), f"--instance={instance}"]

    result = deployer_cli(*args)

    assert result.returncode == 2, result
    _one_error_line(result, "instance")
    if instance:
        _one_error_line(result, "invalid instance name", repr(instance)[:40])
    assert list(tmp_path.glob("canary*")) == []
    assert _no_instance_dir(sshd, instance)


BAD_SERVICE_NAMES = {k: v for k, v in BAD_NAMES.items() if k not in ("dot", "too long", "ten kilobytes", "empty")}
BAD_SERVICE_NAMES |= {"NUL": "a\0b", "too long": "a" * 64, "ten kilobytes": "a" * 10240}


@pytest.mark.parametrize("name", sorted(BAD_SERVICE_NAMES))
def test_a_hostile_service_name_is_refused_with_one_line_and_exit_2(deployer_cli, unique_instance, tmp_path, sshd, name):
    service = _fill(BAD_SERVICE_NAMES[name], tmp_path / "canary")
    path = write_template(tmp_path, {service: {"image": "local/busybox", "cmd": "sleep 3600"}})

    result = deployer_cli("deploy", path, "--instance", unique_instance)

    assert result.returncode == 2, result
    _one_error_line(result, str(path))
    assert list(tmp_path.glob("canary*")) == []
    assert not (sshd.state_dir / "instances" / unique_instance).exists()
    assert docker("ps", "-aq", "--filter", f"label=deployer.instance={unique_instance}").stdout == ""


BAD_ENV_NAMES = {
    "semicolon": "A;B",
    "dollar paren": f"$(touch {CANARY}.e1)",
    "backticks": f"`touch {CANARY}.e2`",
    "equals sign": "A=B",
    "space": "A B",
    "newline": "A\nB",
    "leading dash": "-A",
    "leading digit": "1A",
    "unicode": "Ä",
    "NUL": "A\0B",
    "empty": "",
}


@pytest.mark.parametrize("name", sorted(BAD_ENV_NAMES))
def test_a_hostile_env_name_is_refused_with_one_line_and_exit_2(deployer_cli, unique_instance, tmp_path, sshd, name):
    key = _fill(BAD_ENV_NAMES[name], tmp_path / "canary")
    path = write_template(tmp_path, {"app": {"image": "local/busybox", "cmd": "sleep 3600", "env": {key: "x"}}})

    result = deployer_cli("deploy", path, "--instance", unique_instance)

    assert result.returncode == 2, result
    _one_error_line(result, str(path), "app.env", "not a valid environment variable name")
    assert list(tmp_path.glob("canary*")) == []
    assert not (sshd.state_dir / "instances" / unique_instance).exists()


NUL_PLACES = {
    "env value": {"env": {"A": "x\0y"}},
    "template-wide env value": {},
    "cmd word": {"cmd": ["sleep", "36\x0000"]},
    "cmd string": {"cmd": "sleep 3600\0"},
    "label value": {"labels": {"k": "v\0"}},
    "label name": {"labels": {"k\0": "v"}},
    "volume path": {"volumes": ["/da\0ta"]},
    "workdir": {"workdir": "/w\0"},
    "user": {"user": "ro\0ot"},
}


@pytest.mark.parametrize("place", sorted(NUL_PLACES))
def test_a_nul_byte_anywhere_is_refused_with_one_line_and_exit_2(deployer_cli, unique_instance, tmp_path, sshd, place):
    service = {"image": "local/busybox", "cmd": "sleep 3600", **NUL_PLACES[place]}
    template = {"app": service} | ({"Env": {"A": "\0"}} if place == "template-wide env value" else {})
    path = write_template(tmp_path, template)

    result = deployer_cli("deploy", path, "--instance", unique_instance)

    assert result.returncode == 2, result
    _one_error_line(result, str(path), "NUL")
    assert not (sshd.state_dir / "instances" / unique_instance).exists()


@pytest.mark.parametrize(
    "key",
    [" ", "\t", " \n ", "a b", "a\tb", " lead", "a=b", "=b"],
    ids=["space", "tab", "blank lines", "inner space", "inner tab", "leading space", "equals sign", "leading equals"],
)
def test_a_label_name_docker_cannot_carry_is_refused_before_the_host_is_touched(
    deployer_cli, unique_instance, tmp_path, sshd, key
):
    """docker run --label splits at the first '=' and refuses names with blanks (after
    dropping leading ones): such a name can never reach the container as written, so
    it must be a template error (exit 2), not a failed docker run (exit 1) or a label
    silently renamed ('a=b': 'c' becomes 'a': 'b=c')."""
    path = write_template(tmp_path, {"app": {"image": "local/busybox", "cmd": "sleep 3600", "labels": {key: "v"}}})

    result = deployer_cli("deploy", path, "--instance", unique_instance)

    assert result.returncode == 2, result
    _one_error_line(result, str(path), "app.labels")
    assert not (sshd.state_dir / "instances" / unique_instance).exists()


@pytest.mark.parametrize(
    "other, volumes",
    [("web.next", []), ("web.r1", ["/data"])],
    ids=["the start-first temporary name", "the retained name"],
)
def test_a_service_named_like_another_services_spare_container_is_never_removed_by_its_replacement(
    deployer_cli, unique_instance, tmp_path, other, volumes
):
    """web.next is where a start-first web starts its replacement; web.r1 is where a
    stop-first web keeps its release-1 container. A service of that name must either be
    refused (exit 2) or survive web's replacement untouched."""
    template = {
        "web": {"image": "local/busybox", "cmd": "sleep 3600", "volumes": volumes, "env": {"V": "1"}},
        other: {"image": "local/busybox", "cmd": "sleep 3600"},
    }
    first = deployer_cli("deploy", write_template(tmp_path, template), "--instance", unique_instance)
    if first.returncode == 2:
        _one_error_line(first, other)
        return
    assert first.returncode == 0, first.stderr
    bystander = inspect_json(f"{unique_instance}.{other}")["Id"]

    template["web"]["env"]["V"] = "2"
    second = deployer_cli("deploy", write_template(tmp_path, template), "--instance", unique_instance)

    assert second.returncode == 0, second.stderr
    assert exists(f"{unique_instance}.{other}"), f"{other}'s container was removed by web's replacement"
    assert inspect_json(f"{unique_instance}.{other}")["Id"] == bystander
    assert inspect_json(f"{unique_instance}.{other}")["Config"]["Labels"]["deployer.service"] == other
    assert running(f"{unique_instance}.{other}")


@pytest.mark.parametrize("escape", ["\\ud83d", "\\udc00", "\\ud83d\\ude80"], ids=["high", "low", "pair"])
def test_a_surrogate_escape_in_a_template_is_refused_with_one_line_and_exit_2(deployer_cli, unique_instance, tmp_path, sshd, escape):
    """YAML's \\u escapes are UTF-16 code units: "\\ud83d" (or a pair of them, which YAML
    does not combine) is a lone surrogate, a str no UTF-8 encoder takes: it can never
    reach the host, so the template must be refused like a NUL byte is."""
    path = tmp_path / "t.yaml"
    path.write_text(f'app:\n  image: local/busybox\n  cmd: sleep 3600\n  env: {{A: "x{escape}"}}\n')

    result = deployer_cli("deploy", path, "--instance", unique_instance)

    assert result.returncode == 2, result
    # libyaml refuses the escape itself (naming line and column), the pure-Python reader
    # lets it through to the schema (naming the key): either way, one line naming the file
    _one_error_line(result, str(path))
    assert "app.env.A" in result.stderr or "line 4" in result.stderr, result.stderr
    assert not (sshd.state_dir / "instances" / unique_instance).exists()


def test_a_symlink_planted_in_the_volume_directory_is_refused(deployer_cli, app, unique_instance, sshd, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    planted = sshd.volume_dir / unique_instance / "web" / "www"
    planted.parent.mkdir(parents=True)
    planted.symlink_to(outside)

    result = deployer_cli("deploy", app, "--instance", unique_instance)

    assert result.returncode == 1
    assert f"volume directory {planted} leads outside" in result.stderr and "refused" in result.stderr
    assert docker("ps", "-aq", "--filter", f"label=deployer.instance={unique_instance}").stdout == ""
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("command", [("run", "web", "--", "sh", "-c", "echo x > /www/planted"), ("restart",), ("start",)])
def test_a_symlink_planted_after_a_deploy_is_refused_by_every_start_that_mounts_it(
    deployer_cli, app, unique_instance, sshd, tmp_path, command
):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    planted = sshd.volume_dir / unique_instance / "web" / "www"
    if command[0] == "start":
        deployer_cli("stop", unique_instance, check=True)
    planted.rename(tmp_path / "moved")
    planted.symlink_to(outside)

    result = deployer_cli(command[0], unique_instance, *command[1:])

    assert result.returncode == 1, result
    assert f"volume directory {planted} leads outside" in result.stderr and "refused" in result.stderr
    assert list(outside.iterdir()) == []
    assert sshd.volume_dir.stat().st_mode & 0o077 == 0  # only its owner can plant one in the volume root

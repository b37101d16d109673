"""deployer import: reading a compose file (bad input, extends, merge tags), env files,
secrets, and builds that become git services."""

import subprocess

import pytest
import yaml
from compose_helpers import data, dropped, import_text, noted, rendered, validated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployer.compose import envfile
from deployer.errors import EXIT_USAGE, TemplateError

BAD = {
    "not YAML": ("services: [", "compose.yaml: line 2, column 1: invalid YAML"),
    "not a mapping": ("- a\n- b\n", "compose.yaml: not a compose file: expected a mapping with 'services:'"),
    "no services": ("volumes: {a: {}}\n", "compose.yaml: not a compose file: no 'services:'"),
    "version 1": ("web: {image: nginx}\n", "compose.yaml: a version 1 compose file (services at the top level)"),
    "a service with nothing to run": ("services:\n  web: {ports: ['80']}\n",
                                      "compose.yaml: web: no image and no build: nothing to run"),
    "an empty service": ("services:\n  web:\n", "compose.yaml: web: no image and no build"),
    "a key given twice": ("services:\n  web: {image: a}\n  web: {image: b}\n", "key 'web' is given twice"),
    "an image deployer cannot read": ("services:\n  web: {image: 'Not An Image'}\n",
                                      "compose.yaml: web.image: expected an image reference"),
    "extends in a cycle": ("services:\n  a: {image: x, extends: b}\n  b: {image: x, extends: a}\n",
                           "compose.yaml: a.extends: extends makes a cycle: a -> b -> a"),
    "extends of an unknown service": ("services:\n  a: {image: x, extends: {service: nope}}\n",
                                      "compose.yaml: a.extends: extends names no service of this file: 'nope'"),
    "an unknown secret": ("services:\n  a: {image: x, secrets: [pw]}\n", "compose.yaml: a.secrets[0]: names no secret"),
    "a NUL byte": ('services:\n  a: {image: x, command: "a\\0b"}\n', "compose.yaml: a.command: contains a NUL byte"),
    "environment as a string": ("services:\n  a: {image: x, environment: A=1}\n",
                                "compose.yaml: a.environment: expected a mapping or a list of NAME=value"),
    "ports as a number": ("services:\n  a: {image: x, ports: 80}\n", "compose.yaml: a.ports: expected a list of ports"),
    "a network as a boolean": ("services:\n  a: {image: x, networks: {n: true}}\n",
                               "compose.yaml: a.networks: expected a list or a mapping of networks"),
    "secrets as a list at the top": ("services:\n  a: {image: x}\nsecrets: [s]\n", "compose.yaml: secrets: expected"),
}


@pytest.mark.parametrize("text, message", BAD.values(), ids=list(BAD))
def test_bad_input_is_one_line_naming_file_and_key_with_exit_code_2(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TemplateError) as caught:
        import_text(tmp_path, text)

    assert message in str(caught.value).replace(str(tmp_path) + "/", "")
    assert caught.value.exit_code == EXIT_USAGE and "\n" not in str(caught.value)


KEYS = ["image", "build", "command", "environment", "env_file", "secrets", "volumes", "restart", "init", "labels",
        "stop_grace_period", "mem_limit", "deploy", "healthcheck", "links", "depends_on", "expose", "ports",
        "networks", "extends", "container_name", "x-a", "unknown"]
INNER = ["test", "retries", "disable", "replicas", "resources", "limits", "restart_policy", "condition", "context",
         "args", "target", "source", "type", "published", "aliases", "service", "file", "path", "required", "db"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=6), st.sampled_from(
    ["db", "db:5432", "redis://db/0", "a=b", "${X}", "./x", "/data", "x:/y:ro", "1-3:1-3", "10s", "CMD", "team/x"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(INNER), inner, max_size=3)), max_leaves=6)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(["web", "db"]), st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5),
                       min_size=1))
def test_a_compose_file_of_any_shape_imports_or_is_one_error_line(tmp_path_factory, services):
    directory = tmp_path_factory.mktemp("any")
    try:
        import_text(directory, yaml.safe_dump({"services": services}))
    except TemplateError as e:
        assert "\n" not in str(e)


def test_extends_merges_mappings_combines_sequences_and_replaces_the_rest(tmp_path):
    result = import_text(tmp_path, """\
        services:
          base:
            image: team/x
            user: root
            command: base
            environment: [TZ=utc, PORT=80]
            ports: ["80"]
            volumes: ["a:/data", "/cache"]
          common: {extends: base, environment: {PORT: 8080}, command: common}
          cli:
            extends: {service: common}
            ports: ["81"]
            volumes: ["b:/data:ro"]
            user: !reset null
            command: !override [cli]
        """)

    assert data(result)["cli"] == {"image": "team/x", "cmd": ["cli"], "env": {"TZ": "utc", "PORT": "8080"},
                                   "ports": ["80", "81"], "volumes": ["/cache", "/data:ro"]}


def test_extends_of_another_file_is_dropped_with_why(tmp_path):
    result = import_text(tmp_path, "services:\n  web: {image: x, extends: {file: common.yml, service: web}}\n")

    assert "an import reads one compose file" in dropped(result)["web.extends"]


def test_anchors_and_merge_keys_work_and_extension_keys_are_listed_once(tmp_path):
    result = import_text(tmp_path, """\
        x-env: &env {FOO: bar}
        x-common: &common
          restart: always
        services:
          a: {<<: *common, image: team/x, environment: *env, x-note: hi}
          b: {<<: *common, image: team/y, environment: {<<: *env, ZOT: quix}}
        """)

    assert data(result)["a"] == {"image": "team/x", "env": {"FOO": "bar"}, "restart": "always"}
    assert data(result)["b"]["env"] == {"FOO": "bar", "ZOT": "quix"}
    assert [d.key for d in result.dropped] == ["x-env, x-common, a.x-note"]


ENV_FILE = """\
# a comment
export A=1
B = two words # a comment
C='literal $X'
D="a\\tb ${TAG:-7}"
E="multi
line"
UNSET
"""


def test_an_env_file_is_read_and_its_values_written_in_under_environment(tmp_path):
    result = import_text(tmp_path, """\
        services:
          web: {image: team/x, env_file: [web.env, {path: missing.env, required: false}], environment: {A: over}}
        """, {"web.env": ENV_FILE})

    assert dict(rendered(result)["web"].env) == {"A": "over", "B": "two words", "C": "literal $X", "D": "a\tb 7",
                                                 "E": "multi\nline"}
    assert "its 5 variables are written into env" in noted(result)["web.env_file[0]"]
    assert "does not exist" in noted(result)["web.env_file[1]"]


def test_a_missing_env_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(TemplateError, match="missing.env: cannot read env file"):
        import_text(tmp_path, "services:\n  web: {image: team/x, env_file: missing.env}\n")


@pytest.mark.parametrize("line", ["NOT A LINE", "A='unclosed", 'A="x" trailing'])
def test_a_malformed_env_file_line_is_an_error_naming_its_line(line):
    with pytest.raises(TemplateError, match="web.env: line 2: "):
        envfile.parse(f"OK=1\n{line}\n", "web.env")


def test_a_secret_pointed_at_by_a_FILE_variable_becomes_that_variable(tmp_path):
    result = import_text(tmp_path, """\
        services:
          db:
            image: postgres
            environment: {POSTGRES_PASSWORD_FILE: /run/secrets/db-password}
            secrets: [db-password]
            healthcheck: {test: "pg_isready --password=$$(cat /run/secrets/db-password)"}
          app: {image: team/x, secrets: [{source: api-key, target: key}]}
        secrets:
          db-password: {file: db/password.txt}
          api-key: {environment: API_KEY}
        """)

    assert data(result)["db"]["env"] == {"POSTGRES_PASSWORD": {"secret": "db-password"}}
    assert data(result)["app"]["env"] == {"API_KEY": {"secret": "API_KEY"}}
    assert set(dropped(result)) == {"db.healthcheck", "app.secrets[0]"}
    assert "the file /run/secrets/key" in dropped(result)["app.secrets[0]"]
    assert set(result.secrets) == {"db-password", "API_KEY"}
    assert "# Secret db-password (compose: the secret db-password, from the file db/password.txt)" in result.template


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   check=True, capture_output=True)


def test_a_build_in_a_git_repository_becomes_a_git_service_that_validates(tmp_path):
    files = {"api/Dockerfile": "FROM scratch\n", "api/Dockerfile.prod": "FROM scratch\n"}
    compose = """\
        services:
          web: {build: ., image: team/web}
          api: {build: {context: ./api, dockerfile: Dockerfile.prod, args: [MODE=prod, FROM_SHELL], target: x}}
        """
    import_text(tmp_path, compose, {**files, "Dockerfile": "FROM scratch\n"})
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "one")

    result = import_text(tmp_path, compose)

    assert data(result) == {"web": {"git": "."}, "api": {"git": {
        "path": "api", "dockerfile": "Dockerfile.prod", "build_args": {"MODE": "prod"}}}}
    assert set(dropped(result)) == {"api.build.args.FROM_SHELL", "api.build.target"}
    assert "deployer tags the images it builds itself" in noted(result)["web.image"]
    assert "# git paths are relative to this file: keep it beside the compose file." in result.template
    validated(result, tmp_path)


def test_a_build_outside_git_runs_its_image_or_asks_for_one(tmp_path):
    result = import_text(tmp_path, """\
        services:
          web: {build: ./web, image: team/web}
          api: {build: "https://github.com/team/api.git#main"}
        """, {"web/Dockerfile": "FROM scratch\n"})

    assert data(result) == {"team/web": {}, "api": {"image": "{API_IMAGE}"}}
    assert "not in a git repository" in dropped(result)["web.build"]
    assert "the variable {API_IMAGE}" in dropped(result)["api.build"]
    assert set(result.variables) == {"API_IMAGE"}
    validated(result, tmp_path, {"API_IMAGE": "team/api:1"})

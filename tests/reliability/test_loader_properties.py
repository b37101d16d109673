"""Property-based: whatever text a template or a state file holds, deployer answers with
its own error type and a message, never another exception (which the CLI would show as
a traceback), and never takes unbounded time.

Templates are generated three ways: YAML dumped from random nested data built mostly of
the template language's own keys (so generation reaches deep into validation), raw
text, and YAML text built from YAML's own syntax (anchors, aliases, tags, merge keys,
complex keys). A template that loads must also render, and its specs must be UTF-8
encodable: that is what it takes to reach a host.
"""

import json
import subprocess
import sys
import textwrap

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from deployer import plugins
from deployer.model import spec, template
from deployer.errors import DeployerError
from deployer.model.state import InstanceState

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SERVICE_KEYS = [
    "image", "cmd", "entrypoint", "env", "volumes", "ports", "privileged", "restart", "init",
    "stop_timeout", "user", "workdir", "labels", "memory", "cpus", "healthcheck", "register",
    "expose", "git",
]
TOP_KEYS = ["web", "redis:7", "team/app", "Env", "ENV", "a/redis", "b/redis", "worker", "x.y", "1", "Web"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["8080", "80:8080", "127.0.0.1::8080", "/data", "/data:ro", "512m", "30s", "no",
                     "on-failure:3", "sleep 3600", "{instance}", "{{x}}", "{unset}", "redis:7", "-x", ":",
                     "a=b", "/..", "2024-01-01", "0x1F", "1e3", ".inf", "\0"]),
)


def _trees(leaves):
    keys = st.one_of(st.sampled_from(SERVICE_KEYS + TOP_KEYS + ["cmd", "secret", "path"]), st.text(max_size=8),
                     st.integers(-3, 3))
    return st.recursive(
        leaves,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
        max_leaves=25,
    )


services = st.dictionaries(st.sampled_from(SERVICE_KEYS), _trees(scalars), max_size=6)
documents = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(TOP_KEYS), st.text(max_size=10)),
                    st.one_of(services, scalars, _trees(scalars)), max_size=4),
    _trees(scalars),
)

YAML_SYNTAX = [
    "web:", "  image: local/busybox", "  cmd: sleep 1", "  env:", "    A: &x 1", "    B: *x", "<<: *x",
    "<<: {image: a}", "? [a, b]", "? {a: 1}", "? !!set {a}", ": v", "!!binary aGk=", "!!python/object:os.system",
    "!!str 1", "!!int x", "!!float x", "!!timestamp 2001-01-01", "!!omap [a: 1]", "!!set {a, b}", "&a [*a]",
    "*undefined", "- a", "- [", "{", "}", "'", '"', '"\\ud83d"', '"\\0"', "%YAML 1.2", "---", "...", "\t",
    "a: b: c", "key: value", "Env: {A: 1}", "redis:7:", "  - /data", "  ports: [99999]", "|", ">-",
    "%TAG ! tag:x,2000:", "!x y", "null:", "~: ~", "1: 2",
]
yaml_texts = st.lists(st.sampled_from(YAML_SYNTAX), max_size=12).map("\n".join)


def _loads_or_says_why(text, variables=None):
    """parse() gives a Template that renders and can be sent, or raises DeployerError."""
    try:
        loaded = template.parse(text, "t.yaml", variables=variables)
    except DeployerError as e:
        assert str(e).startswith("t.yaml"), str(e)
        assert "\n" not in str(e), str(e)
        return
    assert isinstance(loaded, template.Template)
    try:
        specs = spec.render(loaded, "i", "/v", plugins.installed(), {n: "s" for n in loaded.secret_names})
    except DeployerError:
        return
    for one in specs:
        one.run_args()
        json.dumps(one.to_dict(), ensure_ascii=False).encode("utf-8")
    loaded.text.encode("utf-8")


@SETTINGS
@given(documents)
def test_any_yaml_document_loads_into_a_template_or_raises_a_deployer_error(data):
    _loads_or_says_why(yaml.safe_dump(data, allow_unicode=True))


@SETTINGS
@given(documents)
def test_any_yaml_document_with_variables_loads_or_raises_a_deployer_error(data):
    _loads_or_says_why(yaml.safe_dump(data, allow_unicode=True), variables={"instance": "i", "host": "h"})


@SETTINGS
@given(st.text(max_size=300))
@example("? !!set {a: null}\n: x\n")  # a set as a key: unhashable
@example("[" * 5000)  # nesting deeper than Python's recursion limit
@example("web: " + "[" * 5000)
@example('web:\n  image: local/busybox\n  env: {A: "\\ud83d"}\n')  # a lone surrogate
@example('web:\n  image: local/busybox\n  cmd: "sleep \\udc00"\n')
def test_any_text_loads_into_a_template_or_raises_a_deployer_error(text):
    _loads_or_says_why(text)


@SETTINGS
@given(yaml_texts)
def test_any_text_made_of_yaml_syntax_loads_or_raises_a_deployer_error(text):
    _loads_or_says_why(text)


def test_a_template_of_nested_aliases_loads_or_fails_in_bounded_time():
    """The 'billion laughs': nine levels of ten aliases each is 10**9 strings for a walk
    that does not share repeated nodes. PyYAML shares them, so parsing is instant; every
    deploy and validate also fills {placeholders}, which must not walk 10**9 strings."""
    lines = ['lol0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines += ["web:", "  image: local/busybox", "  cmd: sleep 3600"]
    code = textwrap.dedent(
        """
        import sys
        from deployer.model import template
        from deployer.errors import DeployerError
        try:
            template.parse(sys.stdin.read(), "t.yaml", variables={"instance": "i", "host": "h"})
        except DeployerError as e:
            print(e)
        """
    )
    try:
        done = subprocess.run([sys.executable, "-c", code], input="\n".join(lines), capture_output=True,
                              text=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise AssertionError("loading a template of nested aliases with variables took over 10 s") from None
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("t.yaml"), done.stdout


# -- state files ------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
STATE_KEYS = ["format", "instance", "template", "release", "deployed_at", "deployed_by", "services",
              "variables", "secrets"]
GOOD_SERVICE = {"container": "i.web", "config_hash": "0123456789abcdef", "image_id": "sha256:00", "spec": {}}
GOOD_STATE = {"format": 1, "instance": "i", "template": "t.yaml", "release": 1, "deployed_at": "", "deployed_by": "",
              "services": {"web": GOOD_SERVICE}, "variables": {}, "secrets": {}}
state_objects = st.builds(
    lambda base, changes, dropped: {k: v for k, v in {**base, **changes}.items() if k not in dropped},
    st.just(GOOD_STATE),
    st.dictionaries(st.sampled_from(STATE_KEYS), json_values, max_size=3),
    st.sets(st.sampled_from(STATE_KEYS), max_size=2),
)


def _state_or_says_why(text):
    try:
        state = InstanceState.from_json(text, "host:/s/state.json")
    except DeployerError as e:
        assert "host:/s/state.json" in str(e) and "\n" not in str(e), str(e)
        return
    assert isinstance(state, InstanceState)
    state.to_json()


@SETTINGS
@given(st.text(max_size=200))
@example("[" * 100000)  # deeper than the JSON decoder's recursion
@example('{"instance":"i","template":"t","release":1e999,"deployed_at":"","deployed_by":"","services":{}}')
@example('{"instance":"i","template":"t","release":1' + "0" * 5000 + ',"deployed_at":"","deployed_by":"","services":{}}')
@example('{"format": 99}')
@example('{"format": "1"}')
@example(json.dumps(GOOD_STATE)[:-7])  # truncated
def test_any_text_as_a_state_file_reads_or_raises_a_deployer_error_naming_it(text):
    _state_or_says_why(text)


@SETTINGS
@given(state_objects)
def test_any_json_object_as_a_state_file_reads_or_raises_a_deployer_error_naming_it(data):
    _state_or_says_why(json.dumps(data))

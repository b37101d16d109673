"""Variables' defaults (the ``Vars`` setting) and variables in an ``expose`` format."""

import pytest

from deployer.errors import EXIT_USAGE, TemplateError
from deployer.model import template
from deployer.model.variables import UnsetVariables
from deployer.ops.deploy import validate

BUILT_IN = {"instance": "c1", "host": "web1"}
APP = """\
Vars: {greeting: hello, port: 8080, site: "https://{instance}.example.com"}
web:
  image: team/app
  env: {GREETING: "{greeting}", PORT: "{port}", SITE: "{site}", DOMAIN: "{domain}"}
"""


def env(text, **given):
    (web,) = template.parse(text, "app.yaml", variables={**BUILT_IN, **given}).services
    return web.options["env"]


def test_a_default_fills_each_placeholder_given_no_value_and_may_use_the_built_ins():
    assert env(APP, domain="c1.example.com") == {
        "GREETING": "hello", "PORT": "8080", "SITE": "https://c1.example.com", "DOMAIN": "c1.example.com",
    }


def test_a_value_given_beats_the_default():
    filled = env(APP, domain="d", greeting="hi", site="https://{not a placeholder}")
    assert (filled["GREETING"], filled["SITE"]) == ("hi", "https://{not a placeholder}")


def test_a_variable_without_value_or_default_is_still_an_error_naming_only_it():
    with pytest.raises(UnsetVariables) as error:
        env(APP)

    assert error.value.message.startswith("variables without a value: domain (")
    assert error.value.exit_code == EXIT_USAGE


def test_validate_names_only_the_variables_without_a_default(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(APP)

    with pytest.raises(UnsetVariables, match=r"variables without a value: domain \("):
        validate(path)
    assert [s.name for s in validate(path, {"domain": "x"}).services] == ["web"]


@pytest.mark.parametrize("name", ["instance", "host"])
def test_a_built_in_variable_has_no_default(name):
    with pytest.raises(TemplateError) as error:
        env(f"Vars: {{{name}: x}}\nweb: {{image: team/app}}\n")

    assert str(error.value) == f"app.yaml: Vars.{name}: {{{name}}} is built in: it has no default"


EXPOSED = """\
db: {image: postgres, register: {5432: sql}}
web:
  image: team/app
  expose: {"db:sql": {env: DATABASE_URL, format: "postgresql://{user}@{host}:{port}/{instance}?x={{literal}}"}}
"""


def format_of(text, **given):
    web = template.parse(text, "app.yaml", variables={**BUILT_IN, **given}).services[1]
    return web.options["expose"]["db:sql"]["format"]


def test_an_expose_format_may_use_instance_and_variables_and_its_host_and_port_are_the_endpoints():
    fmt = format_of(EXPOSED, user="app")

    assert fmt.format(host="172.17.0.1", port=31000) == "postgresql://app@172.17.0.1:31000/c1?x={literal}"


def test_a_variables_braces_in_an_expose_format_reach_the_env_as_written():
    fmt = format_of(EXPOSED, user="a{b}c")

    assert fmt.format(host="h", port=1).startswith("postgresql://a{b}c@h:1/")


def test_a_variable_without_value_in_an_expose_format_is_named():
    with pytest.raises(UnsetVariables, match="variables without a value: user"):
        format_of(EXPOSED)

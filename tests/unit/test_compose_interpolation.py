"""deployer import: compose's ${VAR} interpolation, and values that must arrive verbatim."""

import json

import pytest
from compose_helpers import data, dropped, import_text, noted, rendered, validated
from hypothesis import given
from hypothesis import strategies as st

from deployer.compose.interpolate import Interpolation, escape, template_text
from deployer.errors import TemplateError
from deployer.model.variables import substitute

# compose value -> (template text, variables the template needs); .env sets SET=x, EMPTY=
INTERPOLATIONS = {
    "${VAR} is a template variable": ("a ${VAR} b", "a {VAR} b", {"VAR"}),
    "$VAR is one too": ("$VAR/$OTHER", "{VAR}/{OTHER}", {"VAR", "OTHER"}),
    "$$ is a literal $": ("$$HOME $${X}", "$HOME ${X}", set()),
    "a lone $ stays": ("cost: 5$ or $1", "cost: 5$ or $1", set()),
    "a default is written in": ("${PORT:-8080}", "8080", set()),
    "a default is itself interpolated": ("${A:-${B}}", "{B}", {"B"}),
    "a variable .env sets stays a variable": ("${SET:-d}", "{SET}", {"SET"}),
    "an empty .env value takes :- defaults but not - ones": ("${EMPTY:-d}/${EMPTY-d}", "d/{EMPTY}", {"EMPTY"}),
    "a required variable is a variable": ("${VAR:?give it}", "{VAR}", {"VAR"}),
    "an alternative is used when .env sets the variable": ("${SET:+on}/${UNSET:+on}", "on/", set()),
    "an unused default asks for nothing": ("${SET:-${NOT_ASKED}}", "{SET}", {"SET"}),
    "deployer's own names are renamed": ("${host}-${instance}", "{compose_host}-{compose_instance}",
                                         {"compose_host", "compose_instance"}),
    "the project's name is the instance": ("${COMPOSE_PROJECT_NAME}", "{instance}", set()),
    "literal braces are escaped from deployer's placeholders": ("{x} {{y}} $${{z}}", "{{x}} {{{y}}} ${{{z}}}", set()),
}


@pytest.mark.parametrize("value, text, needed", INTERPOLATIONS.values(), ids=list(INTERPOLATIONS))
def test_an_interpolation_becomes_template_text(value, text, needed):
    interpolation = Interpolation({"SET": "x", "EMPTY": ""}, "compose.yaml")

    converted = interpolation.text(value, "web.environment.X")

    assert template_text(converted) == text
    assert set(interpolation.needed) == needed


@pytest.mark.parametrize("value", ["${", "${VAR", "${1X}", "${VAR/a/b}", "${A:-${B}"])
def test_a_broken_interpolation_is_an_error_naming_file_and_key(value):
    with pytest.raises(TemplateError) as caught:
        Interpolation({}, "compose.yaml").text(value, "web.command")

    assert str(caught.value).startswith("compose.yaml: web.command: ")


@given(st.text(alphabet="{}$ab_.-1 \n", max_size=30))
def test_escaped_literal_text_comes_back_from_deployers_substitution_unchanged(text):
    assert substitute({"k": escape(text)}, {}, "t.yaml") == {"k": text}


def test_variables_are_listed_in_the_header_and_validate_once_given(tmp_path):
    result = import_text(tmp_path, """\
        services:
          web:
            image: "team/web:${TAG}"
            ports: ["${PORT:-8080}:80"]
            environment: {DB: "postgres://app:${DB_PASSWORD}@10.0.0.5/app"}
        """)

    assert set(result.variables) == {"TAG", "DB_PASSWORD"}
    assert "# Give at deploy time: --var DB_PASSWORD=... --var TAG=..." in result.template
    assert data(result)["web"]["ports"] == ["8080:80"]
    assert "its default '8080' is written in" in noted(result)["web.ports[0]"]
    specs = rendered(result, {"TAG": "2", "DB_PASSWORD": "pw"})
    assert specs["web"].image == "team/web:2"
    assert dict(specs["web"].env)["DB"] == "postgres://app:pw@10.0.0.5/app"
    validated(result, tmp_path, {"TAG": "2"})


def test_the_dotenv_beside_the_file_decides_between_default_and_variable(tmp_path):
    result = import_text(tmp_path, "services:\n  web: {image: 'team/web:${TAG:-1}', user: '${UID:-0}'}\n",
                         {".env": "TAG=2\n"})

    assert data(result)["web"] == {"image": "team/web:{TAG}", "user": "0"}
    assert set(result.variables) == {"TAG"}


def test_a_variable_right_after_a_literal_dollar_cannot_be_written_and_is_dropped(tmp_path):
    result = import_text(tmp_path, "services:\n  web: {image: team/x, environment: {PRICE: '$$${AMOUNT}'}}\n")

    assert "env" not in data(result)["web"]
    assert "web.environment.PRICE" in dropped(result)


HOSTILE = {
    "quotes": "it's \"quoted\"",
    "dollars": "$HOME ${HOME} $(id) `id`",
    "newlines": "line one\nline two\r\n",
    "braces": "{name} {{name}} {} {1}",
    "yaml words": "yes",
    "yaml null": "~",
    "a time": "12:30",
    "a date": "2020-01-01",
    "hex": "0x1F",
    "a comment": "a # b",
    "a mapping": "a: b",
    "leading space": "  x  ",
    "unicode": "ünï ✓ \u2028 \x85",
    "backslashes": "C:\\path\\n",
    "tab": "a\tb",
}


@pytest.mark.parametrize("value", HOSTILE.values(), ids=list(HOSTILE))
def test_a_hostile_value_reaches_the_container_as_compose_would_give_it(tmp_path, value):
    quoted = json.dumps(value.replace("$", "$$"))  # a YAML double-quoted scalar; $$ is compose's literal $
    result = import_text(tmp_path, f"""\
        services:
          web:
            image: team/web
            command: ["echo", {quoted}]
            environment: {{VALUE: {quoted}}}
            labels: {{value: {quoted}}}
        """)

    (spec,) = rendered(result).values()

    assert dict(spec.env)["VALUE"] == value
    assert spec.cmd == ("echo", value)
    assert dict(spec.labels)["value"] == value
    assert not result.dropped


def test_a_hostile_key_or_value_in_the_report_stays_on_one_line(tmp_path):
    result = import_text(tmp_path, 'services:\n  web: {image: team/web, "bad\\nkey": 1, environment: {"A\\nB": x}}\n')

    assert all("\n" not in line for line in result.report_lines())
    assert all("\n" not in line for line in result.template.splitlines())
    assert "web.bad\\nkey: dropped: " in " ".join(result.report_lines())

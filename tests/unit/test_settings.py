"""One Settings: every deployer.* setting parsed and checked in one place."""

from pathlib import Path

import pytest
from invoke import Config

from deployer.errors import TemplateError
from deployer.settings import SETTINGS, Settings, declared, table
from deployer.tasks import ns

README = Path(__file__).resolve().parents[2] / "README.rst"


def test_no_setting_given_means_every_default():
    assert Settings.parse({}) == Settings()
    assert Settings.of(Config()) == Settings()  # a flat import: no deployer key at all


def test_env_vars_arrive_as_strings_and_are_parsed():
    given = {"retain": "5", "min_uptime": "0.5", "verbose": "yes", "fail_fast": "0", "parallel": "3",
             "discovery": "etcd", "etcd": {"endpoints": "http://a:2379, http://b:2379", "prefix": "/x/"}}
    settings = Settings.parse(given)
    assert (settings.retain, settings.min_uptime, settings.verbose, settings.fail_fast, settings.parallel) == (
        5, 0.5, True, False, 3)
    assert settings.etcd.urls == ("http://a:2379", "http://b:2379") and settings.etcd.prefix == "/x"


@pytest.mark.parametrize("registry", ["registry.example:5000/team", "127.0.0.1:5000", "ghcr.io/org/team", "team"])
def test_a_registry_is_a_host_with_an_optional_port_and_path_or_a_docker_hub_namespace(registry):
    assert Settings.parse({"registry": registry}).registry == registry
    assert Settings.parse(declared()).registry == ""  # unset: a git service is refused on a swarm


def test_a_declared_but_unset_setting_keeps_its_default():
    assert Settings.parse(declared()) == Settings()


@pytest.mark.parametrize(
    "given, message",
    [
        ({"retain": "many"}, "setting deployer.retain: expected a number of at least 0, got 'many'"),
        ({"lock_wait": -1}, "setting deployer.lock_wait: expected a number of at least 0, got -1"),
        ({"parallel": "ten"}, "setting deployer.parallel: expected a number of at least 0, got 'ten'"),
        ({"min_uptime": "soon"}, "setting deployer.min_uptime: expected a number of at least 0, got 'soon'"),
        ({"discovery": "consul"}, "setting deployer.discovery: expected one of state, etcd, got 'consul'"),
        ({"discovery": "etcd"}, "setting deployer.etcd.endpoints: the etcd backend needs at least one URL"),
        ({"router": {"http_port": "70000"}},
         "setting deployer.router.http_port: expected a port (1-65535), got '70000'"),
        ({"router": {"tls": "yes"}}, "setting deployer.router.tls: expected one of acme, internal, off, got 'yes'"),
        ({"router": {"http_port": 8080, "https_port": "8080"}},
         "settings deployer.router.http_port and https_port: both are 8080"),
        ({"registry": "https://registry.example"},
         "setting deployer.registry: expected a registry and an optional path in it, such as "
         "registry.example:5000/team (no scheme, tag or trailing slash), got 'https://registry.example'"),
        ({"registry": "registry.example:5000/team/"}, "setting deployer.registry: expected a registry"),
        ({"registry": "registry.example:5000/Team"}, "setting deployer.registry: expected a registry"),
        ({"registry": "registry.example/team:1"}, "setting deployer.registry: expected a registry"),
    ],
)
def test_a_bad_value_is_one_error_naming_the_setting(given, message):
    with pytest.raises(TemplateError) as error:
        Settings.parse(given)
    assert message in str(error.value) and error.value.exit_code == 2


def test_the_collection_declares_every_setting_so_env_vars_reach_it():
    configured = ns.configuration()["deployer"]
    for setting in SETTINGS:
        node = configured
        for part in setting.key.split("."):
            assert part in node, setting.key
            node = node[part]


def test_every_setting_is_a_field_and_has_its_default():
    fields = Settings.__dataclass_fields__
    for setting in SETTINGS:
        assert fields[setting.field].default == setting.default, setting.key


def test_the_readme_shows_the_settings_table_as_the_code_defines_it():
    assert table() in README.read_text(), "README.rst's settings table differs from deployer.settings.table()"


def test_hooks_are_found_as_fabric_yaml_or_a_template_writes_their_names():
    given = {"hooks": {"pre_deploy": "check", "post_deploy": None, "post-deploy": "notify"}, "release_timeout": "30"}
    settings = Settings.parse({**declared(), **given})

    assert settings.hooks == {"pre-deploy": ("check", "deployer.hooks.pre_deploy"),
                              "post-deploy": ("notify", "deployer.hooks.post_deploy")}
    assert settings.release_timeout == 30

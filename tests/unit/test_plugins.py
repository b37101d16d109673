"""Plugins: the built-in ones, volume path ids, third-party plugins and their entry points."""

import posixpath
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

import deployer.plugins
from deployer import plugins
from deployer.model import schema
from deployer.errors import DeployerError
from deployer.plugins.base import Fragment
from deployer.plugins.volumes import path_id


class TeamPlugin:
    """A third-party plugin: ``team: payments`` becomes an env var and a label."""

    def __init__(self, name="team", key="team"):
        self.name = name
        self.key = key
        self.keys = {key: schema.text}

    def fragment(self, service, context):
        team = service.options.get(self.key)
        if team is None:
            return Fragment()
        return Fragment(env={"TEAM": team}, labels={"com.example.team": f"{team}@{context.instance}"})


@dataclass
class FakeEntryPoint:
    """What ``importlib.metadata.entry_points`` yields: a name, a value and ``load()``."""

    name: str
    target: object

    @property
    def value(self):
        return f"{self.name}_plugin:plugin"

    def load(self):
        if isinstance(self.target, Exception):
            raise self.target
        return self.target


@pytest.fixture
def entry_points(monkeypatch):
    """The list of installed ``deployer.plugins`` entry points, empty until a test adds some."""
    registered = []
    monkeypatch.setattr(
        deployer.plugins,
        "entry_points",
        lambda group: [ep for ep in registered if group == plugins.ENTRY_POINT_GROUP],
    )
    plugins.installed.cache_clear()
    yield registered
    plugins.installed.cache_clear()


def names(plugin_list):
    return [plugin.name for plugin in plugin_list]


# --- installed plugins ----------------------------------------------------------------


def test_the_built_in_plugins_are_installed():
    assert names(plugins.installed())[:3] == ["volumes", "ports", "env"]


def test_a_third_party_plugin_from_an_entry_point_comes_after_the_built_in_ones(entry_points):
    team = TeamPlugin()
    entry_points.append(FakeEntryPoint("team", team))

    assert plugins.installed() == (*plugins.BUILTIN, team)


def test_a_plugin_listed_twice_is_installed_once(entry_points):
    team = TeamPlugin()
    entry_points.extend(
        [FakeEntryPoint("team", team), FakeEntryPoint("team-again", team), FakeEntryPoint("env", plugins.env.plugin)]
    )

    assert names(plugins.installed()) == ["volumes", "ports", "env", "register", "expose", "git", "route", "team"]


@pytest.mark.parametrize(
    "first, second, message",
    [
        (TeamPlugin("one"), TeamPlugin("two"), "plugins 'one' and 'two' both claim the template key 'team'"),
        (TeamPlugin("mine", key="env"), None, "plugins 'env' and 'mine' both claim the template key 'env'"),
        (TeamPlugin("mine", key="volumes"), None, "plugins 'volumes' and 'mine' both claim the template key 'volumes'"),
    ],
    ids=["two third-party plugins", "a built-in key", "another built-in key"],
)
def test_two_plugins_claiming_one_key_stop_with_both_names(entry_points, first, second, message):
    entry_points.extend(FakeEntryPoint(p.name, p) for p in (first, second) if p)

    with pytest.raises(DeployerError) as caught:
        plugins.installed()
    assert str(caught.value) == message


def test_a_plugin_that_fails_to_load_is_named_in_the_error(entry_points):
    entry_points.append(FakeEntryPoint("broken", ImportError("No module named 'broken_plugin'")))

    with pytest.raises(DeployerError) as caught:
        plugins.installed()
    assert str(caught.value) == "plugin 'broken' (broken_plugin:plugin) failed to load: No module named 'broken_plugin'"


# --- a third-party plugin in a template -----------------------------------------------

WITH_TEAM = (*plugins.BUILTIN, TeamPlugin())


def test_a_plugin_key_is_unknown_without_the_plugin(template_error):
    error = template_error("app: {image: team/app, team: payments}", plugins.BUILTIN)

    assert str(error) == "app.yaml: app.team: unknown key"


def test_a_plugin_adds_a_template_key_that_contributes_env_and_labels(render, values_of):
    specs = render(
        """
        Env: {TZ: UTC}
        app: {image: team/app, team: payments}
        redis: {}
        """,
        instance="customer1",
        plugin_list=WITH_TEAM,
    )
    app = specs["app"].run_args()

    assert values_of(app, "-e") == ["TEAM=payments", "TZ=UTC"]
    assert "com.example.team=payments@customer1" in values_of(app, "--label")
    assert values_of(specs["redis"].run_args(), "-e") == ["TZ=UTC"]


def test_a_plugin_keys_validator_reports_with_file_and_key_path(template_error):
    error = template_error("app: {image: team/app, team: [payments]}", WITH_TEAM)

    assert str(error) == "app.yaml: app.team: expected a string"


def test_a_plugin_that_claims_a_not_yet_supported_key_makes_it_supported(render, values_of):
    git = TeamPlugin("git-builder", key="git")

    specs = render("app: {image: team/app, git: ./src}", plugin_list=(*plugins.BUILTIN, git))

    assert values_of(specs["app"].run_args(), "-e") == ["TEAM=./src"]


# --- volume path ids ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/data", "data"),
        ("/data/", "data"),
        ("/var/lib/my-data", "var-lib-my_2ddata"),
        ("/a-b", "a_2db"),
        ("/a/b", "a-b"),
        ("/a_b", "a_5fb"),
        ("/a_2db", "a_5f2db"),
        ("/etc/conf.d", "etc-conf.d"),
        ("/srv/../data", "data"),
        ("/...", "..."),
        ("/café", "caf_c3_a9"),
        ("/with space", "with_20space"),
    ],
)
def test_a_volume_path_id_escapes_the_normalised_path(path, expected):
    assert path_id(path) == expected


@pytest.mark.parametrize(
    "one, other",
    [("/a-b", "/a/b"), ("/a_b", "/a/b"), ("/a_2db", "/a-b"), ("/a.b", "/a/b"), ("/a/b-c", "/a-b/c"), ("/x_2f", "/x/")],
)
def test_paths_that_a_slug_would_confuse_get_distinct_ids(one, other):
    assert path_id(one) != path_id(other)


def test_equal_paths_after_normalisation_share_an_id():
    assert path_id("/data") == path_id("/data/") == path_id("/srv/./../data")


SEGMENT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1, max_size=12
).filter(lambda s: s not in (".", ".."))
NORMALISED_PATH = st.lists(SEGMENT, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))


@given(st.lists(NORMALISED_PATH, min_size=2, max_size=8, unique=True))
def test_distinct_normalised_paths_get_distinct_ids(paths):
    assert all(posixpath.normpath(p) == p for p in paths)
    assert len({path_id(p) for p in paths}) == len(paths)


@given(NORMALISED_PATH)
def test_a_path_id_is_one_directory_name_inside_the_service_directory(path):
    ident = path_id(path)

    assert "/" not in ident
    assert "\0" not in ident
    assert ident not in ("", ".", "..")

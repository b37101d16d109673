"""What a host knows about an instance: state files, instance names, inspected containers."""

import json

import pytest

from deployer.errors import EXIT_USAGE, DeployerError, TemplateError
from deployer.model.state import FORMAT, Container, InstanceState, ServiceState, check_instance_name

STATE_FILE = "/var/lib/deployer/instances/c1/state.json"
IMAGE_ID = "sha256:" + "a" * 64


@pytest.fixture
def state(render):
    specs = render("redis: {volumes: ['/data:ro'], ports: ['127.0.0.1:6379:6379']}\napp: {image: team/app, cmd: serve}")
    return InstanceState(
        instance="c1",
        template="templates/app.yaml",
        release=7,
        deployed_at="2024-05-01T12:00:00+00:00",
        deployed_by="ops@laptop",
        services={name: ServiceState.of(spec, IMAGE_ID) for name, spec in specs.items()},
    )


# --- state files ----------------------------------------------------------------------


def test_a_state_survives_its_json_round_trip(state):
    assert InstanceState.from_json(state.to_json(), STATE_FILE) == state


def test_a_state_file_records_its_format(state):
    assert json.loads(state.to_json())["format"] == FORMAT


def test_a_read_state_still_tells_each_services_image_ports_and_volumes(state):
    redis = InstanceState.from_json(state.to_json(), STATE_FILE).services["redis"]

    assert (redis.container, redis.image, redis.ports, redis.volumes) == (
        "c1.redis",
        "redis",
        ("127.0.0.1:6379:6379",),
        ("/srv/deployer/volumes/c1/redis/data:/data:ro",),
    )


def _truncated(state):
    text = state.to_json()
    return text[: len(text) // 2]


def _newer(state):
    return json.dumps({**json.loads(state.to_json()), "format": FORMAT + 1})


def _without_services(state):
    data = json.loads(state.to_json())
    del data["services"]
    return json.dumps(data)


UNREADABLE = {
    "truncated": (_truncated, "corrupt state file"),
    "not JSON": (lambda state: "release: 7\n", "corrupt state file"),
    "empty": (lambda state: "", "corrupt state file"),
    "a JSON list": (lambda state: "[]", "corrupt state file"),
    "a JSON string": (lambda state: '"c1"', "corrupt state file"),
    "missing a key": (_without_services, "corrupt state file (KeyError: 'services')"),
    "a newer format": (_newer, f"written by a newer deployer (format {FORMAT + 1}, this one reads {FORMAT}): upgrade deployer"),
}


@pytest.mark.parametrize("text_of, message", UNREADABLE.values(), ids=list(UNREADABLE))
def test_an_unreadable_state_file_stops_with_its_name_and_changes_nothing(state, text_of, message):
    with pytest.raises(DeployerError) as caught:
        InstanceState.from_json(text_of(state), STATE_FILE)

    assert str(caught.value).startswith(f"{STATE_FILE}: {message}")
    assert str(caught.value).endswith("nothing was changed")


def test_applying_a_deploy_replaces_started_services_and_drops_removed_ones(state, render):
    (app,) = render("app: {image: 'team/app:2', cmd: serve}").values()

    release = dict(template="t.yaml", release=8, deployed_at="2024-05-02T00:00:00+00:00", deployed_by="ci")

    after = state.applied([app], {"redis"}, {"team/app:2": IMAGE_ID}, **release)

    assert list(after.services) == ["app"]
    assert after.services["app"].image == "team/app:2"
    assert (after.instance, after.release, after.template) == ("c1", 8, "t.yaml")


# --- instance names -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a/b", "..", ".", "a.b", "", "-c1", "_c1", "c 1", "c1\n", "c1\0", "a" * 64, "ü", None, 7],
    ids=repr,
)
def test_an_instance_name_that_could_escape_or_confuse_is_refused(name):
    with pytest.raises(TemplateError) as caught:
        check_instance_name(name)

    assert str(caught.value).startswith(f"invalid instance name {name!r}: use letters, digits, '_' and '-'")
    assert caught.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize("name", ["customer1", "staging_2", "demo-eu", "7", "A" * 63])
def test_a_plain_instance_name_is_accepted(name):
    assert check_instance_name(name) == name


# --- containers as docker inspect describes them --------------------------------------


def test_an_inspected_container_tells_its_service_hash_and_published_ports():
    container = Container.from_inspect(
        {
            "Name": "/c1.web",
            "Image": IMAGE_ID,
            "Created": "2024-05-01T12:00:00Z",
            "Config": {
                "Image": "team/app",
                "Labels": {
                    "deployer.instance": "c1",
                    "deployer.service": "web",
                    "deployer.config-hash": "0123456789abcdef",
                },
            },
            "State": {"Running": False, "Status": "exited"},
            "NetworkSettings": {
                "Ports": {
                    "8080/tcp": [{"HostIp": "", "HostPort": "32768"}, {"HostIp": "::", "HostPort": "32768"}],
                    "9090/tcp": None,
                }
            },
        }
    )

    assert (container.name, container.service) == ("c1.web", "web")
    assert (container.running, container.status) == (False, "exited")
    assert (container.image, container.image_id, container.config_hash) == ("team/app", IMAGE_ID, "0123456789abcdef")
    assert container.ports == ("0.0.0.0:32768->8080/tcp", ":::32768->8080/tcp")

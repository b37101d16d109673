"""deployer import over real compose files nobody on the team wrote (tests/data/compose,
with their licences): each imports without a traceback, each template validates, and the
report of a few is checked whole."""

from pathlib import Path

import pytest
from compose_helpers import data, dropped, validated

from deployer.compose import imported

CORPUS = Path(__file__).resolve().parents[1] / "data" / "compose"
FILES = sorted(p for p in CORPUS.rglob("*.y*ml"))


def test_the_corpus_holds_enough_files_from_both_sources():
    sources = {p.relative_to(CORPUS).parts[0] for p in FILES}

    assert len(FILES) >= 30 and sources == {"awesome-compose", "compose-spec"}


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_every_compose_file_imports_and_its_template_validates(tmp_path, path):
    result = imported(path)

    template = validated(result, tmp_path)

    assert len(template.services) == len(data(result))
    assert all(d.why and "\n" not in d.line() for d in result.dropped)


def corpus(relative):
    return imported(CORPUS / relative)


def test_a_database_address_in_an_env_value_becomes_an_endpoint_and_nothing_is_dropped():
    result = corpus("awesome-compose/gitea-postgres/compose.yaml")

    assert data(result)["gitea/gitea:latest"]["expose"] == {"db:5432": "DB_HOST"}
    assert data(result)["db"]["register"] == {"5432": "5432"}
    assert not result.dropped


def test_urls_naming_services_become_expose_formats_and_a_command_naming_one_is_listed():
    result = corpus("awesome-compose/wasmedge-kafka-mysql/compose.yml")

    assert data(result)["etl"]["expose"] == {
        "db:3306": {"env": "DATABASE_URL", "format": "mysql://root:whalehello@{host}:{port}/mysql"},
        "redpanda:9092": {"env": "KAFKA_URL", "format": "kafka://{host}:{port}/order"},
    }
    assert set(dropped(result)) == {"etl.build", "etl.platform", "etl.runtime", "redpanda.command"}
    assert "runs its image 'etl-kafka' as it is" in dropped(result)["etl.build"]


def test_secrets_files_networks_and_health_conditions_are_each_reported():
    result = corpus("awesome-compose/nginx-flask-mysql/compose.yaml")

    assert set(dropped(result)) == {
        "backend.build", "proxy.build", "backend.secrets[0]", "db.healthcheck", "db.networks", "backend.networks",
        "proxy.networks", "backend.depends_on.db.condition", "networks",
    }
    assert data(result)["db"]["env"]["MYSQL_ROOT_PASSWORD"] == {"secret": "db-password"}
    assert set(result.variables) == {"BACKEND_IMAGE", "PROXY_IMAGE"}


def test_variables_the_dotenv_sets_are_asked_for_at_deploy_time():
    result = corpus("awesome-compose/pihole-cloudflared-DoH/compose.yaml")

    assert set(result.variables) == {"TIMEZONE", "PIHOLE_PW", "PIHOLE_ROUTER_IP", "PIHOLE_NETWORK_DOMAIN",
                                     "PIHOLE_REVERSE_DNS", "PIHOLE_HOST_IP", "PIHOLE_HOST_IPV6"}
    assert data(result)["visibilityspots/cloudflared"]["env"]["TZ"] == "{TIMEZONE}"
    assert "pihole.volumes[0]" in dropped(result) and "pihole.cap_add" in dropped(result)


@pytest.mark.parametrize("name, cli", [
    ("05-services-37.yaml", {"image": "busybox", "env": {"TZ": "utc", "PORT": "8080"}}),
    ("05-services-39.yaml", {"image": "busybox", "volumes": ["/var/lib/backup/data:ro"]}),
    ("05-services-41.yaml", {"image": "busybox", "user": "root"}),
])
def test_extends_merges_as_the_specifications_own_examples_say(name, cli):
    result = corpus(f"compose-spec/{name}")

    assert data(result)["cli"] == cli
    assert not result.dropped


def test_extension_fields_are_listed_once_and_their_anchors_carried():
    result = corpus("compose-spec/11-extension-3.yaml")

    assert [d.key for d in result.dropped if d.key.startswith("x-")] == ["x-function"]
    assert data(result)["echoit"]["labels"] == {"function": "true"}
    assert set(result.variables) == {"https_proxy"}

"""deployer import: service-name addresses and depends_on become endpoints (register/expose)."""

import pytest
from compose_helpers import data, dropped, import_text, rendered, validated

# an env value of web naming the service db -> (web's expose, what web's container gets);
# the unit tests' endpoints are at 172.17.0.1, port 30000 + the container port's last three digits
REFERENCES = {
    "host:port": ("db:5432", {"db:5432": "DB"}, "172.17.0.1:30432"),
    "a URL with a port": ("postgres://app:pw@db:5432/shop?ssl=off", {
        "db:5432": {"env": "DB", "format": "postgres://app:pw@{host}:{port}/shop?ssl=off"}},
        "postgres://app:pw@172.17.0.1:30432/shop?ssl=off"),
    "a URL without one (the scheme's port)": ("redis://db/0", {
        "db:6379": {"env": "DB", "format": "redis://{host}:{port}/0"}}, "redis://172.17.0.1:30379/0"),
    "a URL with braces in its path": ("http://db:80/{id}", {
        "db:80": {"env": "DB", "format": "http://{host}:{port}/{{id}}"}}, "http://172.17.0.1:30080/{id}"),
    "a link's alias": ("database:5432", {"db:5432": "DB"}, "172.17.0.1:30432"),
    "a network alias": ("pg:5432", {"db:5432": "DB"}, "172.17.0.1:30432"),
    "a container_name": ("the-db:5432", {"db:5432": "DB"}, "172.17.0.1:30432"),
}


@pytest.mark.parametrize("value, expose, env", REFERENCES.values(), ids=list(REFERENCES))
def test_an_env_value_naming_a_service_becomes_an_endpoint(tmp_path, value, expose, env):
    result = import_text(tmp_path, f"""\
        services:
          web:
            image: team/x
            links: ["db:database"]
            environment: {{DB: "{value}", OTHER: kept}}
          db:
            image: postgres
            container_name: the-db
            networks: {{back: {{aliases: [pg]}}}}
        """)

    web, port = data(result)["web"], next(iter(expose)).split(":")[1]
    assert web["expose"] == expose and web["env"] == {"OTHER": "kept"}
    assert data(result)["db"]["register"] == {port: port}
    assert dict(rendered(result)["web"].env)["DB"] == env
    validated(result, tmp_path)


@pytest.mark.parametrize("value", ["db", "db.internal:5432", "mydb:5432", "db:5432,db:5433", "postgres://db:x/"])
def test_an_env_value_that_is_not_exactly_an_address_stays_as_it_is(tmp_path, value):
    result = import_text(tmp_path, f"services:\n  web: {{image: team/x, environment: {{DB_HOST: '{value}'}}}}\n"
                                   "  db: {image: postgres}\n")

    assert data(result)["web"]["env"] == {"DB_HOST": value}
    assert "expose" not in data(result)["web"]


def test_a_value_that_names_a_service_but_is_no_address_is_listed(tmp_path):
    result = import_text(tmp_path, """\
        services:
          web:
            image: team/x
            command: worker --broker redis:6379
            environment: {REDIS_HOST: redis, REDIS_DB: redis, URL: "http://redis/x", SPEC: "redis:1,redis:2"}
          redis: {image: redis}
        """)

    assert set(dropped(result)) == {"web.command", "web.environment.REDIS_HOST", "web.environment.SPEC"}
    assert "names the service redis as a host" in dropped(result)["web.environment.REDIS_HOST"]
    assert data(result)["web"]["expose"] == {"redis:80": {"env": "URL", "format": "http://{host}:{port}/x"}}


def test_depends_on_with_a_known_port_orders_the_start_through_an_endpoint(tmp_path):
    result = import_text(tmp_path, """\
        services:
          web: {image: team/x, depends_on: {db: {condition: service_healthy}, cache: {}}}
          db: {image: postgres, expose: [5432]}
          cache: {image: redis}
        """)

    assert data(result)["web"]["expose"] == {"db:5432": "DB_ADDR"}
    assert set(dropped(result)) == {"web.depends_on.db.condition", "web.depends_on.cache"}
    assert "does not wait for it to be healthy" in dropped(result)["web.depends_on.db.condition"]
    assert "no port of cache is known" in dropped(result)["web.depends_on.cache"]
    template = validated(result, tmp_path)
    assert [s.name for s in template.services] == ["web", "db", "cache"]


def test_a_dependency_the_env_already_exposes_adds_nothing(tmp_path):
    result = import_text(tmp_path, """\
        services:
          web: {image: team/x, environment: {DB: "db:5432"}, depends_on: [db]}
          db: {image: postgres}
        """)

    assert data(result)["web"]["expose"] == {"db:5432": "DB"}
    assert not result.dropped


def test_two_services_naming_each_other_get_one_endpoint_not_a_cycle(tmp_path):
    result = import_text(tmp_path, """\
        services:
          a: {image: team/x, environment: {B: "b:80"}}
          b: {image: team/y, environment: {A: "a:80"}}
        """)

    assert data(result)["a"]["expose"] == {"b:80": "B"}
    assert data(result)["b"]["env"] == {"A": "a:80"}
    assert "a cycle deployer cannot start" in dropped(result)["b.environment.A"]
    validated(result, tmp_path)


def test_one_endpoint_gives_a_service_one_variable_and_a_second_is_listed(tmp_path):
    result = import_text(tmp_path, """\
        services:
          web: {image: team/x, environment: {CACHE: "redis://redis:6379/0", BROKER: "redis://redis:6379/1"}}
          redis: {image: redis}
        """)

    assert list(data(result)["web"]["expose"].values()) == [{"env": "CACHE", "format": "redis://{host}:{port}/0"}]
    assert "already gives this service CACHE" in dropped(result)["web.environment.BROKER"]


def test_a_url_holding_a_variable_stays_as_it_is(tmp_path):
    result = import_text(tmp_path, """\
        services:
          web: {image: team/x, environment: {DB: "postgres://u:${PW}@db:5432/x"}}
          db: {image: postgres}
        """)

    assert data(result)["web"]["env"] == {"DB": "postgres://u:{PW}@db:5432/x"}
    assert "an expose format cannot" in dropped(result)["web.environment.DB"]


def test_a_dependency_is_reached_on_its_expose_port_before_its_published_ones(tmp_path):
    result = import_text(tmp_path, """\
        services:
          web: {image: team/x, depends_on: [api]}
          api: {image: team/y, ports: ["8080:3000"], expose: ["9000"]}
        """)

    assert data(result)["web"]["expose"] == {"api:9000": "API_ADDR"}
    assert data(result)["api"]["register"] == {"9000": "9000"}
    assert not result.dropped

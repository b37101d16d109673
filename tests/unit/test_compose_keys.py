"""deployer import: each compose service key and the template keys it becomes, table-driven.

Each case is a compose service (``app``, whose image ``team/web`` does not name it) and
the template's service; every output is also validated as ``deployer validate`` would.
"""

import pytest
from compose_helpers import data, dropped, import_text, noted, rendered, validated

# compose service body -> (template service body, keys dropped)
CASES = {
    "a string command stays a string": (
        "image: team/web\ncommand: serve --port 8080",
        {"image": "team/web", "cmd": "serve --port 8080"}, set()),
    "a list command stays a list": (
        "image: team/web\ncommand: [serve, --port, '8080']",
        {"image": "team/web", "cmd": ["serve", "--port", "8080"]}, set()),
    "an entrypoint of either form is the entrypoint": (
        "image: team/web\nentrypoint: [/bin/sh, -c]\ncommand: ['echo hi']",
        {"image": "team/web", "cmd": ["echo hi"], "entrypoint": ["/bin/sh", "-c"]}, set()),
    "an empty entrypoint cannot clear the image's": (
        "image: team/web\nentrypoint: ''",
        {"image": "team/web"}, {"app.entrypoint"}),
    "environment as a mapping becomes env, scalars as strings": (
        "image: team/web\nenvironment: {A: 1, B: true, C: x, D: 1.5}",
        {"image": "team/web", "env": {"A": "1", "B": "true", "C": "x", "D": "1.5"}}, set()),
    "environment as a list of NAME=value becomes env": (
        "image: team/web\nenvironment: [A=1, 'B=x=y', C=]",
        {"image": "team/web", "env": {"A": "1", "B": "x=y", "C": ""}}, set()),
    "an environment entry without a value is a secret of the deploying side": (
        "image: team/web\nenvironment: [AWS_KEY]",
        {"image": "team/web", "env": {"AWS_KEY": {"secret": "AWS_KEY"}}}, set()),
    "an env name deployer cannot take is dropped": (
        "image: team/web\nenvironment: {discovery.type: single-node, OK: y}",
        {"image": "team/web", "env": {"OK": "y"}}, {"app.environment.discovery.type"}),
    "ports in the short syntax are docker run's -p forms": (
        "image: team/web\nports: [80, '8080:80', '127.0.0.1:9000:9000/udp', '127.0.0.1::5000', '[::1]:53:53']",
        {"image": "team/web", "ports": ["80", "8080:80", "127.0.0.1:9000:9000/udp", "127.0.0.1::5000", "[::1]:53:53"]},
        set()),
    "a port range is every port of it": (
        "image: team/web\nports: ['3000-3002:4000-4002', '5000-5001']",
        {"image": "team/web", "ports": ["3000:4000", "3001:4001", "3002:4002", "5000", "5001"]}, set()),
    "a host range for one container port cannot be published": (
        "image: team/web\nports: ['8000-8010:80']",
        {"image": "team/web"}, {"app.ports[0]"}),
    "ports in the long syntax are the short syntax": (
        "image: team/web\nports: [{target: 80, published: 8080, host_ip: 127.0.0.1, protocol: tcp}, {target: 53},"
        " {target: 81, published: '8081', mode: host}]",
        {"image": "team/web", "ports": ["127.0.0.1:8080:80/tcp", "53", "8081:81"]}, {"app.ports[2].mode"}),
    "a named volume is a deployer volume at the same path": (
        "image: team/web\nvolumes: ['data:/var/lib/data', '/cache', 'conf:/etc/app:ro']",
        {"image": "team/web", "volumes": ["/var/lib/data", "/cache", "/etc/app:ro"]}, set()),
    "the long volume syntax reads the same": (
        "image: team/web\nvolumes: [{type: volume, source: data, target: /data, read_only: true}]",
        {"image": "team/web", "volumes": ["/data:ro"]}, set()),
    "a host path, a tmpfs and an SELinux option are dropped": (
        "image: team/web\nvolumes: ['/var/run/docker.sock:/var/run/docker.sock', '~/m:/m',"
        " {type: tmpfs, target: /tmp}, 'data:/data:z']",
        {"image": "team/web", "volumes": ["/data"]},
        {"app.volumes[0]", "app.volumes[1]", "app.volumes[2]", "app.volumes[3]"}),
    "restart is restart": (
        "image: team/web\nrestart: on-failure:3",
        {"image": "team/web", "restart": "on-failure:3"}, set()),
    "restart no stays no (YAML 1.2: a string)": (
        "image: team/web\nrestart: no",
        {"image": "team/web", "restart": "no"}, set()),
    "a deploy restart policy is restart when compose gives none": (
        "image: team/web\ndeploy: {restart_policy: {condition: on-failure, max_attempts: 5, delay: 5s}}",
        {"image": "team/web", "restart": "on-failure:5"}, {"app.deploy.restart_policy.delay"}),
    "user, working_dir, init and privileged keep their meaning": (
        "image: team/web\nuser: '1000:1000'\nworking_dir: /srv\ninit: true\nprivileged: false",
        {"image": "team/web", "user": "1000:1000", "workdir": "/srv", "init": True, "privileged": False}, set()),
    "a relative working_dir is refused by deployer, so dropped": (
        "image: team/web\nworking_dir: srv",
        {"image": "team/web"}, {"app.working_dir"}),
    "labels of either form are labels; deployer's own prefix is dropped": (
        "image: team/web\nlabels: [a.b=1, 'traefik.rule=Path(`/`)', deployer.x=1]",
        {"image": "team/web", "labels": {"a.b": "1", "traefik.rule": "Path(`/`)"}}, {"app.labels.deployer.x"}),
    "stop_grace_period is stop_timeout in whole seconds, rounded up": (
        "image: team/web\nstop_grace_period: 1m30.5s",
        {"image": "team/web", "stop_timeout": 91}, set()),
    "mem_limit and cpus are memory and cpus": (
        "image: team/web\nmem_limit: 1gb\ncpus: '1.5'",
        {"image": "team/web", "memory": "1g", "cpus": 1.5}, set()),
    "deploy's limits win over mem_limit and cpus": (
        "image: team/web\nmem_limit: 1g\ncpus: 2\ndeploy: {resources: {limits: {memory: 50M, cpus: '0.5', pids: 9},"
        " reservations: {memory: 1M}}}",
        {"image": "team/web", "memory": "50M", "cpus": 0.5},
        {"app.deploy.resources.limits.pids", "app.deploy.resources.reservations"}),
    "one replica is what deployer runs; more are dropped (a later issue)": (
        "image: team/web\ndeploy: {replicas: 3, mode: replicated}",
        {"image": "team/web"}, {"app.deploy.replicas", "app.deploy.mode"}),
    "a healthcheck in exec form is a list cmd": (
        "image: team/web\nhealthcheck: {test: [CMD, curl, -f, 'http://localhost'], interval: 10s, timeout: 2s,"
        " retries: 3, start_period: 1m, start_interval: 1s}",
        {"image": "team/web", "healthcheck": {"cmd": ["curl", "-f", "http://localhost"], "interval": "10s",
                                              "timeout": "2s", "retries": 3, "start_period": "1m"}},
        {"app.healthcheck.start_interval"}),
    "a healthcheck in shell form is a string cmd": (
        "image: team/web\nhealthcheck: {test: [CMD-SHELL, 'curl -f localhost || exit 1']}",
        {"image": "team/web", "healthcheck": {"cmd": "curl -f localhost || exit 1"}}, set()),
    "a disabled healthcheck is false": (
        "image: team/web\nhealthcheck: {disable: true}",
        {"image": "team/web", "healthcheck": False}, set()),
    "a healthcheck tuning the image's own cannot be written": (
        "image: team/web\nhealthcheck: {interval: 5s}",
        {"image": "team/web"}, {"app.healthcheck"}),
    "keys deployer has no word for are dropped, each with why": (
        "image: team/web\nnetwork_mode: host\ncontainer_name: x\ncap_add: [NET_ADMIN]\nstop_signal: SIGINT\ntty: true",
        {"image": "team/web"},
        {"app.network_mode", "app.container_name", "app.cap_add", "app.stop_signal", "app.tty"}),
    "a key no compose file has is dropped as unknown": (
        "image: team/web\nimgae: typo",
        {"image": "team/web"}, {"app.imgae"}),
}


@pytest.mark.parametrize("body, expected, drops", CASES.values(), ids=list(CASES))
def test_a_compose_key_becomes_its_template_key(tmp_path, body, expected, drops):
    compose = "services:\n  app:\n" + "".join(f"    {line}\n" for line in body.splitlines())

    result = import_text(tmp_path, compose)

    assert data(result)["app"] == expected
    assert set(dropped(result)) == drops
    validated(result, tmp_path)


def test_every_dropped_key_says_why_in_one_line(tmp_path):
    result = import_text(tmp_path, """\
        services:
          web: {image: team/web, network_mode: host, shm_size: 1g, dns: [1.1.1.1]}
        """)

    lines = [d.line() for d in result.dropped]

    assert lines == [
        "web.network_mode: dropped: deployer runs every container on its instance's private network; host networking and "
        "sharing another container's network are not in its templates",
        "web.shm_size: dropped: deployer has no template key for docker run's --shm-size (yet)",
        "web.dns: dropped: deployer does not set a container's resolver",
    ]


def test_a_service_its_image_names_is_written_with_the_image_as_its_key(tmp_path):
    result = import_text(tmp_path, """\
        services:
          redis: {image: 'redis:7', command: redis-server --appendonly yes}
          cache: {image: 'redis:7'}
          postgres: {image: postgres, ports: ['5432']}
          nginx: {image: nginx}
        """)

    assert data(result) == {
        "redis:7": "redis-server --appendonly yes",
        "cache": {"image": "redis:7"},
        "postgres": {"ports": ["5432"]},
        "nginx": {},
    }
    assert [s.name for s in validated(result, tmp_path).services] == ["redis", "cache", "postgres", "nginx"]


def test_a_lone_list_command_is_joined_into_a_string_that_splits_back_the_same(tmp_path):
    result = import_text(tmp_path, """\
        services:
          busybox: {image: busybox, command: [sh, -c, "echo 'it''s' \\"$$HOME\\" {x}"]}
        """)

    assert isinstance(data(result)["busybox"], str)
    (service,) = validated(result, tmp_path).services
    assert service.options["cmd"] == ["sh", "-c", "echo 'it''s' \"$HOME\" {x}"]


def test_a_service_named_like_a_setting_is_renamed_with_a_note(tmp_path):
    result = import_text(tmp_path, "services:\n  Web: {image: team/a}\n  web: {image: team/b}\n")

    assert data(result) == {"web": {"image": "team/a"}, "web-2": {"image": "team/b"}}
    assert "a capitalised key is a template setting" in result.notes[0].note


def test_named_volumes_of_one_driver_keep_it_and_a_service_mixing_drivers_keeps_none(tmp_path):
    result = import_text(tmp_path, """\
        services:
          db:
            image: team/pg
            volumes: ['pg:/var/lib/postgresql/data', 'wal:/wal']
          web:
            image: team/site
            volumes: ['media:/media', '/cache']
          plain:
            image: team/other
            volumes: ['local:/data']
        volumes:
          pg: {driver: local, driver_opts: {type: nfs, o: 'addr=10.0.0.5,rw', device: ':/exports/pg'}, labels: [a]}
          wal: {driver: local, driver_opts: {type: nfs, o: 'addr=10.0.0.5,rw', device: ':/exports/pg'}}
          media: {driver: rexray/ebs}
          local: {driver: local}
        """)
    template = data(result)

    assert template["db"]["volume_driver"] == "local"
    assert template["db"]["volume_opts"] == {"type": "nfs", "o": "addr=10.0.0.5,rw", "device": ":/exports/pg"}
    assert template["db"]["volumes"] == ["/var/lib/postgresql/data", "/wal"]
    assert "volume_driver" not in template["web"] and template["web"]["volumes"] == ["/media", "/cache"]
    assert "volume_driver" not in template["plain"]
    assert set(dropped(result)) == {"web.volumes[0]", "volumes.pg.labels", "volumes.media.driver"}
    assert "rexray/ebs" in dropped(result)["web.volumes[0]"]
    validated(result, tmp_path)


def test_a_driver_kept_makes_the_service_s_volumes_named_volumes_of_it(tmp_path):
    result = import_text(tmp_path, """\
        services:
          app:
            image: team/web
            volumes: ['files:/srv/files']
        volumes:
          files: {driver: org/plugin, driver_opts: {size: 10}}
        """)

    spec = rendered(result)["app"]

    assert [(m.source, m.target, m.driver, m.options) for m in spec.mounts] == [
        ("i_app_srv-files", "/srv/files", "org/plugin", (("size", "10"),))]
    assert "org/plugin" in noted(result)["app.volumes[0]"]

"""Compose keys deployer does not carry, each with the reason a user reads.

A key of the Compose Specification missing here and from the converters would be
reported as unknown, never passed over: the import's promise is that nothing is
silently ignored.
"""

NO_FLAG = "deployer has no template key for docker run's {flag} (yet)"
NETWORKS = ("deployer's containers share no compose network: services reach each other through "
            "endpoints (register/expose), which this import writes where a value names host:port or a URL")

SERVICE = {
    "network_mode": "deployer runs every container on its instance's private network; host networking and "
                    "sharing another container's network are not in its templates",
    "networks": NETWORKS,
    "container_name": "deployer names containers <instance>.<service>, so that a template can be "
                      "deployed as several instances",
    "hostname": "deployer does not set a container's host name",
    "domainname": "deployer does not set a container's domain name",
    "external_links": "links to containers outside the file: reach them through an endpoint "
                      "('other-instance/service:endpoint' in expose) or their address",
    "extra_hosts": "deployer does not edit a container's /etc/hosts",
    "dns": "deployer does not set a container's resolver",
    "dns_search": "deployer does not set a container's resolver",
    "dns_opt": "deployer does not set a container's resolver",
    "stop_signal": "deployer has no template key for it: docker stop sends the image's STOPSIGNAL "
                   "(SIGTERM unless the image says otherwise)",
    "tty": "deployer runs containers detached, without a terminal ('deployer exec' and 'run' give one)",
    "stdin_open": "deployer runs containers detached, without stdin ('deployer exec' and 'run' give one)",
    "logging": "containers log with the engine's default driver; 'deployer logs' reads them",
    "profiles": "deployer deploys every service of a template: make one template per profile",
    "pull_policy": "deployer uses the image the host has, and pulls with 'deploy --pull'",
    "pull_refresh_after": "deployer pulls with 'deploy --pull'",
    "scale": "deployer runs one container per service for now (replicas are a later issue)",
    "configs": "deployer has no config files: bake the file into the image, or build it from git",
    "volumes_from": "a deployer volume belongs to one service; give each service its own",
    "develop": "compose watch is for development on one machine; deployer deploys commits",
    "post_start": "deployer has no lifecycle hooks: 'deployer run INSTANCE SERVICE -- CMD' runs a one-off",
    "pre_stop": "deployer has no lifecycle hooks",
    "pre_start": "deployer has no lifecycle hooks: 'deployer run INSTANCE SERVICE -- CMD' runs a one-off",
    "attach": "which containers' output 'compose up' shows; 'deployer logs' shows any service's",
    "models": "deployer does not run compose's AI models",
    "provider": "deployer does not run compose providers",
    "label_file": "labels from a file are not read: write them under labels",
    "use_api_socket": "deployer does not hand containers the Docker engine's socket",
    "read_only": NO_FLAG.format(flag="--read-only"),
    "cap_add": NO_FLAG.format(flag="--cap-add"),
    "cap_drop": NO_FLAG.format(flag="--cap-drop"),
    "devices": NO_FLAG.format(flag="--device"),
    "device_cgroup_rules": NO_FLAG.format(flag="--device-cgroup-rule"),
    "security_opt": NO_FLAG.format(flag="--security-opt"),
    "sysctls": NO_FLAG.format(flag="--sysctl"),
    "ulimits": NO_FLAG.format(flag="--ulimit"),
    "ipc": NO_FLAG.format(flag="--ipc"),
    "pid": NO_FLAG.format(flag="--pid"),
    "uts": NO_FLAG.format(flag="--uts"),
    "userns_mode": NO_FLAG.format(flag="--userns"),
    "cgroup": NO_FLAG.format(flag="--cgroupns"),
    "cgroup_parent": NO_FLAG.format(flag="--cgroup-parent"),
    "shm_size": NO_FLAG.format(flag="--shm-size"),
    "tmpfs": NO_FLAG.format(flag="--tmpfs"),
    "group_add": NO_FLAG.format(flag="--group-add"),
    "oom_kill_disable": NO_FLAG.format(flag="--oom-kill-disable"),
    "oom_score_adj": NO_FLAG.format(flag="--oom-score-adj"),
    "runtime": NO_FLAG.format(flag="--runtime"),
    "isolation": NO_FLAG.format(flag="--isolation"),
    "storage_opt": NO_FLAG.format(flag="--storage-opt"),
    "mac_address": NO_FLAG.format(flag="--mac-address"),
    "gpus": NO_FLAG.format(flag="--gpus"),
    "platform": NO_FLAG.format(flag="--platform"),
    "annotations": NO_FLAG.format(flag="--annotation"),
    "credential_spec": "a Windows container setting deployer does not have",
    "blkio_config": NO_FLAG.format(flag="--blkio-weight and --device-*-bps"),
    "cpu_count": NO_FLAG.format(flag="--cpu-count"),
    "cpu_percent": NO_FLAG.format(flag="--cpu-percent"),
    "cpu_period": NO_FLAG.format(flag="--cpu-period") + "; cpus: is the limit it has",
    "cpu_quota": NO_FLAG.format(flag="--cpu-quota") + "; cpus: is the limit it has",
    "cpu_rt_period": NO_FLAG.format(flag="--cpu-rt-period"),
    "cpu_rt_runtime": NO_FLAG.format(flag="--cpu-rt-runtime"),
    "cpu_shares": NO_FLAG.format(flag="--cpu-shares"),
    "cpuset": NO_FLAG.format(flag="--cpuset-cpus"),
    "pids_limit": NO_FLAG.format(flag="--pids-limit"),
    "mem_reservation": NO_FLAG.format(flag="--memory-reservation") + "; memory: is the limit it has",
    "mem_swappiness": NO_FLAG.format(flag="--memory-swappiness"),
    "memswap_limit": NO_FLAG.format(flag="--memory-swap"),
}

DEPLOY = {
    "mode": "a swarm setting: deployer runs one container per service on the host it deploys to",
    "placement": "a swarm setting: deployer deploys to the hosts given with -H",
    "update_config": "a swarm setting: deployer replaces a container once its successor runs (start-first "
                     "where it can), one service at a time",
    "rollback_config": "a swarm setting: 'deployer rollback' goes back a release",
    "endpoint_mode": "a swarm setting: services reach each other through endpoints (register/expose)",
    "labels": "labels of a swarm service, not its containers: put them under labels",
}

RESOURCES = {
    "reservations": "deployer has no reservations, only limits (memory, cpus)",
}

BUILD = {
    "target": "deployer builds the Dockerfile's last stage: it has no build target",
    "dockerfile_inline": "deployer builds a Dockerfile of the repository",
    "additional_contexts": "deployer builds from one context, the app's git tree",
    "cache_from": "deployer's builds use the host's build cache only",
    "cache_to": "deployer's builds use the host's build cache only",
    "secrets": "deployer's builds take build args, not build secrets",
    "ssh": "deployer's builds take no SSH agent",
    "network": "deployer's builds use docker build's default network",
    "extra_hosts": "deployer's builds use docker build's default hosts",
    "shm_size": "deployer's builds use docker build's default shm size",
    "labels": "deployer labels the images it builds itself (deployer.instance)",
    "tags": "deployer tags the images it builds deployer/<instance>/<service>:<version>",
    "platforms": "deployer builds for the host's own platform",
    "no_cache": "deployer's builds use the host's build cache",
    "pull": "deployer's builds use the base images the host has",
    "isolation": "a Windows build setting deployer does not have",
    "privileged": "deployer's builds are not privileged",
    "ulimits": "deployer's builds use docker build's default limits",
    "entitlements": "deployer's builds have no entitlements",
    "provenance": "deployer's builds attach no attestations",
    "sbom": "deployer's builds attach no attestations",
}

TOP_LEVEL = {
    "networks": NETWORKS,
    "configs": SERVICE["configs"],
    "include": "an import reads one compose file: import each included file too (its services are not here)",
    "models": SERVICE["models"],
}

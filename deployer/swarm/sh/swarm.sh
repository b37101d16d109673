# shellcheck shell=sh
# The Swarm engine's functions (deployer/swarm/): an instance's services, through the docker
# CLI of a manager, and its releases, configs the cluster keeps (any manager reads them).
# Every step waits for Swarm to say how it ended: docker's own wait reports an update that
# rolled back as converged.

# dpl_swarm_manager: whether this host's engine is a swarm manager (every script asks first),
# its node id kept script-wide in dpl_swarm_node
dpl_swarm_manager() {
  local manager
  read -r manager dpl_swarm_node <<EOT
$(docker info --format '{{.Swarm.ControlAvailable}} {{.Swarm.NodeID}}' 2>/dev/null)
EOT
  if [ "$manager" != true ]; then
    echo "deployer: this host's Docker engine is no swarm manager (deployer.engine swarm): run docker swarm init" \
      "there, or go through a manager" >&2
    return 1
  fi
}

# dpl_swarm_facts [IMAGE...]: the facts of instance $I (swarm/facts.py reads them): the roots,
# its newest release that says what runs (dpl_swarm_state), its services (one docker service
# inspect), their tasks meant to run (a line each: SERVICE.SLOT NODE STATE...), the
# networks the manager has, a name a line, and the tags, registry digests, entrypoint and cmd
# of those IMAGEs the manager holds (a line each, JSON; none for an image it lacks)
dpl_swarm_facts() {
  local ids
  dpl_mark roots
  printf '%s\n%s\n' "$S" "$V"
  dpl_swarm_state || return 1
  ids=$(docker service ls -q --filter "label=deployer.instance=$I") || return 1
  dpl_mark services
  if [ -z "$ids" ]; then echo '[]'; else
    # shellcheck disable=SC2086 # ids: one service id a word
    docker service inspect $ids || return 1
    dpl_mark tasks
    # shellcheck disable=SC2086 # ids: one service id a word
    docker service ps --filter desired-state=running --format '{{.Name}} {{.Node}} {{.CurrentState}}' $ids || return 1
  fi
  dpl_mark networks
  docker network ls --format '{{.Name}}' || return 1
  if [ "$#" -gt 0 ]; then
    dpl_mark images
    docker image inspect --format \
      '{{json .RepoTags}} {{json .RepoDigests}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$@" 2>/dev/null
  fi
  return 0
}

# dpl_swarm_network NAME ARG...: an overlay network of the instance (ARG: docker network
# create's, the name last), unless it exists
dpl_swarm_network() {
  local err
  docker network inspect "$1" >/dev/null 2>&1 && return 0
  shift
  err=$(docker network create --driver overlay "$@" 2>&1 >/dev/null) ||
    { echo "deployer: network: $err" >&2; return 1; }
}

# dpl_swarm_probe LIMIT IMAGE...: the nodes lacking each IMAGE (one used by name, with no
# registry digest), a `lacks IMAGE NODE` mark each: a job of one task a node (the
# instance's, so destroy removes one left behind) whose entrypoint no image has, so that
# its task fails at once where the image is and is rejected ("No such image") where it is
# not, removed once each node's task has ended (Swarm would start it again and again);
# the jobs of all IMAGEs run at once, each waited for LIMIT seconds at most. Only a
# warning: a probe that cannot run says nothing
dpl_swarm_probe() {
  local limit="$1" image name probes=''
  shift
  for image; do
    name="deployer-probe-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    docker service create --detach --quiet --no-resolve-image --mode global-job --label "deployer.instance=$I" \
      --name "$name" --entrypoint /deployer-probe "$image" >/dev/null 2>&1 && probes="$probes $name=$image"
  done
  for name in $probes; do  # (an image reference holds no blank and no =)
    image=${name#*=} name=${name%%=*}
    dpl_swarm_wait "$limit" dpl_swarm_ended "$name"
    docker service ps --no-trunc --format '{{.Node}} {{.Error}}' "$name" 2>/dev/null |
      sed -n 's/^\([^ ]*\) .*No such image.*/\1/p' | sort -u |
      while read -r node; do dpl_mark lacks "$image" "$node"; done
    docker service rm "$name" >/dev/null 2>&1
  done
  return 0
}

# dpl_swarm_ended NAME: a check (dpl_swarm_wait) that on every node job NAME has a task on,
# one has ended (a task not placed yet, its node blank, is a node whose task has not)
dpl_swarm_ended() {
  local tasks
  tasks=$(docker service ps --format '{{.Node}} {{.CurrentState}}' "$1") || return 2
  [ -n "$tasks" ] && printf '%s\n' "$tasks" | awk '{ seen[$1] = 1 } $2 ~ /^(Complete|Failed|Rejected)$/ { ended[$1] = 1 }
    END { for (node in seen) if (!(node in ended)) exit 1 }'
}

# dpl_swarm_create SERVICE NAME LIMIT MONITOR ARG...: docker service create ARG..., then wait
# until its task has run MONITOR seconds on end, LIMIT at most; a service whose task fails
# is removed again, as a container that does not start is
dpl_swarm_create() {
  local service="$1" name="$2" limit="$3" monitor="$4" t0 err code
  t0=$(dpl_now)
  shift 4
  err=$(docker service create "$@" 2>&1 >/dev/null) || { echo "deployer: $service: $err" >&2; return 1; }
  dpl_swarm_runs=0
  dpl_swarm_wait "$limit" dpl_swarm_steady "$service" "$name" "$monitor"
  code=$?
  if [ "$code" = 0 ]; then
    dpl_mark ok "$service" "$t0" "$(dpl_now)"
    return 0
  fi
  if [ "$code" = 1 ]; then echo "deployer: $service: not running after $limit s" >&2; fi
  docker service rm "$name" >/dev/null 2>&1
  return 1
}

# dpl_swarm_steady SERVICE NAME MONITOR: a check (dpl_swarm_wait) that the new service's task
# has run MONITOR polls on end (counted in dpl_swarm_runs), or failed
dpl_swarm_steady() {
  local error
  if error=$(dpl_swarm_task_error "$2"); then echo "deployer: $1: its task failed: $error" >&2; return 2; fi
  if dpl_swarm_up "$2"; then dpl_swarm_runs=$((dpl_swarm_runs + 1)); else dpl_swarm_runs=0; fi
  [ "$dpl_swarm_runs" -gt "$3" ]
}

# dpl_swarm_up NAME: every task of service NAME that is meant to run runs
dpl_swarm_up() {
  local states
  states=$(docker service ps --filter desired-state=running --format '{{.CurrentState}}' "$1") && [ -n "$states" ] &&
    ! printf '%s\n' "$states" | grep -qv '^Running'
}

# dpl_swarm_update SERVICE NAME LIMIT ARG...: docker service update ARG... (NAME last), then
# wait until Swarm says the update is done or was rolled back, at most LIMIT seconds
dpl_swarm_update() {
  local service="$1" name="$2" limit="$3" t0 err code
  t0=$(dpl_now)
  shift 3
  err=$(docker service update "$@" 2>&1 >/dev/null) || { echo "deployer: $service: $err" >&2; return 1; }
  dpl_swarm_state=
  dpl_swarm_wait "$limit" dpl_swarm_updated "$service" "$name" "${t0%%.*}"
  code=$?
  if [ "$code" = 0 ]; then
    dpl_mark ok "$service" "$t0" "$(dpl_now)"
    return 0
  fi
  if [ "$code" = 1 ]; then
    echo "deployer: $service: the update did not end within $limit s (state: ${dpl_swarm_state:-not started})" >&2
  fi
  return 1
}

# dpl_swarm_updated SERVICE NAME SINCE: a check (dpl_swarm_wait) that the update of NAME that
# started at SINCE (epoch seconds) or later completed (its state in dpl_swarm_state); a
# rollback fails it, saying why, once the tasks it started again run (Swarm calls a
# rollback complete before they do)
dpl_swarm_updated() {
  local started message
  read -r started dpl_swarm_state message <<EOT
$(docker service inspect --format '{{with .UpdateStatus}}{{.StartedAt.Unix}} {{.State}} {{.Message}}{{end}}' "$2")
EOT
  if [ "${started:-0}" -lt "$3" ]; then return 1; fi  # the status of an earlier update
  case "$dpl_swarm_state" in
    completed) return 0 ;;
    rollback_completed) dpl_swarm_up "$2" || return 1 ;;
    rollback_paused | paused) ;;
    *) return 1 ;;
  esac
  echo "deployer: $1: the update failed and was rolled back ($message)$(dpl_swarm_task_error "$2" ": ")" >&2
  return 2
}

# dpl_swarm_scale SERVICE NAME LIMIT FROM TO: its FROM tasks made TO (docker service update
# --replicas: Swarm starts or stops tasks, no other restarts), then wait until TO run, LIMIT
# seconds at most; else FROM again, and the step fails saying why
dpl_swarm_scale() {
  local service="$1" name="$2" limit="$3" from="$4" to="$5" t0 err
  t0=$(dpl_now)
  err=$(docker service update --detach --replicas "$to" "$name" 2>&1 >/dev/null) ||
    { echo "deployer: $service: $err" >&2; return 1; }
  if dpl_swarm_wait "$limit" dpl_swarm_counted "$name" "$to"; then
    dpl_mark ok "$service" "$t0" "$(dpl_now)"
    return 0
  fi
  echo "deployer: $service: $to tasks did not all run within $limit s$(dpl_swarm_task_error "$name" ": "); back to $from" >&2
  docker service update --detach --replicas "$from" "$name" >/dev/null 2>&1
  return 1
}

# dpl_swarm_counted NAME N: a check (dpl_swarm_wait) that N tasks of service NAME are meant to
# run, and run
dpl_swarm_counted() {
  local states
  states=$(docker service ps --filter desired-state=running --format '{{.CurrentState}}' "$1") || return 2
  [ "$(printf '%s\n' "$states" | grep -c '^Running')" = "$2" ] && [ "$(printf '%s\n' "$states" | grep -c .)" = "$2" ]
}

# dpl_swarm_task_error NAME [PREFIX]: the newest error of a task of NAME, after PREFIX
dpl_swarm_task_error() {
  local error
  error=$(docker service ps --no-trunc --format '{{.Error}}' "$1" 2>/dev/null | grep -m 1 .) &&
    printf '%s%s' "$2" "$error"
}

# dpl_swarm_release SERVICE NAME LIMIT ARG...: the service's release command (a migration), a
# job of its new spec (dpl_swarm_job, named NAME_<hex>; ARG: service.job_args), before its step
# changes it, as one host runs one (replace.sh, dpl_release): each line it prints reaches the
# client as it comes (a note `release SERVICE LINE`, within a second); its end is marked
# `released SERVICE EXIT T0 T1` and added to dpl_released (the history's record of it). After
# LIMIT seconds (0: no limit) it is stopped (exit code 124). A non-zero exit fails the step,
# saying the exit code, with the last lines as `log:` lines; the job is removed in any case
# shellcheck disable=SC2154 # dpl_swarm_error, _code, _output: dpl_swarm_job's (job.sh)
dpl_swarm_release() {
  local service="$1" name="$2" limit="$3" t0 t1 code
  shift 3
  t0=$(dpl_now)
  # shellcheck disable=SC2016 # expanded when the exit trap runs
  dpl_at_exit 'if [ -n "$dpl_swarm_one_off" ]; then docker service rm "$dpl_swarm_one_off" >/dev/null 2>&1; fi'
  dpl_swarm_job "$name" "$limit" "dpl_swarm_relayed $service" "$@"
  code=$?
  t1=$(dpl_now)
  if [ "$code" = 1 ]; then
    echo "deployer: the release command of $service could not start: $dpl_swarm_error" >&2
    return 1
  fi
  if [ "$code" = 2 ]; then
    echo "deployer: the release command of $service did not end within $limit s (deployer.release_timeout): stopped" >&2
  fi
  dpl_mark released "$service" "$dpl_swarm_code" "$t0" "$t1"
  dpl_released="$dpl_released${dpl_released:+,}{\"service\":\"$service\",\"exit_code\":$dpl_swarm_code,\"seconds\":$(dpl_seconds "$t0" "$t1")}"
  [ "$dpl_swarm_code" = 0 ] && return 0
  echo "deployer: the release command of $service failed (exit code $dpl_swarm_code): its service was not changed" >&2
  printf '%s\n' "$dpl_swarm_output" | tail -n 10 | sed 's/^/log: /' >&2
  return 1
}

# dpl_swarm_relayed SERVICE NAME: the lines job NAME printed that were not relayed yet (in
# dpl_swarm_seen), each to the client (a note `release SERVICE LINE`)
# shellcheck disable=SC2154 # dpl_swarm_lines: dpl_swarm_shown's (job.sh)
dpl_swarm_relayed() {
  dpl_swarm_shown all "$2" "$dpl_swarm_seen" dpl_swarm_noted "$1"
  dpl_swarm_seen=$dpl_swarm_lines
}

# dpl_swarm_noted SERVICE: each line of stdin to the client, a note `release SERVICE LINE`
dpl_swarm_noted() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do dpl_note release "$1" "$line"; done
}

# dpl_swarm_shell SERVICE IMAGE: whether IMAGE has the /bin/sh that reads SERVICE's secrets into
# its env vars, asked of a container created from it on the manager, never started (docker
# cp finds the file); an image the manager lacks is not asked (its task says)
dpl_swarm_shell() {
  local id found
  id=$(docker create --pull never --entrypoint /bin/sh "$2" 2>/dev/null) || return 0
  docker cp "$id:/bin/sh" - >/dev/null 2>&1
  found=$?
  docker rm "$id" >/dev/null 2>&1
  if [ "$found" != 0 ]; then
    echo "deployer: $1: its image $2 has no /bin/sh, which on a swarm reads its secrets into its env vars:" \
      "use an image with a shell, or no {secret: ...} env value" >&2
    return 1
  fi
}

# dpl_swarm_secret NAME [VALUE]: the Swarm secret NAME of instance $I holding VALUE, unless it
# exists (its name holds a hash of its value, and a secret is immutable); VALUE is an
# argument of this function, so in the script's body, and reaches docker on its stdin
# (printf is the shell's own: no process list shows it). Without VALUE (the deploy was not
# given it) NAME must exist
dpl_swarm_secret() {
  local err
  if docker secret inspect "$1" >/dev/null 2>&1; then return 0; fi
  if [ "$#" = 1 ]; then
    echo "deployer: the secret $1 is no longer on the swarm (removed once unused), and this deploy was not" \
      "given its value: deploy with it in the environment or --secrets FILE" >&2
    return 1
  fi
  err=$(printf '%s' "$2" | docker secret create --label "deployer.instance=$I" "$1" - 2>&1 >/dev/null) ||
    { echo "deployer: secret $1: $err" >&2; return 1; }
}

# dpl_swarm_unused KEEP: remove instance $I's secrets that none of its services uses any more
# (a value that changed, a service removed) but the newest KEEP of each variable (the name
# without its hash), which a rollback may run again, as one host keeps retained containers;
# one that cannot be removed now is left to the next deploy or destroy, never failing this one
dpl_swarm_unused() {
  local listed ids used name
  listed=$(docker secret ls --filter "label=deployer.instance=$I" --format '{{.CreatedAt}} {{.Name}}' 2>/dev/null)
  if [ -z "$listed" ]; then return 0; fi
  ids=$(docker service ls -q --filter "label=deployer.instance=$I" 2>/dev/null)
  # shellcheck disable=SC2086 # one id a word
  used=" $(if [ -n "$ids" ]; then docker service inspect --format \
    '{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}' $ids 2>/dev/null; fi | tr '\n' ' ')"
  for name in $(printf '%s\n' "$listed" | sort -r | awk -v used="$used" -v keep="$1" '
    { name = $NF; if (index(used, " " name " ")) next; var = name; sub(/_[^_]*$/, "", var); if (++n[var] > keep) print name }'); do
    docker secret rm "$name" >/dev/null 2>&1
  done
  return 0
}

# dpl_swarm_down SERVICE NAME: remove the service
dpl_swarm_down() {
  local t0
  t0=$(dpl_now)
  docker service rm "$2" >/dev/null || return 1
  dpl_mark ok "$1" "$t0" "$(dpl_now)"
}

# dpl_swarm_destroy WAIT WHO: holding instance $I's lock, remove its services, then (once
# their tasks are gone) its networks, configs and secrets, the lock last (at the end);
# marks `missing`, changing nothing, when it has none of them
dpl_swarm_destroy() {
  local services networks others kind name
  services=$(docker service ls -q --filter "label=deployer.instance=$I") || return 1
  networks=$(docker network ls -q --filter "label=deployer.instance=$I") || return 1
  others=$(docker config ls -q --filter "label=deployer.instance=$I") || return 1
  others="$others$(docker secret ls -q --filter "label=deployer.instance=$I")" || return 1
  if [ -z "$services$networks$others" ]; then dpl_mark missing; return 0; fi
  dpl_swarm_lock "$1" "$2" || return 1
  # shellcheck disable=SC2086 # one id a word
  if [ -n "$services" ]; then docker service rm $services >/dev/null || return 1; fi
  if ! dpl_swarm_wait "$DPL_HEALTH_TIMEOUT" dpl_swarm_unnetworked; then
    echo "deployer: the networks of $I are still in use after $DPL_HEALTH_TIMEOUT s" >&2
    return 1
  fi
  for kind in config secret; do
    for name in $(docker "$kind" ls --filter "label=deployer.instance=$I" --format '{{.Name}}'); do
      if [ "$name" != "$dpl_swarm_lock_name" ]; then docker "$kind" rm "$name" >/dev/null || return 1; fi
    done
  done
}

# dpl_swarm_unnetworked: a check (dpl_swarm_wait) that instance $I has no network left, after
# removing those it has: one is in use until the tasks of its services are gone, on every
# node, and listed until the manager's own tasks are
dpl_swarm_unnetworked() {
  local networks
  networks=$(docker network ls -q --filter "label=deployer.instance=$I") || return 2
  if [ -z "$networks" ]; then return 0; fi
  # shellcheck disable=SC2086 # one id a word
  docker network rm $networks >/dev/null 2>&1
  return 1
}

# dpl_swarm_configs [LABEL]: the ids of instance $I's configs (with LABEL too), a line each
dpl_swarm_configs() {
  docker config ls -q --filter "label=deployer.instance=$I" ${1:+--filter "label=$1"}
}

# dpl_swarm_stated: the ids of every instance's configs that say what runs, a line each
dpl_swarm_stated() {
  docker config ls -q --filter label=deployer.state
}

# dpl_swarm_newest [LABEL]: the id of instance $I's newest release config (with LABEL too)
dpl_swarm_newest() {
  local ids
  ids=$(dpl_swarm_configs "$1") || return 1
  if [ -z "$ids" ]; then return 0; fi
  # shellcheck disable=SC2086 # one id a word
  docker config inspect --format '{{index .Spec.Labels "deployer.at"}} {{.ID}}' $ids | sort -rn | sed -n '1s/.* //p'
}

# dpl_swarm_state: the newest release of instance $I that says what runs (a config the
# cluster keeps, so any manager answers), marked `stated` (`release` is the release commands' output); nothing when it has none
dpl_swarm_state() {
  local id
  id=$(dpl_swarm_newest deployer.state) || return 1
  if [ -n "$id" ]; then
    dpl_mark stated
    docker config inspect --format '{{printf "%s" .Spec.Data}}' "$id" || return 1
  fi
}

# dpl_swarm_releases LIST: the release configs LIST names (dpl_swarm_configs: instance $I's,
# dpl_swarm_stated: every instance's that say what runs), in one docker config inspect
dpl_swarm_releases() {
  local ids
  ids=$("$1") || return 1
  dpl_mark releases
  # shellcheck disable=SC2086 # one id a word
  if [ -n "$ids" ]; then docker config inspect $ids; else echo '[]'; fi
}

# dpl_swarm_record STATE KEEP DATA: a release of instance $I kept by the cluster, a config
# holding DATA (labelled deployer.state when STATE is 1: it says what runs), then only the
# newest KEEP releases (0: all), and always the newest that says what runs
dpl_swarm_record() {
  local name at stated keep id
  at=$(date +%s%N)
  name="deployer-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  if [ "$1" = 1 ]; then stated=deployer.state=1; fi
  printf '%s' "$3" | docker config create --label "deployer.instance=$I" --label "deployer.at=$at" \
    ${stated:+--label "$stated"} "$name" - >/dev/null || return 1
  if [ "$2" = 0 ]; then return 0; fi
  keep=$(dpl_swarm_newest deployer.state) || return 1
  # shellcheck disable=SC2046 # one id a word
  for id in $(docker config inspect --format '{{index .Spec.Labels "deployer.at"}} {{.ID}}' $(dpl_swarm_configs) |
    sort -rn | sed -n "$(($2 + 1)),\$s/.* //p"); do
    if [ "$id" != "$keep" ]; then docker config rm "$id" >/dev/null || return 1; fi
  done
}

# dpl_swarm_lock WAIT WHO: hold instance $I's lock across the cluster until this script ends,
# however it ends but SIGKILL: a config only one manager can create (deployer-lock-HASH),
# saying who holds it (node, after dpl_swarm_manager; process, start time, WHO). A holder
# that is gone (a process of this node that no longer runs, or a node that is down) leaves
# a stale lock, taken over; a waiter waits up to WAIT seconds (a mark a second), then names
# the holder
dpl_swarm_lock() {
  local name me err holder_node pid start holder waited=0 takeovers=0
  name="deployer-lock-$(printf '%s' "$I" | sha256sum | cut -c1-16)"
  me="$dpl_swarm_node $$ $(cut -d' ' -f22 /proc/$$/stat) $2 since $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  while ! err=$(printf '%s' "$me" | docker config create --label "deployer.lock=$I" "$name" - 2>&1 >/dev/null); do
    case "$err" in *"already exists"*) ;; *) echo "deployer: cannot take the lock of $I: $err" >&2; return 1 ;; esac
    read -r holder_node pid start holder <<EOT
$(docker config inspect --format '{{printf "%s" .Spec.Data}}' "$name" 2>/dev/null)
EOT
    if [ "$takeovers" -lt 3 ] && dpl_swarm_gone "$dpl_swarm_node" "$holder_node" "$pid" "$start"; then
      docker config rm "$name" >/dev/null 2>&1
      takeovers=$((takeovers + 1))
      continue
    fi
    if [ "$waited" -ge "$1" ]; then
      echo "deployer: locked by ${holder:-?} (waited $1 s; --lock-wait waits longer)" >&2
      return 1
    fi
    dpl_mark waiting "$waited" "$I" "${holder:-?}"
    sleep 1
    waited=$((waited + 1))
  done
  dpl_swarm_lock_name=$name
  # shellcheck disable=SC2016 # expanded when the exit trap runs
  dpl_at_exit 'docker config rm "$dpl_swarm_lock_name" >/dev/null 2>&1'
}

# dpl_swarm_gone MYNODE NODE PID START: whether the holder of a lock is gone: on this node, its
# process PID no longer runs since START; elsewhere, its node is down
dpl_swarm_gone() {
  if [ -z "$2" ]; then return 1; fi
  if [ "$1" = "$2" ]; then
    [ "$(cut -d' ' -f22 "/proc/$3/stat" 2>/dev/null)" != "$4" ]
  else
    [ "$(docker node inspect --format '{{.Status.State}}' "$2" 2>/dev/null)" = down ]
  fi
}

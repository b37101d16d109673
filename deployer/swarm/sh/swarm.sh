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

# dpl_swarm_others: the newest release that says what runs of every instance but $I (whose
# endpoints $I may expose), marked `others`, in one docker config inspect ([] when none)
dpl_swarm_others() {
  local ids newest=
  ids=$(dpl_swarm_stated) || return 1
  # shellcheck disable=SC2086 # one id a word
  if [ -n "$ids" ]; then
    newest=$(docker config inspect --format \
      '{{index .Spec.Labels "deployer.instance"}} {{index .Spec.Labels "deployer.at"}} {{.ID}}' $ids |
      sort -k1,1 -k2,2rn | awk -v me="$I" '$1 != me && !seen[$1]++ { print $3 }') || return 1
  fi
  dpl_mark others
  # shellcheck disable=SC2086 # one id a word
  if [ -n "$newest" ]; then docker config inspect $newest; else echo '[]'; fi
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
# the jobs of all IMAGEs run at once, each waited for LIMIT seconds at most, each given the
# manager's registry login as services are (a node that can pull an image lacks none). Only a
# warning: a probe that cannot run says nothing
dpl_swarm_probe() {
  local limit="$1" image name probes=''
  shift
  for image; do
    name="deployer-probe-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    docker service create --detach --quiet --no-resolve-image --with-registry-auth --mode global-job \
      --label "deployer.instance=$I" --name "$name" --entrypoint /deployer-probe "$image" >/dev/null 2>&1 &&
      probes="$probes $name=$image"
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

# dpl_swarm_waited SERVICE T0 LIMIT CHECK ARG...: dpl_swarm_wait LIMIT CHECK ARG..., and the step
# of SERVICE, begun at T0, marked done when it returns 0; its code
dpl_swarm_waited() {
  local service="$1" t0="$2" code
  shift 2
  dpl_swarm_wait "$@"
  code=$?
  if [ "$code" = 0 ]; then dpl_mark ok "$service" "$t0" "$(dpl_now)"; fi
  return "$code"
}

# dpl_swarm_create SERVICE NAME LIMIT MONITOR ARG...: docker service create ARG..., then wait
# until its task has run MONITOR seconds on end, LIMIT at most; a service whose task fails
# is removed again, as a container that does not start is
dpl_swarm_create() {
  local service="$1" name="$2" limit="$3" monitor="$4" t0 err code
  t0=$(dpl_now)
  shift 4
  err=$(docker service create "$@" 2>&1 >/dev/null) || { echo "deployer: $service: $err" >&2; return 1; }
  dpl_swarm_steady_ids='' dpl_swarm_steady_since=0
  dpl_swarm_waited "$service" "$t0" "$limit" dpl_swarm_steady "$service" "$name" "$monitor"
  code=$?
  if [ "$code" = 0 ]; then return 0; fi
  if [ "$code" = 1 ]; then echo "deployer: $service: not running after $limit s" >&2; fi
  docker service rm "$name" >/dev/null 2>&1
  return 1
}

# dpl_swarm_steady SERVICE NAME MONITOR: a check (dpl_swarm_wait) that the new service's tasks
# have run MONITOR seconds on end, or one failed, in one docker service ps: the same tasks
# (their ids in dpl_swarm_steady_ids) meant to run and running in every check since the manager
# first saw them so (dpl_swarm_steady_since, in ms: a lower bound of their time up, whatever the
# nodes' clocks say); a task replaced (it ended, even well) starts the count anew
dpl_swarm_steady() {
  local tasks error up now
  tasks=$(docker service ps --no-trunc --format '{{.ID}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}' "$2") ||
    return 1
  error=$(printf '%s\n' "$tasks" | awk -F'|' '$4 != "" { sub(/^[^|]*\|[^|]*\|[^|]*\|/, ""); print; exit }')
  if [ -n "$error" ]; then echo "deployer: $1: its task failed: $error" >&2; return 2; fi
  up=$(printf '%s\n' "$tasks" | awk -F'|' '$2 == "Running" { ids = ids " " $1; if ($3 !~ /^Running/) down = 1 }
    END { if (!down) print ids }')
  now=$(date +%s%N)
  now=$((now / 1000000))
  if [ -z "$up" ] || [ "$up" != "$dpl_swarm_steady_ids" ]; then dpl_swarm_steady_ids=$up dpl_swarm_steady_since=$now; return 1; fi
  [ $((now - dpl_swarm_steady_since)) -ge $(($3 * 1000)) ]
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
  dpl_swarm_waited "$service" "$t0" "$limit" dpl_swarm_updated "$service" "$name" "${t0%%.*}"
  code=$?
  if [ "$code" = 0 ]; then return 0; fi
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
  if dpl_swarm_waited "$service" "$t0" "$limit" dpl_swarm_counted "$name" "$to"; then return 0; fi
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

# dpl_swarm_stop SERVICE NAME LIMIT: its tasks stopped (docker service update --replicas 0), the
# count it ran kept in its label deployer.stopped, which any manager reads (start runs as many
# again; the facts say the service is stopped), then wait until none of its tasks runs, LIMIT
# seconds at most. A service stopped already keeps the count it had
dpl_swarm_stop() {
  local service="$1" name="$2" limit="$3" t0 counts count stopped err
  t0=$(dpl_now)
  counts=$(docker service inspect --format \
    '{{.Spec.Mode.Replicated.Replicas}} {{index .Spec.Labels "deployer.stopped"}}' "$name" 2>&1) ||
    { echo "deployer: $service: $counts" >&2; return 1; }
  read -r count stopped <<EOT
$counts
EOT
  if [ -z "$stopped" ]; then
    err=$(docker service update --detach --replicas 0 --label-add "deployer.stopped=$count" "$name" 2>&1 >/dev/null) ||
      { echo "deployer: $service: $err" >&2; return 1; }
  fi
  dpl_swarm_waited "$service" "$t0" "$limit" dpl_swarm_idle "$name" ||
    { echo "deployer: $service: its tasks still run after $limit s" >&2; return 1; }
}

# dpl_swarm_idle NAME: a check (dpl_swarm_wait) that no task of service NAME runs (a stopped
# task's container runs until its stop grace period is over)
dpl_swarm_idle() {
  local states
  states=$(docker service ps --format '{{.CurrentState}}' "$1") || return 2
  ! printf '%s\n' "$states" | grep -q '^Running'
}

# dpl_swarm_start SERVICE NAME LIMIT MONITOR [COUNT ARG...]: a service dpl_swarm_stop stopped runs
# the count its label kept again (docker service update --replicas, the label removed), or
# with COUNT COUNT tasks updated by ARG... (docker service update's, NAME last: a deploy of a
# stopped service); then wait until they have run MONITOR seconds on end, LIMIT at most, else
# stop it again (keeping that count) and fail saying why. Without COUNT a service that runs
# is left as it is
dpl_swarm_start() {
  local service="$1" name="$2" limit="$3" monitor="$4" t0 count err code
  t0=$(dpl_now)
  shift 4
  count=$(docker service inspect --format '{{index .Spec.Labels "deployer.stopped"}}' "$name" 2>&1) ||
    { echo "deployer: $service: $count" >&2; return 1; }
  if [ "$#" -gt 0 ]; then
    count=$1
    shift
  elif [ -z "$count" ]; then
    dpl_mark ok "$service" "$t0" "$(dpl_now)"
    return 0
  else
    set -- "$name"
  fi
  err=$(docker service update --detach --replicas "$count" --label-rm deployer.stopped "$@" 2>&1 >/dev/null) ||
    { echo "deployer: $service: $err" >&2; return 1; }
  dpl_swarm_steady_ids='' dpl_swarm_steady_since=0
  dpl_swarm_waited "$service" "$t0" "$limit" dpl_swarm_steady "$service" "$name" "$monitor"
  code=$?
  if [ "$code" = 0 ]; then return 0; fi
  if [ "$code" = 1 ]; then
    echo "deployer: $service: $count tasks did not all run within $limit s$(dpl_swarm_task_error "$name" ": ")" >&2
  fi
  echo "deployer: $service: stopped again" >&2
  docker service update --detach --replicas 0 --label-add "deployer.stopped=$count" "$name" >/dev/null 2>&1
  return 1
}

# dpl_swarm_restart SERVICE NAME LIMIT MONITOR: every task of the service replaced (docker
# service update --force: a rolling update, in the order and batches the service has, waited
# for as an update is); a stopped service is started (dpl_swarm_start), as docker restart
# starts a stopped container
dpl_swarm_restart() {
  local stopped
  stopped=$(docker service inspect --format '{{index .Spec.Labels "deployer.stopped"}}' "$2" 2>&1) ||
    { echo "deployer: $1: $stopped" >&2; return 1; }
  if [ -n "$stopped" ]; then
    dpl_swarm_start "$@"
  else
    dpl_swarm_update "$1" "$2" "$3" --detach --force "$2"
  fi
}

# dpl_swarm_task NAME: the id of a running container of service NAME on this node (the manager,
# whose docker exec reaches its own containers alone), marked `container`; else the nodes its
# tasks run on, marked `nodes`, a name a line
dpl_swarm_task() {
  local id
  id=$(docker ps -q --filter "label=com.docker.swarm.service.name=$1" --filter status=running | head -n 1)
  if [ -n "$id" ]; then
    dpl_mark container
    printf '%s\n' "$id"
    return 0
  fi
  dpl_mark nodes
  docker service ps --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' "$1" |
    sed -n 's/^\([^ ][^ ]*\) Running.*/\1/p' | sort -u
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

# dpl_swarm_consumed: fails, naming them, while services of other instances than $I join one
# of its networks (they expose its endpoints: a destroy would leave them nothing to reach)
dpl_swarm_consumed() {
  local networks ids consumers format
  format='{{index .Spec.Labels "deployer.instance"}}/{{index .Spec.Labels "deployer.service"}}'
  networks=$(docker network ls --no-trunc --filter "label=deployer.instance=$I" --format '{{.ID}} {{.Name}}') ||
    return 1
  ids=$(docker service ls -q --filter label=deployer.instance) || return 1
  if [ -z "$networks" ] || [ -z "$ids" ]; then return 0; fi
  # shellcheck disable=SC2086 # one id a word
  consumers=$(docker service inspect --format "$format {{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}" $ids |
    awk -v me="$I" -v networks=" $(printf '%s\n' "$networks" | tr '\n' ' ') " '{ split($1, of, "/") }
      of[1] != me { for (i = 2; i <= NF; i++) if (index(networks, " " $i " ")) { print $1; next } }' |
    sort | tr '\n' ' ' | sed 's/ \(.\)/, \1/g') || return 1
  if [ -n "$consumers" ]; then
    echo "deployer: the endpoints of $I are exposed by other instances' services (${consumers% }, as" \
      "instance/service): destroy them, or deploy them without those expose entries, first; nothing was changed" >&2
    return 1
  fi
}

# dpl_swarm_destroy VOLUMES WAIT WHO: holding instance $I's lock, remove its services, then
# (once their tasks are gone) its networks, configs and secrets, and with VOLUMES (1) its
# volumes this node's engine has (a manager reaches no other node's engine), marking `kept
# NODE VOLUME` for each volume of a node's own (no driver but local) on another node its
# tasks ran on; the lock last (at the end); marks `missing`, changing nothing, when it has
# none of them (nor, with VOLUMES, a volume here: those an earlier destroy kept can go)
dpl_swarm_destroy() {
  local services networks others volumes='' placed='' kind name
  services=$(docker service ls -q --filter "label=deployer.instance=$I") || return 1
  networks=$(docker network ls -q --filter "label=deployer.instance=$I") || return 1
  others=$(docker config ls -q --filter "label=deployer.instance=$I") || return 1
  others="$others$(docker secret ls -q --filter "label=deployer.instance=$I")" || return 1
  if [ "$1" = 1 ]; then volumes=$(docker volume ls -q --filter "label=deployer.instance=$I") || return 1; fi
  if [ -z "$services$networks$others$volumes" ]; then dpl_mark missing; return 0; fi
  dpl_swarm_lock "$2" "$3" || return 1
  # shellcheck disable=SC2086 # one id a word
  if [ "$1" = 1 ] && [ -n "$services" ]; then placed=$(dpl_swarm_placed $services) || return 1; fi
  # shellcheck disable=SC2086 # one id a word
  if [ -n "$services" ]; then docker service rm $services >/dev/null || return 1; fi
  if ! dpl_swarm_wait "$DPL_HEALTH_TIMEOUT" dpl_swarm_emptied network; then
    echo "deployer: the networks of $I are still in use after $DPL_HEALTH_TIMEOUT s" >&2
    return 1
  fi
  for kind in config secret; do
    for name in $(docker "$kind" ls --filter "label=deployer.instance=$I" --format '{{.Name}}'); do
      if [ "$name" != "$dpl_swarm_lock_name" ]; then docker "$kind" rm "$name" >/dev/null || return 1; fi
    done
  done
  if [ "$1" = 1 ]; then dpl_swarm_unvolumed "$placed" || return 1; fi
}

# dpl_swarm_placed ID...: where the volumes of services ID... are, a line each: NODE VOLUME,
# for each node a task of the service ran on (as long as Swarm remembers it) and each named
# volume of a node's own (of no driver but local) it mounts
dpl_swarm_placed() {
  local id mounts volumes node volume
  for id; do
    mounts=$(docker service inspect --format '{{range .Spec.TaskTemplate.ContainerSpec.Mounts}}{{if eq .Type "volume"}}
      {{- .Source}}={{with .VolumeOptions}}{{with .DriverConfig}}{{.Name}}{{end}}{{end}} {{end}}{{end}}' "$id") || return 1
    volumes=$(printf '%s' "$mounts" | tr ' ' '\n' | sed -n 's/=\(local\)\{0,1\}$//p')
    if [ -z "$volumes" ]; then continue; fi
    for node in $(docker service ps --format '{{.Node}}' "$id" | sort -u); do
      for volume in $volumes; do printf '%s %s\n' "$node" "$volume"; done
    done
  done
}

# dpl_swarm_unvolumed PLACED: remove instance $I's volumes this node's engine has, waiting for
# its tasks' containers to go (a volume is in use until then, DPL_HEALTH_TIMEOUT seconds at
# most), then mark `kept NODE VOLUME` for each line of PLACED (dpl_swarm_placed) on another node
dpl_swarm_unvolumed() {
  local here
  if ! dpl_swarm_wait "$DPL_HEALTH_TIMEOUT" dpl_swarm_emptied volume; then
    echo "deployer: the volumes of $I are still in use after $DPL_HEALTH_TIMEOUT s:" \
      "$(docker volume ls -q --filter "label=deployer.instance=$I" | tr '\n' ' ')" >&2
    return 1
  fi
  here=$(docker info --format '{{.Name}}') || return 1
  printf '%s\n' "$1" | sort -u | while read -r node volume; do
    if [ -n "$node" ] && [ "$node" != "$here" ]; then dpl_mark kept "$node" "$volume"; fi
  done
}

# dpl_swarm_emptied KIND: a check (dpl_swarm_wait) that this node's engine lists no KIND
# (network, volume) of instance $I, after removing those it lists: a network is in use until
# the tasks of its services are gone, on every node, and listed until the manager's own tasks
# are; a volume is in use until the containers of this node's tasks are gone
dpl_swarm_emptied() {
  local ids
  ids=$(docker "$1" ls -q --filter "label=deployer.instance=$I") || return 2
  if [ -z "$ids" ]; then return 0; fi
  # shellcheck disable=SC2086 # one a word
  docker "$1" rm $ids >/dev/null 2>&1
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
# however it ends: a config only one manager can create (deployer-lock-HASH), saying who
# holds it (node, after dpl_swarm_manager; process, start time, WHO), kept alive by beats
# while the holder runs (dpl_swarm_beat). A holder that is gone (a process of this node that
# no longer runs; a node that is down, or whose holder has not beaten for DPL_SWARM_STALE
# seconds: SIGKILLed) leaves a stale lock, taken over; a waiter waits up to WAIT seconds (a
# mark a second), then names the holder
DPL_SWARM_BEAT=5 DPL_SWARM_STALE=30
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
    if [ "$takeovers" -lt 3 ] && dpl_swarm_gone "$name" "$holder_node" "$pid" "$start"; then
      # shellcheck disable=SC2046 # one id a word
      docker config rm "$name" $(docker config ls -q --filter "label=deployer.beat=$I") >/dev/null 2>&1
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
  dpl_swarm_beat "$name-$$" "$(cut -d' ' -f22 /proc/$$/stat)"
  # shellcheck disable=SC2016 # expanded when the exit trap runs
  dpl_at_exit 'docker config rm "$dpl_swarm_lock_name" "$dpl_swarm_lock_name-$$-0" "$dpl_swarm_lock_name-$$-1" >/dev/null 2>&1'
}

# dpl_swarm_beat NAME START: while this script's process (started at START) runs, a config
# NAME-0 or NAME-1 every DPL_SWARM_BEAT seconds, made before the other is removed: a waiter
# on another node reads when the holder last showed life. A process of its own (a subshell
# would keep the shell's saved copies of the script's streams open) holding none of the
# script's streams, so the script ends without waiting for it; once the script is gone it
# removes its beats (the script did too, unless a beat was being made then)
dpl_swarm_beat() {
  # shellcheck disable=SC2016 # the beat's own script
  sh -c 'n=0
    while sleep "$1" && [ "$(cut -d" " -f22 "/proc/$2/stat" 2>/dev/null)" = "$3" ]; do
      printf "%s" "$n" | docker config create --label "deployer.beat=$4" "$5-$((n % 2))" - >/dev/null 2>&1
      docker config rm "$5-$(((n + 1) % 2))" >/dev/null 2>&1
      n=$((n + 1))
    done
    if [ "$n" -gt 0 ]; then docker config rm "$5-0" "$5-1" >/dev/null 2>&1; fi' \
    beat "$DPL_SWARM_BEAT" $$ "$2" "$I" "$1" </dev/null >/dev/null 2>&1 3<&- 4>&- &
}

# dpl_swarm_gone LOCK NODE PID START: whether the holder of a lock is gone: on this node, its
# process PID no longer runs since START; elsewhere, its node is down, or neither the lock
# nor a beat of it is younger than DPL_SWARM_STALE seconds
dpl_swarm_gone() {
  local newest
  if [ -z "$2" ]; then return 1; fi
  if [ "$dpl_swarm_node" = "$2" ]; then
    [ "$(cut -d' ' -f22 "/proc/$3/stat" 2>/dev/null)" != "$4" ]
  elif [ "$(docker node inspect --format '{{.Status.State}}' "$2" 2>/dev/null)" = down ]; then
    return 0
  else
    # shellcheck disable=SC2046 # one id a word
    newest=$(docker config inspect --format '{{.CreatedAt.Unix}}' "$1" \
      $(docker config ls -q --filter "name=$1-$3-") 2>/dev/null | sort -n | tail -n 1)
    [ -n "$newest" ] && [ $(($(date +%s) - newest)) -gt "$DPL_SWARM_STALE" ]
  fi
}

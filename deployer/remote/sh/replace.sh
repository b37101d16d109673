# shellcheck shell=sh
# The replacement state machine: how a service's container is created, replaced
# (stop-first or start-first), rolled back to a retained one, or removed. A step done is
# marked `ok SERVICE T0 T1`; a step that fails leaves the current container running as
# its own name wherever docker lets it. A deploy sets DPL_MIN_UPTIME and DPL_HEALTH_TIMEOUT.

# dpl_started NAME: the container still runs, never restarted, DPL_MIN_UPTIME seconds after
# it started (a command that cannot run fails within a fraction of that), and, if it has a
# healthcheck, turns healthy within DPL_HEALTH_TIMEOUT seconds (polled every half second)
dpl_started() {
  local polls=0 state
  sleep "$DPL_MIN_UPTIME"
  while state=$(docker container inspect --format '{{.State.Status}} {{.RestartCount}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1"); do
    case "$state" in
      "running 0 "|"running 0 healthy") return 0 ;;
      "running 0 starting")
        if [ "$polls" -ge $((DPL_HEALTH_TIMEOUT * 2)) ]; then
          echo "deployer: $1 was not healthy after $DPL_HEALTH_TIMEOUT s" >&2
          return 1
        fi
        if [ "$polls" -ge 4 ] && [ $((polls % 2)) = 0 ]; then dpl_mark health "$1" $((polls / 2)); fi ;;
      *) return 1 ;;
    esac
    sleep 0.5
    polls=$((polls + 1))
  done
  return 1
}

# dpl_away NAME KEEP: the current container NAME is renamed KEEP (replacing a container
# already named so). Returns 0 when it was, 3 when there is none to retire (no KEEP given:
# a first start; or NAME was removed by hand meanwhile), 1 when it could not be renamed.
dpl_away() {
  [ -n "$2" ] || return 3
  docker rename "$1" "$2" 2>/dev/null && return 0
  docker rm -f "$2" >/dev/null 2>&1
  docker rename "$1" "$2" 2>/dev/null && return 0
  if docker container inspect "$1" >/dev/null 2>&1; then return 1; fi
  return 3
}

# dpl_retire NAME KEEP: the current container NAME is stopped and kept as KEEP; prints the
# name it is kept as (nothing when there was none). If it cannot be stopped, it runs on
# under its own name, and the step fails.
dpl_retire() {
  dpl_away "$1" "$2"
  case $? in
    0) ;;
    3) return 0 ;;
    *) return 1 ;;
  esac
  if docker stop "$2" >/dev/null; then echo "$2"; return 0; fi
  if docker rename "$2" "$1"; then
    echo "deployer: $1 could not be stopped to be replaced: it runs on as before" >&2
  else
    echo "deployer: $1 could not be stopped to be replaced, nor renamed back: it runs as $2" >&2
  fi
  return 1
}

# dpl_restore NAME OLD: the retired container OLD (if any) runs as NAME again (after a
# failed replacement)
dpl_restore() {
  if [ -n "$2" ]; then docker rename "$2" "$1" && dpl_launch start "$1"; fi
}

# dpl_failed SERVICE CONTAINER: why the new container did not start well, and its last lines
dpl_failed() {
  {
    echo "deployer: the new container of $1 did not start well ($(docker container inspect --format '{{.State.Status}}, exit code {{.State.ExitCode}}{{if eq .RestartCount 1}}, restarted once{{else if .RestartCount}}, restarted {{.RestartCount}} times{{end}}{{if .State.Health}}, {{.State.Health.Status}}{{end}}' "$2" 2>&1))"
    docker logs --tail 10 "$2" 2>&1 | sed 's/^/log: /'
  } >&2
}

# dpl_run [--dpl-join NETWORK=ALIAS]... RUN-ARGS...: docker run; a container joining networks
# besides its first (docker run takes one before API 1.44) is created, connected to each
# (under ALIAS, if any), then started: it never runs without them. RUN-ARGS start with -d.
dpl_run() {
  local joins='' join id
  while [ "$1" = --dpl-join ]; do joins="$joins $2"; shift 2; done
  if [ -z "$joins" ]; then dpl_launch run "$@"; return; fi
  shift
  id=$(docker create "$@") || return 1
  for join in $joins; do
    if [ -n "${join#*=}" ]; then
      docker network connect --alias "${join#*=}" "${join%%=*}" "$id" || return 1
    else
      docker network connect "${join%%=*}" "$id" || return 1
    fi
  done
  dpl_launch start "$id"
}

# dpl_launch run|start ARG...: docker run or start of a container, its output dropped. A
# network of deployer's the engine lost is made anew (dpl_renew) and the container started
# again, once; when it fails for a host port in use, says who holds the port: an instance
# (by its container), a container of no instance, or no container at all
dpl_launch() {
  local err lost port holder
  err=$(docker "$@" 2>&1 >/dev/null) && return 0
  lost=$(printf '%s\n' "$err" | sed -n 's/.*failed to create endpoint \([^ ]*\) on network \([^: ]*\): network .*not found.*/\1 \2/p' | head -n 1)
  if [ -n "$lost" ] && dpl_renew "${lost#* }"; then
    err=$(docker start "${lost%% *}" 2>&1 >/dev/null) && return 0
  fi
  printf '%s\n' "$err" >&2
  port=$(printf '%s\n' "$err" | sed -n -e 's/.*Bind for .*:\([0-9]*\) failed: port is already allocated.*/\1/p' \
    -e 's/.*listen [a-z0-9]* .*:\([0-9]*\): bind: address already in use.*/\1/p' | head -n 1)
  [ -n "$port" ] || return 1
  holder=$(docker ps --filter "publish=$port" --format '{{.Names}} {{.Label "deployer.instance"}}' | head -n 1)
  case "$holder" in
    "") echo "deployer: host port $port is in use on the host, by no container (another program listens on it)" >&2 ;;
    *" ") echo "deployer: host port $port is published by container ${holder% }, which no instance holds" >&2 ;;
    *) echo "deployer: host port $port is held by instance ${holder#* } (its container ${holder% *})" >&2 ;;
  esac
  return 1
}

# dpl_up SERVICE NAME KEEP RUN-ARGS...: stop-first: the current NAME is stopped and kept as
# KEEP, then the new one runs; if it does not start well, the current one comes back
dpl_up() {
  local service="$1" name="$2" keep="$3" t0 old
  t0=$(dpl_now)
  shift 3
  old=$(dpl_retire "$name" "$keep") || return 1
  if dpl_run "$@"; then
    if dpl_started "$name"; then dpl_mark ok "$service" "$t0" "$(dpl_now)"; return 0; fi
    dpl_failed "$service" "$name"
  fi
  docker rm -f "$name" >/dev/null 2>&1
  dpl_restore "$name" "$old"
  return 1
}

# dpl_switch SERVICE NAME KEEP T0 NEW: the end of a start-first step: once NEW, running, has
# started well, the current NAME is stopped (kept as KEEP) and NEW becomes NAME; else the
# current one runs on as NAME, and NEW is the caller's to remove. (The current one stops
# while NEW takes its name: both are needed before the step is done.)
dpl_switch() {
  local service="$1" name="$2" keep="$3" t0="$4" new="$5" old='' stopping='' renamed
  if ! dpl_started "$new"; then dpl_failed "$service" "$new"; return 1; fi
  dpl_away "$name" "$keep"
  case $? in 0) old=$keep ;; 3) ;; *) return 1 ;; esac
  if [ -n "$old" ]; then docker stop "$old" >/dev/null & stopping=$!; fi
  docker rename "$new" "$name"
  renamed=$?
  if { [ -z "$stopping" ] || wait "$stopping"; } && [ "$renamed" = 0 ]; then
    dpl_mark ok "$service" "$t0" "$(dpl_now)"
    return 0
  fi
  if [ "$renamed" = 0 ]; then docker rename "$name" "$new"; fi
  dpl_restore "$name" "$old"
  return 1
}

# dpl_first SERVICE NAME KEEP RUN-ARGS...: start-first: the new container runs as NAME.next
# and must start well before the current NAME is stopped (kept as KEEP)
dpl_first() {
  local service="$1" name="$2" keep="$3" t0
  t0=$(dpl_now)
  shift 3
  if dpl_run "$@" && dpl_switch "$service" "$name" "$keep" "$t0" "$name.next"; then return 0; fi
  docker rm -f "$name.next" >/dev/null 2>&1
  return 1
}

# dpl_again SERVICE NAME KEEP RETAINED: start-first rollback: the retained container runs
# again, under its own name, and must start well before the current NAME is stopped (kept
# as KEEP); if it does not, it is stopped again, still retained
dpl_again() {
  local t0
  t0=$(dpl_now)
  if dpl_launch start "$4" && dpl_switch "$1" "$2" "$3" "$t0" "$4"; then return 0; fi
  docker stop "$4" >/dev/null 2>&1
  return 1
}

# dpl_back SERVICE NAME KEEP RETAINED: stop-first rollback: a retained container runs as NAME again
dpl_back() {
  local service="$1" name="$2" retained="$4" t0 old
  t0=$(dpl_now)
  old=$(dpl_retire "$name" "$3") || return 1
  if docker rename "$retained" "$name" && dpl_launch start "$name" && dpl_started "$name"; then
    dpl_mark ok "$service" "$t0" "$(dpl_now)"
    return 0
  fi
  dpl_failed "$service" "$name"
  docker stop "$name" >/dev/null 2>&1
  docker rename "$name" "$retained"
  dpl_restore "$name" "$old"
  return 1
}

# dpl_down SERVICE: stop and remove every container of one service of instance $I
dpl_down() {
  local t0 ids
  t0=$(dpl_now)
  ids=$(docker ps -aq --filter "label=deployer.instance=$I" --filter "label=deployer.service=$1") || return 1
  # shellcheck disable=SC2086 # ids: one container id a word
  if [ -n "$ids" ]; then dpl_remove $ids || return 1; fi
  dpl_mark ok "$1" "$t0" "$(dpl_now)"
}


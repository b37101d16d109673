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
# besides its first is created and joined to them first (dpl_created). RUN-ARGS start with -d.
dpl_run() {
  local joins='' id
  while [ "$1" = --dpl-join ]; do joins="$joins --dpl-join $2"; shift 2; done
  if [ -z "$joins" ]; then dpl_launch run "$@"; return; fi
  shift
  # shellcheck disable=SC2086 # (network names and aliases hold no blank)
  id=$(dpl_created $joins "$@") && dpl_launch start "$id"
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

# A routed service's steps start with `--dpl-route ROUTE`: ROUTE is a function of the plan
# (dpl_route_move with the route's arguments), called with the new container once it has
# started well; only when it succeeds does the step go on (router.sh).

# dpl_up [--dpl-route ROUTE] SERVICE NAME KEEP RUN-ARGS...: stop-first: the current NAME is
# stopped and kept as KEEP, then the new one runs; if it does not start well, the current
# one comes back
dpl_up() {
  local route='' service name keep t0 old
  if [ "$1" = --dpl-route ]; then route=$2; shift 2; fi
  service=$1 name=$2 keep=$3
  t0=$(dpl_now)
  shift 3
  old=$(dpl_retire "$name" "$keep") || return 1
  if dpl_run "$@"; then
    if ! dpl_started "$name"; then
      dpl_failed "$service" "$name"
    elif [ -z "$route" ] || "$route" "$name"; then
      dpl_mark ok "$service" "$t0" "$(dpl_now)"
      return 0
    fi
  fi
  docker rm -f "$name" >/dev/null 2>&1
  dpl_restore "$name" "$old"
  return 1
}

# dpl_switch SERVICE NAME KEEP T0 NEW [ROUTE]: the end of a start-first step: once NEW,
# running, has started well (and its ROUTE moved to it), the current NAME is stopped (kept
# as KEEP) and NEW becomes NAME; else the current one runs on as NAME (its route back on
# it), and NEW is the caller's to remove. (The current one stops while NEW takes its name:
# both are needed before the step is done.)
dpl_switch() {
  local service="$1" name="$2" keep="$3" t0="$4" new="$5" old='' stopping='' renamed
  if ! dpl_started "$new"; then dpl_failed "$service" "$new"; return 1; fi
  if [ -n "${6:-}" ] && ! "$6" "$new"; then return 1; fi
  dpl_away "$name" "$keep"
  case $? in 0) old=$keep ;; 3) ;; *) [ -z "${6:-}" ] || dpl_route_back; return 1 ;; esac
  if [ -n "$old" ]; then docker stop "$old" >/dev/null & stopping=$!; fi
  docker rename "$new" "$name"
  renamed=$?
  if { [ -z "$stopping" ] || wait "$stopping"; } && [ "$renamed" = 0 ]; then
    dpl_mark ok "$service" "$t0" "$(dpl_now)"
    return 0
  fi
  if [ "$renamed" = 0 ]; then docker rename "$name" "$new"; fi
  dpl_restore "$name" "$old"
  [ -z "${6:-}" ] || dpl_route_back
  return 1
}

# dpl_first [--dpl-route ROUTE] SERVICE NAME KEEP RUN-ARGS...: start-first: the new
# container runs as NAME.next and must start well before the current NAME is stopped (kept
# as KEEP)
dpl_first() {
  local route='' service name keep t0
  if [ "$1" = --dpl-route ]; then route=$2; shift 2; fi
  service=$1 name=$2 keep=$3
  t0=$(dpl_now)
  shift 3
  if dpl_run "$@" && dpl_switch "$service" "$name" "$keep" "$t0" "$name.next" "$route"; then return 0; fi
  docker rm -f "$name.next" >/dev/null 2>&1
  return 1
}

# dpl_again [--dpl-route ROUTE] SERVICE NAME KEEP RETAINED: start-first rollback: the
# retained container runs again, under its own name, and must start well before the current
# NAME is stopped (kept as KEEP); if it does not, it is stopped again, still retained
dpl_again() {
  local route='' t0
  if [ "$1" = --dpl-route ]; then route=$2; shift 2; fi
  t0=$(dpl_now)
  if dpl_launch start "$4" && dpl_switch "$1" "$2" "$3" "$t0" "$4" "$route"; then return 0; fi
  docker stop "$4" >/dev/null 2>&1
  return 1
}

# dpl_back [--dpl-route ROUTE] SERVICE NAME KEEP RETAINED: stop-first rollback: a retained
# container runs as NAME again
dpl_back() {
  local route='' service name retained t0 old
  if [ "$1" = --dpl-route ]; then route=$2; shift 2; fi
  service=$1 name=$2 retained=$4
  t0=$(dpl_now)
  old=$(dpl_retire "$name" "$3") || return 1
  if docker rename "$retained" "$name" && dpl_launch start "$name" && dpl_started "$name"; then
    if [ -z "$route" ] || "$route" "$name"; then
      dpl_mark ok "$service" "$t0" "$(dpl_now)"
      return 0
    fi
  else
    dpl_failed "$service" "$name"
  fi
  docker stop "$name" >/dev/null 2>&1
  docker rename "$name" "$retained"
  dpl_restore "$name" "$old"
  return 1
}

# dpl_undone UNIT: the replica UNIT, replaced earlier in this roll, went back to its previous
# container (dpl_again/dpl_back) once a later replica of its service failed: marked `back UNIT`
dpl_undone() {
  dpl_mark back "$1"
  echo "deployer: $1 went back to its previous container" >&2
}

# Replicas replaced several at once (deployer.rolling.batch): each step runs in the
# background and says how it ended (dpl_turned); the route of each moves only after the
# step of the one before it in the batch ended well (dpl_turn), so routes move one at a
# time, in order, while the new containers start and are checked at once.

# dpl_turns: the directory the steps of a batch say their ends in, removed when the script ends
dpl_turns() {
  # shellcheck disable=SC2016 # expanded when the exit trap runs
  mkdir -p "$D/roll.$$" && dpl_at_exit 'rm -rf "$D/roll.$$"'
}

# dpl_turned UNIT CODE: the step of the replica UNIT ended with CODE (returned)
dpl_turned() {
  echo "$2" >"$D/roll.$$/$1"
  return "$2"
}

# dpl_turn UNIT: once the step of the replica UNIT ended, whether it was done
dpl_turn() {
  while [ ! -s "$D/roll.$$/$1" ]; do sleep 0.1; done
  [ "$(cat "$D/roll.$$/$1")" = 0 ]
}

# dpl_down SERVICE [REPLICA]: stop and remove every container of one service of instance
# $I that is no replica (its one container, and those retained), or of one of its replicas
# (scaled down); marked done as SERVICE or SERVICE.REPLICA
dpl_down() {
  local t0 ids
  t0=$(dpl_now)
  ids=$(docker ps -a --filter "label=deployer.instance=$I" --filter "label=deployer.service=$1" \
    --format '{{.ID}} {{.Label "deployer.replica"}}') || return 1
  ids=$(printf '%s\n' "$ids" | awk -v replica="${2:-}" '$1 != "" && $2 == replica { print $1 }')
  # shellcheck disable=SC2086 # ids: one container id a word
  if [ -n "$ids" ]; then dpl_remove $ids || return 1; fi
  dpl_mark ok "$1${2:+.$2}" "$t0" "$(dpl_now)"
}


# dpl_release SERVICE SECONDS [--dpl-join NETWORK=]... RUN-ARGS...: the service's release
# command (a migration), a one-off container of its new spec (docker run RUN-ARGS; one
# joining other networks too is created and joined first: dpl_created), before its first
# container is replaced. Each line it prints reaches the client as it comes (a note `release SERVICE
# LINE`); its end is marked `released SERVICE EXIT T0 T1` and added to dpl_released (the
# history's record of it). After SECONDS (0: no limit) it is stopped (TERM; KILL 10 s later)
# and removed. A
# non-zero exit fails the step, saying the exit code, with the last lines as `log:` lines.
dpl_release() {
  local service="$1" seconds="$2" cid="$D/release.$$.cid" t0 t1 out code
  shift 2
  t0=$(dpl_now)
  rm -f "$cid"
  if [ "$1" = --dpl-join ]; then  # (it joins another instance's network: created, joined, then started)
    dpl_created "$@" >"$cid" || { rm -f "$cid"; echo "deployer: the release command of $service could not start" >&2; return 1; }
    set -- start -a "$(cat "$cid")"
  else
    set -- run --cidfile "$cid" "$@"
  fi
  dpl_trace run docker "$@"
  out=$( { { timeout -k 10 "$seconds" docker "$@" 2>&1 7>&-; echo "$?" >&7; } | dpl_relay "$service"; } 7>&1 )
  t1=$(dpl_now)
  code=$(printf '%s\n' "$out" | head -n 1)
  if [ "$seconds" -gt 0 ] && [ "$code" -gt 123 ] && [ $((${t1%.*} - ${t0%.*})) -ge "$seconds" ] && [ -s "$cid" ]; then
    docker rm -f "$(cat "$cid")" >/dev/null 2>&1
    echo "deployer: the release command of $service did not end within $seconds s (deployer.release_timeout): stopped" >&2
  fi
  rm -f "$cid"
  dpl_mark released "$service" "$code" "$t0" "$t1"
  dpl_released="$dpl_released${dpl_released:+,}{\"service\":\"$service\",\"exit_code\":$code,\"seconds\":$(dpl_seconds "$t0" "$t1")}"
  [ "$code" = 0 ] && return 0
  echo "deployer: the release command of $service failed (exit code $code): none of its containers was replaced" >&2
  printf '%s\n' "$out" | tail -n +2 | sed 's/^/log: /' >&2
  return 1
}

# dpl_relay SERVICE: each line of stdin to the client as it comes (a note `release SERVICE
# LINE`), then the last 10 lines on stdout (kept in a variable, trimmed every 100 lines)
dpl_relay() {
  local line last='' kept=0
  while IFS= read -r line || [ -n "$line" ]; do
    dpl_note release "$1" "$line"
    last="$last$line
"
    kept=$((kept + 1))
    if [ "$kept" -ge 100 ]; then
      last="$(printf '%s' "$last" | tail -n 10)
"
      kept=10
    fi
  done
  printf '%s' "$last" | tail -n 10
}

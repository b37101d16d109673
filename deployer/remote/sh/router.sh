# shellcheck shell=sh
# The host's router (route.py): one Caddy container, deployer-router, serving the route
# table $S/router/routes.json with the config rendered from it, $S/router/caddy.json (the
# router reads it when it starts, mounted at /deployer, and is told to load it again after
# each change). Its admin API listens on the router's own loopback: the host reaches it
# with `docker exec`, nothing on a network does. Routes change under $S/router/lock (fd 7).

# dpl_router_lock WAIT ROUTED: hold the router's lock (waiting up to WAIT seconds) when the
# deploy has routes (ROUTED=1) or instance $I holds some in the table; then the table
dpl_router_lock() {
  if [ "$2" = 1 ] || grep -qF "\"instance\": \"$I\"" "$S/router/routes.json" 2>/dev/null; then
    dpl_router_locked "$1" || return 1
  fi
  dpl_router_table
}

# dpl_router_locked WAIT: hold the router's lock (fd 7) until the script ends
dpl_router_locked() {
  mkdir -p "$S/router" && chmod 700 "$S/router" && exec 7>>"$S/router/lock" || return 1
  flock -w "$1" 7 || { echo "deployer: the router's routes are being changed by another deploy (waited $1 s)" >&2; return 1; }
}

# dpl_router_table: the route table (none: nothing), for the client
dpl_router_table() {
  dpl_mark routes
  if [ -f "$S/router/routes.json" ]; then cat "$S/router/routes.json" || return 1; fi
}

# dpl_routed_states: each routed container's name, state and docker's status ("running Up 3
# minutes (healthy)"), a line each, for the client
dpl_routed_states() {
  dpl_mark states
  docker ps -a --filter label=deployer.route --format '{{.Names}} {{.State}} {{.Status}}'
}

# dpl_router_up CONFIG DIGEST [--dpl-join NETWORK]... [--dpl-sysctl NAME=VALUE]... RUN-ARGS...:
# the router runs as RUN-ARGS say, with $S/router mounted and each sysctl this kernel has
# (one labelled with another DIGEST or mounting another directory, or gone, is replaced;
# one stopped starts), with the config CONFIG (rendered from the table as it is: loaded
# when it changed, or the router started), and joins each NETWORK
dpl_router_up() {
  local config="$1" digest="$2" joins='' join now load=1 sysctls=''
  shift 2
  while [ "$1" = --dpl-join ]; do joins="$joins $2"; shift 2; done
  while [ "$1" = --dpl-sysctl ]; do
    if [ -e "/proc/sys/$(printf '%s' "${2%%=*}" | tr . /)" ]; then sysctls="$sysctls --sysctl $2"; fi
    shift 2
  done
  mkdir -p "$S/router" && chmod 700 "$S/router" || return 1
  if [ "$(cat "$S/router/caddy.json" 2>/dev/null)" = "$(printf '%s' "$config")" ]; then load=0; fi
  [ "$load" = 0 ] || dpl_put "$S/router/caddy.json" "$config" || return 1
  now=$(docker container inspect --format "{{index .Config.Labels \"deployer.router\"}} {{.State.Running}}{{range .Mounts}} {{.Source}}{{end}}" deployer-router 2>/dev/null)
  case "$now" in
    "$digest true $S/router") ;;
    "$digest false $S/router") load=1; docker start deployer-router >/dev/null || return 1 ;;
    *)
      load=1
      docker rm -f deployer-router >/dev/null 2>&1
      dpl_network --label deployer.router=network deployer-router || return 1
      # shellcheck disable=SC2086 # (a sysctl's NAME=VALUE has no blank: route.py)
      dpl_launch run -v "$S/router:/deployer" $sysctls "$@" ||
        { echo "deployer: the router could not start (its image is the setting deployer.router.image)" >&2; return 1; } ;;
  esac
  now=$(docker container inspect --format '{{range $name, $_ := .NetworkSettings.Networks}} {{$name}}{{end}} ' deployer-router) || return 1
  for join in $joins; do  # (the network of an instance removed by hand, not destroyed, is gone: its routes fail)
    case "$now" in *" $join "*) ;; *) docker network connect "$join" deployer-router >/dev/null 2>&1 ||
      ! docker network inspect "$join" >/dev/null 2>&1 || { echo "deployer: the router cannot join $join" >&2; return 1; } ;; esac
  done
  if [ "$load" = 1 ]; then dpl_router_load; fi  # (one just started: once it answers, it has loaded the file)
}

# dpl_router_load: the router loads $S/router/caddy.json (it may be starting: asked again
# for up to 5 s); a config it refuses leaves the one it runs
dpl_router_load() {
  local tries=0 err
  until err=$(docker exec deployer-router caddy reload --config /deployer/caddy.json --force 2>&1); do
    tries=$((tries + 1))
    if [ "$tries" -ge 20 ]; then
      echo "deployer: the router did not load its config: $(printf '%s\n' "$err" | tail -n 1)" >&2
      return 1
    fi
    sleep 0.25
  done
}

# dpl_router_set TABLE CONFIG: the table and its config are written, and the router loads it
dpl_router_set() {
  dpl_put "$S/router/routes.json" "$1" && dpl_put "$S/router/caddy.json" "$2" && dpl_router_load
}

# dpl_route_move NEW NETWORK PORT HEALTH DRAIN [TABLE CONFIG]: the container NEW passes its
# route's health check, then (given a TABLE) the route moves to it, and requests begun on the
# container it replaces have DRAIN seconds to finish there
dpl_route_move() {
  dpl_route_check "$1" "$2" "$3" "$4" || return 1
  if [ $# -gt 5 ]; then dpl_router_set "$6" "$7" && dpl_moved=1 && sleep "$5"; fi
}

# dpl_route_back: after a step that failed once its route moved (dpl_route_move), the table
# and config before that move are back (dpl_put kept them as .prev); else nothing
dpl_route_back() {
  [ "${dpl_moved:-}" = 1 ] || return 0
  dpl_moved=
  dpl_router_set "$(cat "$S/router/routes.json.prev")" "$(cat "$S/router/caddy.json.prev")"
}

# dpl_route_check NAME NETWORK PORT HEALTH: GET HEALTH on the container's PORT, at its address
# on NETWORK, answers 2xx or 3xx (no HEALTH: a TCP connect) within DPL_HEALTH_TIMEOUT seconds
# (asked every half second); else the check's last answer and the container's last lines.
# Asked from the router's network namespace where this user may enter it (nsenter: root),
# the way the router dials; else from the host's (whose routes may lead elsewhere: another
# engine on the machine with a bridge on the same subnet)
dpl_route_check() {
  local address answer polls=0 netns
  address=$(docker container inspect --format "{{with index .NetworkSettings.Networks \"$2\"}}{{.IPAddress}}{{end}}" "$1") || return 1
  netns=$(docker container inspect --format '{{.State.Pid}}' deployer-router 2>/dev/null)
  case "$netns" in ""|0) netns='' ;; *) nsenter -t "$netns" -n true 2>/dev/null || netns='' ;; esac
  until answer=$(dpl_probe "$netns" "$address" "$3" "$4"); do
    if [ "$polls" -ge $((DPL_HEALTH_TIMEOUT * 2)) ]; then
      echo "deployer: $1 failed its route's health check for $DPL_HEALTH_TIMEOUT s (${4:+GET $4: }$answer); the route did not move" >&2
      docker logs --tail 10 "$1" 2>&1 | sed 's/^/log: /' >&2
      return 1
    fi
    if [ "$polls" -ge 4 ] && [ $((polls % 2)) = 0 ]; then dpl_mark health "$1" $((polls / 2)); fi
    sleep 0.5
    polls=$((polls + 1))
  done
}

# dpl_probe NETNS ADDRESS PORT [PATH]: one check, in the network namespace of the process
# NETNS (none: the host's): GET PATH answers 2xx or 3xx, or (no PATH) a TCP connection
# opens; says what it got when not
dpl_probe() {
  local got
  [ -n "$2" ] || { echo "no address on the instance's network"; return 1; }
  got=$(${1:+nsenter -t "$1" -n} curl -s -o /dev/null -w '%{http_code} %{time_connect}' --connect-timeout 2 -m 5 \
    "http://$2:$3${4:-/}")
  case "$got" in
    "000 0.000000") echo "no connection to port $3"; return 1 ;;
    000*) [ -z "$4" ] && return 0; echo "no HTTP answer"; return 1 ;;
    [23]??*) return 0 ;;
    *) [ -z "$4" ] && return 0; echo "HTTP ${got%% *}"; return 1 ;;
  esac
}

# dpl_router_swap WAIT SEEN TABLE CONFIG: under the router's lock, the table the client read
# (SEEN) becomes TABLE, and the router (if it runs) loads CONFIG; a table changed since it
# was read changes nothing (the client reads it again)
dpl_router_swap() {
  dpl_router_locked "$1" || return 1
  if [ "$(cat "$S/router/routes.json" 2>/dev/null)" != "$(printf '%s' "$2")" ]; then
    echo "deployer: the host's routes changed while they were read: nothing was changed; run it again" >&2
    return 1
  fi
  dpl_put "$S/router/routes.json" "$3" && dpl_put "$S/router/caddy.json" "$4" || return 1
  if [ "$(docker container inspect --format '{{.State.Running}}' deployer-router 2>/dev/null)" = true ]; then dpl_router_load; fi
}

# dpl_router_status: the router's container as docker inspect describes it (nothing: none)
dpl_router_status() {
  dpl_mark router
  docker container inspect deployer-router 2>/dev/null
  return 0
}

# dpl_router_ca: the root certificate of the router's own CA (tls internal)
dpl_router_ca() {
  local file="$S/router/data/caddy/pki/authorities/local/root.crt"
  [ -f "$file" ] || { echo "deployer: the router has no CA of its own yet ($file): deploy a route with deployer.router.tls internal first" >&2; return 1; }
  dpl_mark ca
  cat "$file"
}

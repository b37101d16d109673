# shellcheck shell=sh
# The router of a swarm (swarm/router.py): a global service, deployer-router, a Caddy task on
# every node whose admin API is a unix socket in the node's deployer-router volume; the
# route table, a config per change (deployer-routes-N, the newest is the table); a change
# loaded by every node's router through a global job before the deploy goes on.

# dpl_swarm_routes: the cluster's route table (none: nothing), marked `routes`
dpl_swarm_routes() {
  local newest
  newest=$(dpl_swarm_routes_newest) || return 1
  dpl_mark routes
  if [ -n "$newest" ]; then docker config inspect --format '{{printf "%s" .Spec.Data}}' "deployer-routes-$newest"; fi
}

# dpl_swarm_routes_newest: N of the newest table config, deployer-routes-N (none: nothing)
dpl_swarm_routes_newest() {
  local names
  names=$(docker config ls --filter label=deployer.routes --format '{{.Name}}') || return 1
  printf '%s\n' "$names" | sed -n 's/^deployer-routes-\([0-9][0-9]*\)$/\1/p' | sort -n | tail -n 1
}

# dpl_swarm_router_up DIGEST BASE LIMIT CONFIG ARG...: the router service runs labelled
# DIGEST (one labelled otherwise is removed first), made with docker service create ARG...
# and the config BASE as the one its tasks start with when their node saved none; one made
# anew loads CONFIG on every node (dpl_swarm_router_push: the image is the ARG before `caddy`)
dpl_swarm_router_up() {
  local digest="$1" base="$2" limit="$3" config="$4" now image arg err
  shift 4
  now=$(docker service inspect --format '{{index .Spec.Labels "deployer.router"}}' deployer-router 2>/dev/null)
  if [ "$now" = "$digest" ]; then return 0; fi
  if [ -n "$now" ]; then docker service rm deployer-router >/dev/null || return 1; fi
  dpl_swarm_network deployer-router --label deployer.router=network deployer-router || return 1
  if ! docker config inspect "deployer-router-$digest" >/dev/null 2>&1; then
    printf '%s' "$base" | docker config create --label deployer.router=base "deployer-router-$digest" - >/dev/null || return 1
  fi
  err=$(docker service create --detach --quiet --no-resolve-image --name deployer-router --label "deployer.router=$digest" \
    --config "source=deployer-router-$digest,target=/deployer-base.json" "$@" 2>&1 >/dev/null) ||
    { echo "deployer: the router: $err (its image is the setting deployer.router.image)" >&2; return 1; }
  for arg; do
    if [ "$arg" = caddy ]; then break; fi
    image=$arg
  done
  for arg in $(docker config ls --filter label=deployer.router=base --format '{{.Name}}'); do  # (one in use stays)
    if [ "$arg" != "deployer-router-$digest" ]; then docker config rm "$arg" >/dev/null 2>&1; fi
  done
  dpl_swarm_router_push "$limit" "$config" "$image"
}

# dpl_swarm_router_load LIMIT SEEN TABLE CONFIG IMAGE: the table becomes TABLE if it is still
# SEEN (a config named for the next N: only one deploy can create it), then every node's
# router loads CONFIG (dpl_swarm_router_push); the two newest tables are kept
dpl_swarm_router_load() {
  local newest current old err=''
  newest=$(dpl_swarm_routes_newest) || return 1
  if [ -n "$newest" ]; then
    current=$(docker config inspect --format '{{printf "%s" .Spec.Data}}' "deployer-routes-$newest") || return 1
  else
    case "$2" in *'"domain"'*) current=none ;; *) current=$(printf '%s' "$2") ;; esac  # (none held: no route)
  fi
  if [ "$current" = "$(printf '%s' "$2")" ]; then
    err=$(printf '%s' "$3" | docker config create --label "deployer.routes=$((newest + 1))" \
      "deployer-routes-$((newest + 1))" - 2>&1 >/dev/null) && err=ok
  fi
  case "$err" in
    ok) ;;
    "" | *"already exists"*)
      echo "deployer: the swarm's routes changed while this deploy ran (another deploy changed them): no route changed; run it again" >&2
      return 1 ;;
    *) echo "deployer: cannot keep the swarm's route table: $err" >&2; return 1 ;;
  esac
  for old in $(docker config ls --filter label=deployer.routes --format '{{.Name}}'); do
    if [ "${old#deployer-routes-}" -lt "${newest:-0}" ]; then docker config rm "$old" >/dev/null || return 1; fi
  done
  dpl_swarm_router_push "$1" "$4" "$5"
}

# dpl_swarm_router_push LIMIT CONFIG IMAGE: every node's router loads CONFIG: a global job
# (IMAGE's caddy reload, on the admin socket in the node's router volume; a task that
# fails, its router not up yet, is started again) whose task completed on every node it
# runs on, within LIMIT seconds; else the nodes where it did not, and why
dpl_swarm_router_push() {
  local name code
  for name in $(docker config ls --filter label=deployer.router=load --format '{{.Name}}'); do
    docker config rm "$name" >/dev/null 2>&1  # (what an earlier push could not remove)
  done
  name="deployer-router-load-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s' "$2" | docker config create --label deployer.router=load "$name" - >/dev/null || return 1
  docker service create --detach --quiet --no-resolve-image --mode global-job --name "$name" \
    --label deployer.router=load --restart-delay 1s --mount type=volume,source=deployer-router,target=/deployer \
    --config "source=$name,target=/caddy.json" "$3" caddy reload --config /caddy.json --address unix//deployer/admin.sock \
    >/dev/null || return 1
  dpl_swarm_wait "$1" dpl_swarm_loaded "$name"
  code=$?
  if [ "$code" != 0 ]; then
    echo "deployer: the router did not load its routes on every node within $1 s: not on" \
      "$(docker service ps --no-trunc --format '{{.Node}} {{.CurrentState}} {{.Error}}' "$name" | awk '
        $2 == "Complete" { done[$1] = 1 } { if (!($1 in why)) why[$1] = $0 }
        END { for (n in why) if (!(n in done)) printf "%s; ", why[n] }')" >&2
  fi
  docker service rm "$name" >/dev/null 2>&1
  docker config rm "$name" >/dev/null 2>&1
  return "$code"
}

# dpl_swarm_loaded NAME: a check (dpl_swarm_wait) that job NAME's task completed on every
# node it has one on (a task not placed yet, its node blank, is a node whose task has not)
dpl_swarm_loaded() {
  local tasks
  tasks=$(docker service ps --format '{{.Node}} {{.CurrentState}}' "$1") || return 2
  [ -n "$tasks" ] && printf '%s\n' "$tasks" | awk '{ seen[$1] = 1 } $2 == "Complete" { done[$1] = 1 }
    END { for (node in seen) if (!(node in done)) exit 1 }'
}

# dpl_swarm_routed: the routed services, a line each: NAME REPLICAS (running/wanted), marked `states`
dpl_swarm_routed() {
  dpl_mark states
  docker service ls --filter label=deployer.route --format '{{.Name}} {{.Replicas}}'
}

# shellcheck shell=sh
# Networks: each instance's private network and its services' networks (model/network.py
# names them), made when a deploy or a build first needs them, made anew when the engine
# lost one, removed with the instance; a container joining several of them.

# dpl_created [--dpl-join NETWORK=ALIAS]... CREATE-ARGS...: docker create, then the container
# joins each NETWORK (under ALIAS, if any) before anything starts it, so it never runs
# without them (docker run takes one network before API 1.44); prints its id. One that
# cannot join is removed again.
dpl_created() {
  local joins='' join id
  while [ "$1" = --dpl-join ]; do joins="$joins $2"; shift 2; done
  id=$(docker create "$@") || return 1
  for join in $joins; do
    if [ -n "${join#*=}" ]; then
      set -- --alias "${join#*=}" "${join%%=*}"
    else
      set -- "${join%%=*}"
    fi
    docker network connect "$@" "$id" >&2 || { docker rm -f "$id" >/dev/null 2>&1; return 1; }
  done
  printf '%s\n' "$id"
}

# dpl_renew NETWORK: one of deployer's networks made anew, the containers on it connected
# again under the same aliases. An engine stopped at the wrong moment can come back with a
# network it lists but cannot attach anything to ("failed to create endpoint X on network
# N: network ID not found", a known Docker fault): removing it and creating it again is the
# cure. Its label names its instance, as network.create_args gives it; a network that is
# not deployer's is left alone (1).
dpl_renew() {
  local owner id joined='' entry
  owner=$(docker network inspect --format '{{index .Labels "deployer.instance"}}' "$1" 2>/dev/null) && [ -n "$owner" ] || return 1
  echo "deployer: the engine lost network $1 (an unclean restart?): making it anew" >&2
  for id in $(docker ps -aq --filter "network=$1"); do
    joined="$joined $id=$(docker container inspect --format "{{with index .NetworkSettings.Networks \"$1\"}}{{join .Aliases \",\"}}{{end}}" "$id")"
    docker network disconnect -f "$1" "$id" >/dev/null 2>&1
  done
  docker network rm "$1" >/dev/null && dpl_network --label "deployer.instance=$owner" "$1" || return 1
  for entry in $joined; do
    # shellcheck disable=SC2046 # the aliases (deployer's: no blanks), one --alias each
    docker network connect $(printf '%s' "${entry#*=}" | tr ',' '\n' | sed 's/^/--alias /') "$1" "${entry%%=*}" || return 1
  done
}

# dpl_network CREATE-ARGS... NAME: docker network create, unless it exists (another
# instance's deploy may have created it meanwhile). Once Docker's own address pools are
# used up (about 30 bridge networks on a default engine), it takes a subnet of DPL_SUBNETS.
dpl_network() {
  local name err
  for name in "$@"; do :; done
  err=$(docker network create "$@" 2>&1 >/dev/null) || docker network inspect "$name" >/dev/null 2>&1 \
    || case "$err" in
      *"could not find an available"*) dpl_subnet "$@" ;;
      *) echo "deployer: cannot create network $name: $err" >&2; return 1 ;;
    esac
}

# dpl_subnet CREATE-ARGS... NAME: docker network create on the first /24 of DPL_SUBNETS (a
# /16, the setting deployer.subnets) that no network has and no route of the host's goes
# into (as Docker checks its own pools; one taken meanwhile: the next)
dpl_subnet() {
  local base="${DPL_SUBNETS%.0.0/16}" name used n=0 err
  for name in "$@"; do :; done
  # shellcheck disable=SC2046 # network ids, one a word
  used=" $(docker network inspect --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' $(docker network ls -q)
    ip -4 route show 2>/dev/null | cut -d ' ' -f 1) "
  used=$(printf '%s' "$used" | tr '\n' ' ')
  while [ "$n" -lt 256 ]; do
    case "$used" in *" $base.$n."*) ;; *)
      err=$(docker network create --subnet "$base.$n.0/24" "$@" 2>&1 >/dev/null) && return 0
      case "$err" in *overlap*) ;; *) docker network inspect "$name" >/dev/null 2>&1 && return 0; break ;; esac ;;
    esac
    n=$((n + 1))
  done
  echo "deployer: cannot create network $name: Docker's address pools and deployer.subnets ($DPL_SUBNETS) are used up${err:+: $err}" >&2
  return 1
}

# dpl_networks_rm: remove instance $I's networks, after disconnecting what still joins them
# (its one-offs; other instances' consumers of its endpoints, which lose them with it)
dpl_networks_rm() {
  local network id
  for network in $(docker network ls -q --filter "label=deployer.instance=$I"); do
    for id in $(docker network inspect --format '{{range $id, $c := .Containers}}{{$id}} {{end}}' "$network"); do
      docker network disconnect -f "$network" "$id" >/dev/null 2>&1
    done
    docker network rm "$network" >/dev/null || return 1
  done
}

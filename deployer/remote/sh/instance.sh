# shellcheck shell=sh
# What is done to instance $I as a whole, each one script: read what the host keeps of it,
# prune, control, destroy.

# dpl_instances: every instance's state file
dpl_instances() {
  local file
  for file in "$S"/instances/*/state.json; do
    if [ -f "$file" ]; then
      dpl_mark "file $file"
      cat "$file" || return 1
    fi
  done
  return 0
}

# dpl_history: the roots, the instance's history.jsonl (nothing if it has none), and the
# templates its releases name
dpl_history() {
  local file
  dpl_mark roots
  echo "$S"
  dpl_mark history
  if [ -f "$D/history.jsonl" ]; then cat "$D/history.jsonl" || return 1; fi
  for file in "$D"/templates/*.yaml; do
    if [ -f "$file" ]; then
      dpl_mark "template ${file##*/}"
      cat "$file" || return 1
    fi
  done
  return 0
}

# dpl_stored: the template the instance was last deployed from, and its state
dpl_stored() {
  dpl_mark roots
  echo "$S"
  dpl_mark template
  if [ -f "$D/template.yaml" ]; then cat "$D/template.yaml" || return 1; else dpl_mark missing; fi
  if [ -f "$D/state.json" ]; then
    dpl_mark state
    cat "$D/state.json" || return 1
  fi
  return 0
}

# dpl_prune: remove the retained containers (any not named <instance>.<service>; stopped
# first, should one run), then the images built for the instance that no container uses;
# says what went
dpl_prune() {
  local names entry old='' image unused
  names=$(docker ps -a --filter "label=deployer.instance=$I" --format '{{.Names}}|{{.Label "deployer.service"}}') || return 1
  for entry in $names; do
    if [ "${entry%%|*}" != "$I.${entry#*|}" ]; then old="$old ${entry%%|*}"; fi
  done
  # shellcheck disable=SC2086 # old: one container name a word
  if [ -n "$old" ]; then dpl_remove $old || return 1; fi
  unused=$(dpl_unused) || return 1
  dpl_mark pruned
  for entry in $old; do echo "$entry"; done
  dpl_mark images
  for image in $unused; do docker rmi "$image" >/dev/null 2>&1 && echo "$image"; done
  return 0
}

# dpl_destroy VOLUMES WAIT WHO [SEEN TABLE CONFIG]: stop and remove the instance's containers, remove its networks, built images
# and state (and its volumes, VOLUMES=1: its directory and the named volumes of a volume_driver), after its endpoints' keys in etcd, when it registered any, and its routes (the route
# table SEEN becomes TABLE: dpl_router_swap), under the lock (dpl_lock DIR WAIT WHO); marks `missing` when the host knows no such
# instance (with VOLUMES: nor any volumes of it)
dpl_destroy() {
  local ids images forget networks volumes=''
  ids=$(docker ps -aq --filter "label=deployer.instance=$I") || return 1
  networks=$(docker network ls -q --filter "label=deployer.instance=$I") || return 1
  if [ "$1" = 1 ]; then volumes=$(docker volume ls -q --filter "label=deployer.instance=$I") || return 1; fi
  if [ -z "$ids$networks$volumes" ] && [ ! -d "$D" ] && { [ "$1" != 1 ] || [ ! -d "$V/$I" ]; }; then
    dpl_mark missing
    return 0
  fi
  dpl_lock "$D" "$2" "$3" || return 1
  if [ -f "$D/etcd" ]; then  # its endpoints go first: nothing is removed if etcd is away
    # shellcheck disable=SC2034 # E: the URLs dpl_etcd tries
    { read -r E; read -r forget; } <"$D/etcd" && dpl_etcd deleterange "$forget" >/dev/null || return 1
  fi
  if [ $# -gt 3 ]; then dpl_router_swap "$2" "$4" "$5" "$6" || return 1; fi  # its domains answer 404 from now on
  ids=$(docker ps -aq --filter "label=deployer.instance=$I") || return 1
  # shellcheck disable=SC2086 # ids: one container id a word
  if [ -n "$ids" ]; then dpl_remove $ids || return 1; fi
  dpl_networks_rm || return 1
  images=$(dpl_unused) || return 1
  # shellcheck disable=SC2086 # images: one reference a word
  if [ -n "$images" ]; then docker rmi $images >/dev/null 2>&1; fi  # one a container made meanwhile uses stays
  rm -rf -- "$D" || return 1
  # shellcheck disable=SC2086 # volumes (listed above with VOLUMES=1): one name a word
  if [ -n "$volumes" ]; then docker volume rm $volumes >/dev/null || return 1; fi
  if [ "$1" = 1 ]; then rm -rf -- "${V:?}/$I" || return 1; fi
  return 0
}


# shellcheck shell=sh
# Endpoints: what allocating them needs, and etcd (the backend across hosts).

# dpl_discovery_facts: the other instances' states and the TCP ports listening on the host
# (what allocating endpoints needs besides this instance's own state)
dpl_discovery_facts() {
  local file
  for file in "$S"/instances/*/state.json; do
    if [ -f "$file" ] && [ "$file" != "$S/instances/$I/state.json" ]; then
      dpl_mark "other $file"
      cat "$file" || return 1
    fi
  done
  dpl_mark listening
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
  return 0
}

# dpl_etcd PATH BODY: an etcd v3 JSON request from this host (the first of the URLs in $E
# that answers), its answer on stdout
dpl_etcd() {
  local url answer=
  command -v curl >/dev/null || { echo "deployer: the etcd backend needs curl on this host, to reach etcd" >&2; return 1; }
  for url in $E; do
    if answer=$(curl -sS --fail --max-time 10 -X POST "$url/v3/kv/$1" -d "$2" 2>&1); then
      printf '%s\n' "$answer"
      return 0
    fi
  done
  echo "deployer: etcd is not reachable from this host at $E ($answer)" >&2
  return 1
}

# dpl_address TARGET: where other hosts reach this one: $DEPLOYER_ADDRESS, else the source
# address of this host's route toward TARGET (etcd, or the default route)
dpl_address() {
  local address
  address=${DEPLOYER_ADDRESS:-$(ip -o -4 route get "$1" 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')}
  [ -n "$address" ] || { echo "deployer: cannot tell this host's address for etcd: set DEPLOYER_ADDRESS in its environment" >&2; return 1; }
  echo "$address"
}

# dpl_etcd_facts TARGET RANGE: this host's id (made once), its address and the registry
dpl_etcd_facts() {
  [ -s "$S/id" ] || { mkdir -p "$S" && cat /proc/sys/kernel/random/uuid >"$S/id.$$" && mv -n "$S/id.$$" "$S/id"; } || return 1
  dpl_mark host-id
  cat "$S/id" || return 1
  dpl_mark address
  dpl_address "$1" || return 1
  dpl_mark registry
  dpl_etcd range "$2"
}

# dpl_register FORGET TRANSACTION: run the etcd transaction, after keeping in the
# instance's directory what destroy needs to remove its keys
dpl_register() {
  dpl_put "$D/etcd" "$1" || return 1
  dpl_etcd txn "$2" >/dev/null
}

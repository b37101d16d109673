# shellcheck shell=sh
# The functions every host script may use (scripts.py puts them before its body).
# Script-wide constants, set once before anything runs: B (this script's boundary),
# S and V (the state and volume roots, below); an instance's scripts add I (the
# instance) and D (its directory). Everything else a function needs is an argument,
# and what it keeps is local.

# dpl_mark WORD...: a line for the client on stdout, after the boundary
dpl_mark() { printf '%s %s\n' "$B" "$*"; }

# dpl_note KIND FIELD...: a record for the client on fd 4, the script's own stderr whatever
# a function redirected: a header with each field's length, then the fields, each ending
# with NUL, so any value arrives intact, or is seen to be cut by other output (notes.py)
dpl_note() {
  local header="$B $1 $(($# - 1))" field
  shift
  for field; do header="$header ${#field}"; done
  printf '%s\0' "$header" "$@" >&4
}

# dpl_now: a timestamp for the step marks
dpl_now() { date +%s.%N; }

# dpl_seconds T0 T1: the seconds between two dpl_now stamps, as a JSON number
dpl_seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# dpl_trace KIND FIELD...: with -v a note (verbose.sh), else nothing
dpl_trace() { :; }

# docker ARG...: every docker command of a script (-v notes it), given DPL_DOCKER_TIMEOUT
# seconds: a frozen engine ends the script, and with it the instance's lock, instead of
# holding both forever. (`timeout` runs the docker program, not this function.)
docker() {
  local code
  dpl_trace run docker "$@"
  timeout "$DPL_DOCKER_TIMEOUT" docker "$@"
  code=$?
  if [ "$code" = 124 ]; then
    echo "deployer: the Docker engine did not answer within $DPL_DOCKER_TIMEOUT s (docker $1): is it frozen?" >&2
  fi
  return "$code"
}

# dpl_docker_long ARG...: a docker command that may take long (a build, a pull): no timeout
dpl_docker_long() {
  dpl_trace run docker "$@"
  command docker "$@"
}

# dpl_at_exit COMMAND: run COMMAND when the script ends, however it ends (and those given before)
dpl_exits=
dpl_at_exit() {
  dpl_exits="$dpl_exits
$1"
  trap 'eval "$dpl_exits"' EXIT
}

# The roots: DEPLOYER_STATE_DIR / DEPLOYER_VOLUME_DIR in the host's environment, else the
# settings (cfg_*), else the defaults for root and for anyone else
if [ "$(id -u)" = 0 ]; then S=/var/lib/deployer V=/srv/deployer/volumes
else S=${XDG_STATE_HOME:-$HOME/.local/state}/deployer V=${XDG_STATE_HOME:-$HOME/.local/state}/deployer/volumes; fi
S=${DEPLOYER_STATE_DIR:-${cfg_state_dir:-$S}} V=${DEPLOYER_VOLUME_DIR:-${cfg_volume_dir:-$V}}

# dpl_put FILE CONTENT: atomic write (temp, fsync, rename), mode 0600, the previous file kept as FILE.prev
dpl_put() {
  local tmp="$1.tmp.$$"
  dpl_trace put "$1" "${#2}"
  if (umask 077 && printf '%s' "$2" >"$tmp") && { sync "$tmp" 2>/dev/null || sync; }; then
    if [ -f "$1" ]; then ln -f "$1" "$1.prev"; fi
    mv -f "$tmp" "$1" && return 0
  fi
  rm -f "$tmp"
  echo "deployer: could not write $1" >&2
  return 1
}

# dpl_lock DIR WAIT WHO: hold DIR/lock (flock, fd 9) until this script's process ends,
# however it ends; a second deployer waits up to WAIT seconds, then names the holder.
# While waiting it writes a line a second: once its client is gone, that write kills it
# (SIGPIPE), so a killed client never leaves a waiter behind to take the lock later.
# An instance that has no state when the script ends (its first deploy failed, or there
# was no such instance) keeps no lock files (dpl_unlocked); so a lock taken on a file
# removed meanwhile is none, and is taken again on the file there now.
dpl_lock() {
  local waited=0 held inodes
  # shellcheck disable=SC2034 # script-wide: read when the exit trap runs
  dpl_locked=$1
  # shellcheck disable=SC2016 # expanded when the exit trap runs
  dpl_at_exit 'dpl_unlocked "$dpl_locked"'
  while :; do
    mkdir -p "$1" && chmod 700 "$1" && exec 9>>"$1/lock" || return 1
    while ! flock -n 9; do
      if [ "$waited" -ge "$2" ]; then
        echo "deployer: locked by $(cat "$1/lock.info" 2>/dev/null || echo '?') (waited $2 s; --lock-wait waits longer)" >&2
        return 1
      fi
      read -r held 2>/dev/null <"$1/lock.info" || held='?'
      dpl_mark waiting "$waited" "${1##*/}" "$held"
      if flock -w 1 9; then break; fi
      waited=$((waited + 1))
    done
    inodes=$(stat -L -c %i /dev/fd/9 "$1/lock" 2>/dev/null) && [ "${inodes%%[!0-9]*}" = "${inodes##*[!0-9]}" ] && break
  done
  printf '%s since %s\n' "$3" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$1/lock.info"
}

# dpl_unlocked DIR: at the end of a script that locked DIR, the lock files go (and DIR, if
# nothing else is in it) unless the instance has a state: no `lock` is left of a first
# deploy that failed, or of a task given an instance the host does not have
dpl_unlocked() {
  if [ ! -f "$1/state.json" ]; then
    rm -f "$1/lock" "$1/lock.info"
    rmdir "$1" 2>/dev/null
  fi
  return 0
}

# dpl_inspect INSTANCE REF...: ONE docker call describing the instance's containers and the
# given images (those on the host), as one JSON array
dpl_inspect() {
  local instance="$1" ids out
  shift
  ids=$(docker ps -aq --no-trunc --filter "label=deployer.instance=$instance") || return 1
  if [ -z "$ids" ] && [ $# -eq 0 ]; then echo '[]'; return 0; fi
  # shellcheck disable=SC2086 # ids: one container id a word
  out=$(docker inspect $ids "$@" 2>/dev/null)  # exits 1 when an image is missing: still JSON
  printf '%s\n' "${out:-[]}"
}

# dpl_remove CONTAINER...: stop the containers, then remove them. `docker stop` gives each
# its own stop signal and stop timeout (stop_timeout), so a database writes what it writes at
# shutdown (Redis its dump, PostgreSQL its checkpoint) instead of being killed
dpl_remove() {
  docker stop "$@" >/dev/null 2>&1  # one already gone, or stopped, is no reason not to remove the rest
  docker rm -f "$@" >/dev/null
}

# dpl_unused: the tags of the images deployer built for instance $I (labelled so, in its
# repository: an image built FROM one of them inherits the label, not the name) whose image
# no container on the host uses, running or not, of any instance. A tag's image id is what
# counts, not the tag: with two tags on one id (a revert builds the same image again), `docker
# rmi TAG` would only untag, even the tag a running container was created from. (Asked twice
# when a container goes meanwhile: an unknown answer removes nothing.)
dpl_unused() {
  local ids used='' tries=0 tag id
  while :; do
    ids=$(docker ps -aq --no-trunc) || return 1
    if [ -z "$ids" ]; then break; fi
    # shellcheck disable=SC2086 # ids: one container id a word
    used=$(docker inspect --format '{{.Image}}' $ids 2>/dev/null) && break
    tries=$((tries + 1))
    if [ "$tries" = 2 ]; then echo "deployer: cannot tell which images the host's containers use" >&2; return 1; fi
  done
  # shellcheck disable=SC2086 # used: one image id a line, made one line of words
  used=" $(printf '%s ' $used)"
  docker images --no-trunc --filter "label=deployer.instance=$I" --format '{{.Repository}}:{{.Tag}} {{.ID}}' | {
    while read -r tag id; do
      case "$tag" in deployer/*) ;; *) continue ;; esac
      case "$used" in *" $id "*) ;; *) echo "$tag" ;; esac
    done
  }
}

# dpl_pull IMAGE: docker pull, saying so first; on failure, docker's reason
dpl_pull() {
  local err
  dpl_mark pulling "$1"
  err=$(dpl_docker_long pull -q "$1" 2>&1 >/dev/null) || { echo "deployer: cannot pull $1: $err" >&2; return 1; }
}

# dpl_keep_template SHA TEXT: the template of a release, kept once by its hash in $D/templates
dpl_keep_template() {
  mkdir -p "$D/templates" || return 1
  [ -f "$D/templates/$1.yaml" ] || dpl_put "$D/templates/$1.yaml" "$2"
}

# dpl_trim_history KEEP: $D/history.jsonl keeps its newest KEEP releases, and
# $D/templates the templates they name
dpl_trim_history() {
  local file sha
  [ "$(wc -l <"$D/history.jsonl")" -gt "$1" ] || return 0
  (umask 077 && tail -n "$1" "$D/history.jsonl" >"$D/history.jsonl.tmp.$$" && mv -f "$D/history.jsonl.tmp.$$" "$D/history.jsonl") || return 1
  for file in "$D"/templates/*.yaml; do
    [ -f "$file" ] || continue
    sha=${file##*/}
    sha=${sha%.yaml}
    grep -q "\"template_sha256\":\"$sha\"" "$D/history.jsonl" || rm -f "$file"
  done
}

#!/bin/sh
# A stand-in for `docker` in the shell unit tests: stubdocker.py installs it as bin/docker
# in a directory of its own (TOP), sets it up and reads what it recorded. It keeps its
# state in files under TOP, so a test sees, and can prepare, everything:
#
#   calls             every call, appended: its number of arguments, then each argument,
#                     each ending with NUL (any value, line breaks too, arrives intact)
#   rules             one rule a line, the newest first: NUMBER<TAB>NTH<TAB>EXIT<TAB>PATTERN.
#                     The first rule whose PATTERN (a shell glob) matches the arguments
#                     joined by spaces, on its NTH match (0: every one), answers the call:
#                     it prints out/NUMBER and err/NUMBER (if any) and exits EXIT, and
#                     nothing else happens
#   containers/NAME   "ID STATUS" (running or exited) of each container docker has
#   states/NAME       what `container inspect --format ...` answers about NAME, a line a
#                     call, the last one for ever (else "STATUS 0 ": dpl_started's format
#                     of a container running well, or exited)
#   logs/NAME         what `docker logs` prints about NAME
#   env/ID            the env file `run --env-file FILE` was given for container ID
#   stdin/KIND-NAME   what `secret create NAME -` (KIND secret) or `config create NAME -` read
#
# Without a rule, run / create / rename / start / stop / restart / rm / container inspect act on
# containers/ as docker does (a name is unique, a missing container is an error, except to
# rm -f); a run without --name (a one-off, --rm) ends at once, leaving nothing (created, it is
# named by its id until started); a build given - reads its context from stdin; ps prints
# nothing, inspect `[]`, and anything else succeeds saying nothing.
# Calls are handled one at a time (a flock), so concurrent calls (jobs in the background)
# each see the last one's outcome.

set -u
top=${0%/bin/docker}
exec 6>>"$top/lock" && flock 6
printf '%s\0' "$#" "$@" >>"$top/calls"

# count COUNTER: one more than the counter's last value (0), kept, in $n
count() {
  n=0
  if [ -f "$top/$1" ]; then read -r n <"$top/$1"; fi
  n=$((n + 1))
  echo "$n" >"$top/$1"
}

tab='	'
if [ -f "$top/rules" ]; then
  while IFS=$tab read -r number nth code pattern; do
    # shellcheck disable=SC2254 # the rule's pattern is a glob
    case "$*" in $pattern) ;; *) continue ;; esac
    count "count.$number"
    if [ "$n" = "$nth" ] || [ "$nth" = 0 ]; then
      if [ -f "$top/out/$number" ]; then cat "$top/out/$number"; fi
      if [ -f "$top/err/$number" ]; then cat "$top/err/$number" >&2; fi
      exit "$code"
    fi
  done <"$top/rules"
fi

has() { [ -f "$top/containers/$1" ]; }
no_such() { echo "Error response from daemon: No such container: $1" >&2; return 1; }
in_use() { echo "Error response from daemon: Conflict. The container name \"/$1\" is already in use." >&2; return 1; }

# named REF: the name of the container REF names (by name or id)
named() {
  local file id
  if has "$1"; then echo "$1"; return 0; fi
  for file in "$top"/containers/*; do
    if [ -f "$file" ] && read -r id _ <"$file" && [ "$id" = "$1" ]; then echo "${file##*/}"; return 0; fi
  done
  return 1
}

# status NAME STATUS: the container NAME is now STATUS
status() {
  local id
  read -r id _ <"$top/containers/$1" && echo "$id $2" >"$top/containers/$1"
}

# inspected NAME: the next answer about NAME to `container inspect --format ...`
inspected() {
  local id now
  if [ -f "$top/states/$1" ]; then
    head -n 1 "$top/states/$1"
    if [ "$(wc -l <"$top/states/$1")" -gt 1 ]; then sed -i 1d "$top/states/$1"; fi
  else
    read -r id now <"$top/containers/$1" && echo "$now 0 "
  fi
}

case "$1" in
  run | create)
    name='' env_file='' option=''
    for arg; do
      case "$option" in --name) name=$arg ;; --env-file) env_file=$arg ;; esac
      option=$arg
    done
    if [ -z "$name" ] && [ "$1" = run ]; then exit 0; fi
    if [ -n "$name" ] && has "$name"; then in_use "$name"; exit 125; fi
    count runs
    id="new$n" name=${name:-new$n}
    if [ -n "$env_file" ]; then cat "$env_file" >"$top/env/$id" || exit 125; fi
    if [ "$1" = run ]; then echo "$id running" >"$top/containers/$name"; else echo "$id created" >"$top/containers/$name"; fi
    echo "$id"
    ;;
  rename)
    has "$2" || no_such "$2" || exit 1
    ! has "$3" || in_use "$3" || exit 1
    mv "$top/containers/$2" "$top/containers/$3"
    ;;
  start | stop | restart)
    verb=$1 code=0 ran=running
    shift
    for ref; do
      case "$ref" in -a) ran=exited; continue ;; -*) continue ;; esac  # (attached: it ran to its end)
      if name=$(named "$ref"); then
        if [ "$verb" = stop ]; then status "$name" exited; else status "$name" "$ran"; fi
        echo "$ref"
      else
        no_such "$ref" || code=1
      fi
    done
    exit "$code"
    ;;
  rm)
    shift
    force=''
    if [ "${1-}" = -f ]; then force=1 && shift; fi
    code=0
    for ref; do
      if name=$(named "$ref"); then
        rm "$top/containers/$name" && echo "$ref"
      elif [ -z "$force" ]; then
        no_such "$ref" || code=1
      fi
    done
    exit "$code"
    ;;
  container)
    [ "$2" = inspect ] || exit 0
    eval "name=\${$#}"
    has "$name" || { echo "Error: No such container: $name" >&2; exit 1; }
    if [ "$3" = --format ]; then inspected "$name"; else echo '[{}]'; fi
    ;;
  logs)
    eval "name=\${$#}"
    if [ -f "$top/logs/$name" ]; then cat "$top/logs/$name"; fi
    ;;
  build)  # given -, the context on stdin, read to its end as docker does
    for last; do :; done
    if [ "$last" = - ]; then cat >/dev/null; fi
    ;;
  inspect) echo '[]' ;;
  secret | config)
    case "$2 $*" in "create "*" -") eval "name=\${$(($# - 1))}" && cat >"$top/stdin/$1-$name" ;; esac
    ;;
esac
exit 0

# shellcheck shell=sh
# One-offs on a swarm (deployer/swarm/): a job of one task of a service's spec, a release
# command in a deploy's script (swarm.sh, dpl_swarm_release) or `run`, whose command carries
# this file alone (manager.py); and the wait every step of the Swarm engine polls with.
# Needs no other source: a job's output reaches what shows it as a function it names.

# dpl_swarm_wait LIMIT CHECK ARG...: CHECK ARG... four times a second until it returns 0 (done)
# or 2 (failed, having said why), for LIMIT seconds of pauses at most; 1 when time ran out.
# A quarter of a second: a step is seen done that much after Swarm says so (a second was
# half a second on average, of every new service's wait), at one docker call a check
dpl_swarm_wait() {
  local tries=$(($1 * 4)) code
  shift
  while [ "$tries" -gt 0 ]; do
    "$@"
    code=$?
    if [ "$code" != 1 ]; then return "$code"; fi
    sleep 0.25
    tries=$((tries - 1))
  done
  return 1
}

# dpl_swarm_job NAME LIMIT SHOW ARG...: a one-off as a job of one task, docker service create
# ARG... named NAME_<hex> (in dpl_swarm_one_off until it is removed, for an exit trap), its
# output shown as it comes (SHOW: a function and its words, called with the job's name at each
# check: dpl_swarm_shown), until its task ended, LIMIT seconds of pauses at most (a little more
# for docker's answers; 0: no limit); then removed. 0: it ended, its exit code in dpl_swarm_code; 1: its task could not run (why in
# dpl_swarm_error: no such image, no node suits); 2: stopped at LIMIT (dpl_swarm_code 124, as
# timeout(1) says). A job is what Swarm runs to its end once: a task of a service would be
# started again
dpl_swarm_job() {
  local limit="$2" show="$3" err code
  dpl_swarm_one_off="$1_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  dpl_swarm_code='' dpl_swarm_error='' dpl_swarm_output='' dpl_swarm_seen=0 dpl_swarm_seen_err=0
  shift 3
  if ! err=$(docker service create --name "$dpl_swarm_one_off" "$@" 2>&1 >/dev/null); then
    dpl_swarm_one_off='' dpl_swarm_error=$err
    return 1
  fi
  if [ "$limit" = 0 ]; then limit=2147483647; fi
  # shellcheck disable=SC2086 # SHOW: a function and its words
  dpl_swarm_wait "$limit" dpl_swarm_ran "$dpl_swarm_one_off" $show
  code=$?
  case "$code" in
    0) dpl_swarm_code=$(docker inspect --type task --format '{{.Status.ContainerStatus.ExitCode}}' "$dpl_swarm_task")
      if [ -z "$dpl_swarm_code" ]; then dpl_swarm_code=1; fi ;;
    1) dpl_swarm_code=124 code=2 ;;
    *) code=1 ;;
  esac
  docker service rm "$dpl_swarm_one_off" >/dev/null 2>&1
  dpl_swarm_one_off=''
  return "$code"
}

# dpl_swarm_ran NAME SHOW...: a check (dpl_swarm_wait) that job NAME's task ended (its id in
# dpl_swarm_task), once SHOW... NAME showed what it printed so far (read after its state, so
# all of it once it ended); 2 when it cannot run or end: rejected, pending for a reason, shut
# down by Swarm (its error, else its state, in dpl_swarm_error)
dpl_swarm_ran() {
  local name="$1" state
  shift
  IFS='|' read -r dpl_swarm_task state dpl_swarm_error <<EOT
$(docker service ps --no-trunc --format '{{.ID}}|{{.CurrentState}}|{{.Error}}' "$name" 2>/dev/null | head -n 1)
EOT
  dpl_swarm_error=${dpl_swarm_error#\"} && dpl_swarm_error=${dpl_swarm_error%\"}
  "$@" "$name"
  case "$state" in
    Complete* | Failed*) return 0 ;;
    Rejected* | Shutdown* | Orphaned* | Remove*) dpl_swarm_error=${dpl_swarm_error:-$state} && return 2 ;;
    Pending*) if [ -n "$dpl_swarm_error" ]; then return 2; fi ;;
  esac
  return 1
}

# dpl_swarm_shown STREAM NAME SEEN SHOW...: the lines job NAME printed on STREAM (out, err, or
# all: both; docker service logs, from its task's node) but the first SEEN, given to SHOW... on
# its stdin; how many lines it printed in dpl_swarm_lines, all of them in dpl_swarm_output. A
# task's log holds whole lines until it ends, so a line is never given in two parts
dpl_swarm_shown() {
  local stream="$1" name="$2" seen="$3" out
  shift 3
  dpl_swarm_lines=$seen
  case "$stream" in
    out) out=$(docker service logs --raw "$name" 2>/dev/null) ;;
    err) out=$(docker service logs --raw "$name" 2>&1 >/dev/null) ;;
    *) out=$(docker service logs --raw "$name" 2>&1) ;;
  esac || return 0
  if [ -z "$out" ]; then return 0; fi
  # shellcheck disable=SC2034 # dpl_swarm_output: read by dpl_swarm_release (swarm.sh)
  dpl_swarm_output=$out dpl_swarm_lines=$(($(printf '%s\n' "$out" | wc -l)))
  printf '%s\n' "$out" | tail -n "+$((seen + 1))" | "$@"
}

# dpl_swarm_printed NAME: the lines job NAME printed that were not printed yet, its stdout's on
# stdout, its stderr's on stderr (`run`)
dpl_swarm_printed() {
  dpl_swarm_shown out "$1" "$dpl_swarm_seen" cat
  dpl_swarm_seen=$dpl_swarm_lines
  dpl_swarm_shown err "$1" "$dpl_swarm_seen_err" dpl_swarm_stderr
  dpl_swarm_seen_err=$dpl_swarm_lines
}

# dpl_swarm_stderr: stdin to stderr
dpl_swarm_stderr() { cat >&2; }

# dpl_swarm_run NAME ARG...: `run` on a swarm, a job (dpl_swarm_job NAME 0 ...) whose output is
# printed as it comes; its exit code is this shell's (125 when it could not run, as docker run
# says). It is removed when it ended, or when this shell ends first: told to (the client's
# Ctrl-C reaches it, or tied.sh tells it that the client went), or killed but for SIGKILL
dpl_swarm_run() {
  local name="$1"
  shift
  # shellcheck disable=SC2016 # expanded when the trap runs
  trap 'if [ -n "$dpl_swarm_one_off" ]; then docker service rm "$dpl_swarm_one_off" >/dev/null 2>&1; fi' EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 141' PIPE  # a write to the gone client's channel, which may come before tied.sh's TERM
  if ! dpl_swarm_job "$name" 0 dpl_swarm_printed "$@"; then
    echo "deployer: the one-off could not run: $dpl_swarm_error" >&2
    exit 125
  fi
  exit "$dpl_swarm_code"
}

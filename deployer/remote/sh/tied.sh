# shellcheck shell=sh
# dpl_tied WATCH COMMAND...: run COMMAND (an attached command without a terminal: logs,
# run, exec) in a session of its own, ended with everything it started once its client is
# gone, so nothing is left running on the host. WATCH says how that is seen: `stdin` (the
# command reads none) when stdin sends anything (Ctrl-C sends a byte) or ends (the
# connection closed); `parent` (stdin is the command's) when this shell's parent (sshd's
# session, or the local deployer) is gone. A terminal needs none of this: its hang-up
# ends the command.
dpl_tied() {
  local watch="$1" pid watcher code
  shift
  exec 7<&0
  if [ "$watch" = stdin ]; then
    setsid "$@" </dev/null &
    pid=$!
    (dd bs=1 count=1 >/dev/null 2>&1; kill -TERM "-$pid" 2>/dev/null) <&7 &
  else
    setsid "$@" <&7 &
    pid=$!
    (while kill -0 "$PPID" 2>/dev/null; do sleep 1; done; kill -TERM "-$pid" 2>/dev/null) &
  fi
  watcher=$!
  exec 7<&-
  wait "$pid"
  code=$?
  kill "$watcher" 2>/dev/null
  return "$code"
}

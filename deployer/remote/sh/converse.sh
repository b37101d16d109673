# shellcheck shell=sh
# The second turn of a deploy: run the plan the client sends on fd 3 (its size in bytes, a
# line, then the plan), unless the client sent nothing or went away before its last line
# arrived. From here on the script finishes even if the connection drops, so state always
# ends up describing what runs. The plan runs in a subshell, so that its `exit 1` ends the
# plan, not the script: the script marks `ran EXIT`, then holds the instance's lock until
# the client closes its end, so what the client does then (its post-deploy hook) happens
# before any other deploy of the instance can start. A client gone closes it too.
read -r dpl_size <&3 || exit 0
case "$dpl_size" in "" | *[!0-9]*) exit 0 ;; esac
dpl_plan=$(head -c "$dpl_size" <&3)
case "$dpl_plan" in *"$B end") ;; *) exit 0 ;; esac
trap '' HUP PIPE
(eval "$dpl_plan")
dpl_code=$?
dpl_mark ran "$dpl_code"
cat <&3 >/dev/null
exit "$dpl_code"

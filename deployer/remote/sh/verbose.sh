# shellcheck shell=sh
# -v: each docker command (library.sh's docker) and each file written is noted before it
# happens. Records of jobs running at once (new services start together) are written one
# at a time: a long one is several writes.
# shellcheck disable=SC2016 # expanded when the exit trap runs
dpl_trace_lock=$(mktemp) && dpl_at_exit 'rm -f "$dpl_trace_lock"'
dpl_trace() { { flock 7; dpl_note "$@"; } 7<"$dpl_trace_lock"; }

# shellcheck shell=sh
# dpl_facts REF...: the facts of instance $I (facts.py reads them): the roots, its state
# file, and one docker inspect of its containers and of the given references (images, and
# networks: whether they exist)
dpl_facts() {
  dpl_mark roots
  printf '%s\n%s\n' "$S" "$V"
  if [ -f "$D/state.json" ]; then
    dpl_mark state
    cat "$D/state.json" || return 1
  fi
  dpl_mark docker
  dpl_inspect "$I" "$@"
}

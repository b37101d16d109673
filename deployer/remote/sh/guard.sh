# shellcheck shell=sh
# dpl_within TOP DIR...: each volume directory really is inside TOP, the instance's volume
# directory: a symlink planted on the host could lead a bind mount anywhere, /etc included.
# Checked before every start deployer makes of a container that mounts volumes (deploy,
# rollback, start, restart, run); also the only function of an attached command (run).
dpl_within() {
  local top dir
  top=$(realpath "$1") || return 1
  shift
  for dir; do
    case "$(realpath "$dir")" in
      "$top"/*) ;;
      *) echo "deployer: volume directory $dir leads outside $top (a symlink?): refused" >&2; return 1 ;;
    esac
  done
}

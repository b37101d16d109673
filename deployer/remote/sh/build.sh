# shellcheck shell=sh
# Builds of git services, from the app's tar on fd 3. Each says `ready` once sh has read
# the whole script, then reads the tar; its output goes to stderr, the image id is marked.

# dpl_docker_build TAG DOCKER-BUILD-ARGS...: a Dockerfile app
dpl_docker_build() {
  local tag="$1"
  shift
  dpl_mark ready
  dpl_docker_long build "$@" - <&3 >&2 || return 1
  dpl_image "$tag"
}

# dpl_need ROLE IMAGE: the slug builder or runner image is on the host
dpl_need() {
  docker image inspect "$2" >/dev/null 2>&1 && return 0
  echo "deployer: the slug $1 image $2 is not on the host (setting deployer.slug.$1_image; pull or build it there)" >&2
  return 1
}

# dpl_slug_build SERVICE TAG BUILDER RUNNER NETWORK: a slug app. The tar goes straight into
# the builder, on the instance's NETWORK (its cache directory is the instance's, kept across
# builds, removed with the instance); the slug it writes is baked into an image FROM the runner, which starts it
# from SLUG_URL: a container of that image fetches nothing. The slug and the Dockerfile
# wait in a work directory that is removed however the script ends (and before the next
# build, should the script have been killed).
dpl_slug_build() {
  local service="$1" tag="$2" builder="$3" runner="$4" work="$D/build.$1"
  dpl_need builder "$builder" && dpl_need runner "$runner" || return 1
  mkdir -p "$D/cache/$service" && rm -rf "$work" && mkdir "$work" || return 1
  # shellcheck disable=SC2034 # script-wide: read when the exit trap runs
  dpl_build_dir=$work
  # shellcheck disable=SC2016 # expanded when the exit trap runs
  dpl_at_exit 'rm -rf "$dpl_build_dir"'
  trap 'exit 1' HUP INT TERM PIPE
  dpl_mark ready
  dpl_docker_long run --rm -i -a stdin -a stdout -a stderr --network "$5" -v "$D/cache/$service:/tmp/cache" "$builder" - <&3 >"$work/slug.tgz" || return 1
  if [ ! -s "$work/slug.tgz" ]; then
    echo "deployer: the slug builder image $builder wrote no slug to its stdout (given -, it should)" >&2
    return 1
  fi
  printf '%s\n' "FROM $runner" 'COPY slug.tgz /slug.tgz' 'ENV SLUG_URL=file:///slug.tgz' >"$work/Dockerfile"
  dpl_docker_long build --force-rm --label "deployer.instance=$I" -t "$tag" "$work" >&2 || return 1
  dpl_image "$tag"
}

# dpl_image TAG: after a build, the image's id
dpl_image() {
  dpl_mark image
  docker image inspect --format '{{.Id}}' "$1"
}

# dpl_push TAG: after a build on a swarm's manager, the image pushed to the registry TAG
# names, for the other nodes to pull (its progress to stderr, as the build's output; on
# failure, docker's reason), then its tags and registry digests as dpl_swarm_facts reports
# an image's (the push gave it one)
dpl_push() {
  local err
  err=$(dpl_docker_long push "$1" 2>&1 >&4) || { echo "deployer: $err" >&2; return 1; }
  dpl_mark pushed
  docker image inspect --format '{{json .RepoTags}} {{json .RepoDigests}}' "$1"
}

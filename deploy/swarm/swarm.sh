#!/usr/bin/env bash
# The cluster on Docker Swarm, for `make swarm-up` / `make swarm-down` and the Swarm e2e tests.
#
#   bash deploy/swarm/swarm.sh build   images lcb-{backend,balancer,frontend}:$LCB_IMAGE_TAG via Compose
#   bash deploy/swarm/swarm.sh up      build, a one-node swarm if there is none, deploy, wait healthy
#   bash deploy/swarm/swarm.sh down    remove the stack and, if `up` created the swarm, leave it and
#                                      remove the networks Swarm made (docker_gwbridge, ingress)
#
# Environment: LCB_STACK (lcb), LCB_IMAGE_TAG (local), LCB_SKIP_BUILD=1, LCB_REMOVE_IMAGES=1 (down
# also removes the three images), LCB_WAIT_S (180: bound of every wait), SWARM_ADVERTISE_ADDR
# (127.0.0.1), LCB_PUBLISH_MODE (ingress when the kernel has IPVS, else host), LCB_ENDPOINT_MODE
# (of the published services: dnsrr in host mode, else vip), and the knobs of
# docker-stack.yml. Expects a working `docker` (make checks that it answers).
set -euo pipefail

cd "$(dirname "$0")/../.."
STACK=${LCB_STACK:-lcb}
TAG=${LCB_IMAGE_TAG:-local}
WAIT_S=${LCB_WAIT_S:-180}
STACK_FILE=deploy/swarm/docker-stack.yml
# Set on the node by `up` when it ran `docker swarm init`: `down` leaves only a swarm it created.
OWNER_LABEL=lcb.swarm-created-by
IMAGES=(backend balancer frontend)
export LCB_STACK=$STACK LCB_IMAGE_TAG=$TAG

log() { printf 'swarm [%4ss] %s\n' "$SECONDS" "$*" >&2; }
die() { log "error: $*"; exit 1; }

compose() {
  if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi
}

swarm_state() { docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown; }

owned_swarm() {
  [ "$(swarm_state)" = active ] &&
    [ -n "$(docker node inspect self --format "{{index .Spec.Labels \"$OWNER_LABEL\"}}" 2>/dev/null)" ]
}

build() {
  log "building lcb-{backend,balancer,frontend}:$TAG with docker-compose.yml's build definitions"
  # A project name of its own: the build touches no container of a Compose project.
  COMPOSE_FILE=docker-compose.yml:deploy/swarm/images.yml COMPOSE_PROJECT_NAME=lcbswarmbuild \
    compose build "${IMAGES[@]}"
}

publish_mode() {
  if [ -n "${LCB_PUBLISH_MODE:-}" ]; then echo "$LCB_PUBLISH_MODE"
  # The routing mesh (ingress publishing, service VIPs) is IPVS; without it only host mode works.
  elif [ -d /proc/sys/net/ipv4/vs ] || modprobe -n ip_vs >/dev/null 2>&1; then echo ingress
  else echo host
  fi
}

# Waits until every service of the stack runs all its replicas; Swarm counts a task with a health
# check as running only once it is healthy.
wait_converged() {
  local deadline=$((SECONDS + WAIT_S)) lines pending
  while :; do
    lines=$(docker service ls --filter "label=com.docker.stack.namespace=$STACK" --format '{{.Name}} {{.Replicas}}')
    pending=$(awk '{ split($2, r, "/"); if (r[1] != r[2] || r[2] == 0) print $1 " " $2 }' <<<"$lines")
    if [ -n "$lines" ] && [ -z "$pending" ]; then
      log "stack $STACK converged: $(tr '\n' ' ' <<<"$lines")"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      docker stack ps --no-trunc "$STACK" >&2 || true
      die "stack $STACK not converged after ${WAIT_S}s: ${pending:-no services}"
    fi
    sleep 1
  done
}

up() {
  [ "${LCB_SKIP_BUILD:-}" = 1 ] || build
  case "$(swarm_state)" in
    inactive)
      log "docker swarm init --advertise-addr ${SWARM_ADVERTISE_ADDR:-127.0.0.1}"
      docker swarm init --advertise-addr "${SWARM_ADVERTISE_ADDR:-127.0.0.1}" >/dev/null
      docker node update --label-add "$OWNER_LABEL=deploy/swarm/swarm.sh" "$(docker info --format '{{.Swarm.NodeID}}')" >/dev/null
      ;;
    active) docker node ls >/dev/null 2>&1 || die "this node is in a swarm but not a manager: deploy from a manager" ;;
    *) die "swarm state is '$(swarm_state)'; expected inactive or active" ;;
  esac
  LCB_PUBLISH_MODE=$(publish_mode)
  # The routing mesh needs a VIP on each published service; in host mode nothing uses one, and a
  # VIP costs every task a load-balancer update whenever a task starts or stops (docker-stack.yml).
  if [ "$LCB_PUBLISH_MODE" = host ]; then LCB_ENDPOINT_MODE=${LCB_ENDPOINT_MODE:-dnsrr}; else LCB_ENDPOINT_MODE=${LCB_ENDPOINT_MODE:-vip}; fi
  PROMETHEUS_CONFIG_VERSION=$(sha256sum deploy/swarm/prometheus.yml | cut -c1-12)
  export LCB_PUBLISH_MODE LCB_ENDPOINT_MODE PROMETHEUS_CONFIG_VERSION
  log "docker stack deploy $STACK (images :$TAG, ports published in $LCB_PUBLISH_MODE mode, endpoint mode $LCB_ENDPOINT_MODE)"
  # --resolve-image never: the images are local; asking a registry for digests would only fail.
  docker stack deploy --resolve-image never --prune -c "$STACK_FILE" "$STACK" >&2
  wait_converged
  log "UI: http://localhost:${FRONTEND_PORT:-8080}  balancer: http://localhost:${LB_PORT_PUBLISHED:-8001}  Prometheus: http://localhost:${PROMETHEUS_PORT:-9090}"
}

# Polls until `$@` prints nothing, at most WAIT_S seconds; returns 1 on timeout.
wait_empty() {
  local what=$1 deadline=$((SECONDS + WAIT_S)) out
  shift
  while :; do
    out=$("$@" 2>/dev/null || true)
    [ -z "$out" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "still there after ${WAIT_S}s: $what: $(tr '\n' ' ' <<<"$out")"
      return 1
    fi
    sleep 1
  done
}

down() {
  local rc=0 label="label=com.docker.stack.namespace=$STACK"
  if [ "$(swarm_state)" = active ]; then
    if [ -n "$(docker service ls -q --filter "$label")" ]; then
      log "docker stack rm $STACK"
      docker stack rm "$STACK" >&2 || rc=1
    fi
    # stack rm returns at once; tasks then stop (backends finish their requests) and the stack's
    # network goes only after its last container.
    wait_empty "containers of $STACK" docker ps -aq --filter "$label" --filter label=com.docker.swarm.task.id || rc=1
    wait_empty "networks of $STACK" docker network ls -q --filter "$label" || rc=1
    if owned_swarm; then
      if [ -z "$(docker service ls -q)" ]; then
        log "docker swarm leave --force"
        docker swarm leave --force >&2 || rc=1
      else
        log "other services still run in the swarm: left in place"
      fi
    else
      log "the swarm was not created by swarm.sh: left in place"
    fi
  fi
  # Containers of the stack that outlived the swarm (left while they were stopping), and any
  # other container labelled with the stack (the e2e tests' stand-alone checks).
  local stale
  stale=$(docker ps -aq --filter "$label")
  [ -z "$stale" ] || docker rm -f $stale >/dev/null || rc=1
  if [ "$(swarm_state)" = inactive ]; then
    # `swarm init` made docker_gwbridge (the tasks' way out), and it outlives the swarm; `ingress`
    # is swarm-scoped and normally goes with it. `network rm` refuses one a container still uses.
    for net in docker_gwbridge ingress; do
      if docker network inspect "$net" >/dev/null 2>&1; then
        log "docker network rm $net"
        docker network rm "$net" >/dev/null || rc=1
      fi
    done
  fi
  if [ "${LCB_REMOVE_IMAGES:-}" = 1 ]; then
    for image in "${IMAGES[@]}"; do
      if docker image inspect "lcb-$image:$TAG" >/dev/null 2>&1; then
        docker image rm "lcb-$image:$TAG" >/dev/null || rc=1
      fi
    done
  fi
  [ "$rc" -eq 0 ] && log "down: done" || log "down: finished with errors (see above)"
  return "$rc"
}

case "${1:-}" in
  build) build ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 build|up|down" >&2; exit 2 ;;
esac

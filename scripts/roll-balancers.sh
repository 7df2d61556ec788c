#!/usr/bin/env bash
# Replaces every balancer replica of the Compose cluster without losing a request through nginx,
# for an upgrade (`--build` rebuilds the image first) or a fresh start of each process.
#
#   bash scripts/roll-balancers.sh [--build]        (make roll-balancers = --build)
#
# Compose has no rolling update: `docker compose restart balancer` and `up -d --build balancer`
# stop every replica at once. So this starts as many new replicas beside the old ones (from the
# image as it is now), waits until each new one is ready, then stops the old ones one at a time:
# each stops accepting at SIGTERM (nginx sends new requests to the others), finishes what it has
# and is removed. The replicas find each other by DNS (LB_PEERS_DNS), the new ones included.
#
# Runs in the project's environment, as `make up` does (COMPOSE_PROJECT_NAME, COMPOSE_FILE and the
# knobs of docker-compose.yml, or .env). ROLL_WAIT_S (120) bounds each wait; ROLL_SETTLE_S (3) is how
# long the new replicas serve beside the old ones before the first old one stops (see below).
set -euo pipefail

cd "$(dirname "$0")/.."
SERVICE=balancer
WAIT_S=${ROLL_WAIT_S:-120}
# Above the balancer's LB_SHUTDOWN_TIMEOUT_MS (15 s), as stop_grace_period in docker-compose.yml.
STOP_TIMEOUT_S=20
# nginx's fail_timeout for a balancer address (2 s, nginx/entrypoint/30-balancer-upstreams.sh) plus
# its re-resolve period (BALANCER_RESOLVE_VALID, 1 s).
SETTLE_S=${ROLL_SETTLE_S:-3}
ADMIN_PORT=9001

log() { printf 'roll-balancers [%4ss] %s\n' "$SECONDS" "$*" >&2; }
die() { log "error: $*"; exit 1; }

compose() {
  if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi
}

# Full ids of the service's running containers (`ps -q` lists stopped ones too under v1).
running() {
  local ids
  ids=$(compose ps -q "$SERVICE")
  [ -z "$ids" ] || docker inspect -f '{{if .State.Running}}{{.Id}}{{end}}' $ids | sed '/^$/d'
}

build=0
case "${1:-}" in
  --build) build=1 ;;
  '') ;;
  *) echo "usage: $0 [--build]" >&2; exit 2 ;;
esac
if ! [[ $SETTLE_S =~ ^[0-9]+$ ]]; then
  echo "$0: ROLL_SETTLE_S must be a whole number of seconds (got '$SETTLE_S')" >&2
  exit 2
fi

mapfile -t old < <(running)
count=${#old[@]}
[ "$count" -gt 0 ] || die "no running $SERVICE container: start the cluster first (make up)"
if [ "$build" = 1 ]; then
  log "building the $SERVICE image"
  compose build "$SERVICE" >&2
fi

log "starting $count new $SERVICE replicas beside the $count running ones"
# --no-recreate: the old containers stay as they are; --no-deps: nothing else is touched.
compose up -d --no-deps --no-recreate --scale "$SERVICE=$((count * 2))" "$SERVICE" >&2
mapfile -t fresh < <(running | grep -vxF -f <(printf '%s\n' "${old[@]}") || true)
[ "${#fresh[@]}" -eq "$count" ] || die "expected $count new replicas, found ${#fresh[@]}"

# Ready = listening, after its first health probes of the backends (the balancer's /readyz).
for id in "${fresh[@]}"; do
  deadline=$((SECONDS + WAIT_S))
  until docker exec "$id" http-check "$ADMIN_PORT" /readyz >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "new replica ${id:0:12} not ready after ${WAIT_S}s"
    sleep 0.5
  done
  log "new replica ${id:0:12} ready"
done

# Docker's DNS names a container from its start, before it listens: nginx sends it requests while
# it boots, is refused, and leaves that address out for fail_timeout (max_fails=1). Stopping the old
# replicas inside that window left nginx no address it would use: about a second of 502 "no live
# upstreams" (CI, and reproduced with `--build` under load: nginx's error log showed both new
# replicas disabled at boot, 1.5 s before ready, then both old ones stopped 0.3 s apart). So the new
# replicas first outlive any such mark, and nginx's next look at the name, before an old one stops.
if [ "$SETTLE_S" -gt 0 ]; then
  log "new replicas ready; letting nginx take them up for ${SETTLE_S}s before the old ones stop"
  sleep "$SETTLE_S"
fi

# One at a time: while one drains, the others (old and new) take every new request, whether or
# not nginx has re-resolved the name since the new replicas started.
for id in "${old[@]}"; do
  log "stopping old replica ${id:0:12} (it finishes its requests first)"
  docker stop -t "$STOP_TIMEOUT_S" "$id" >/dev/null
  docker rm "$id" >/dev/null
done
log "done: $count $SERVICE replicas replaced"

# One entry point for people and CI. Docker targets need only Docker Engine with Compose (v2's
# `docker compose`, or docker-compose v1) and this repository; they change nothing on the host but
# the project's containers, images, networks and volumes.
SHELL := /bin/bash
.DEFAULT_GOAL := help
N ?= 4
# Checks that Docker answers before a Docker target runs, and says what to do when it does not.
# Our own machines have no Docker Hub: there (only there) `.ci/run` or the developer's shell runs
# the team's offline bootstrap first; a user's machine never needs it.
DOCKER_ENV := docker info >/dev/null 2>&1 || { echo "make: Docker does not answer (docker info failed): install Docker Engine with Compose v2 and start it" >&2; exit 1; } &&
# Every npm/node recipe runs on the project's Node (24 LTS): the machine's when it is new enough,
# else the copy scripts/ensure-node.sh installs once from the npm registry into .cache/node24.
# Captured before use, like DOCKER_ENV: a failing install must stop the recipe.
WITH_NODE := node_dir="$$(bash scripts/ensure-node.sh)" && export PATH="$$node_dir:$$PATH" &&
# `docker compose` (v2) when it answers, else docker-compose v1; a clear message when neither does.
COMPOSE := $$(if docker compose version >/dev/null 2>&1; then echo "docker compose"; elif command -v docker-compose >/dev/null; then echo docker-compose; else echo "make: neither 'docker compose' nor docker-compose is installed" >&2; echo false; fi)

.PHONY: help deps build start test test-here lint typecheck check up down logs ps scale e2e bench chaos

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

node_modules/.package-lock.json: package-lock.json
	$(WITH_NODE) npm ci
	@touch $@

deps: node_modules/.package-lock.json ## install dependencies (npm ci) when needed

build: deps ## compile services and frontend
	$(WITH_NODE) npm run build

start: deps ## run the cluster as local processes (balancer 8001, backends 8002+, UI 8080)
	$(WITH_NODE) npm start

# The README's test command. With Node (any version, with npm) on the machine it runs here, on
# Node 24; with only Docker it runs the same steps in the node:24 image, on a copy of the tree, so
# that nothing in the checkout changes (tools such as chromium or nginx are then missing, and the
# tests that need them say so and skip).
test: ## typecheck, lint, build and every test that needs no Docker (on Node 24; in a node:24 container when the machine has no Node)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory test-here; \
	elif docker info >/dev/null 2>&1; then \
	  echo "make test: no npm on this machine; running the tests in $(TEST_IMAGE)"; \
	  docker run --rm -v "$$PWD:/src:ro" $(TEST_IMAGE) bash -c '$(IN_CONTAINER_TEST)'; \
	else echo "make test: needs Node with npm (any version; Node 24 is fetched) or Docker" >&2; exit 1; fi

TEST_IMAGE := node:24-bookworm-slim
IN_CONTAINER_TEST := set -e; mkdir /work; cd /src; tar --exclude=node_modules --exclude=.git --exclude=.cache -cf - . | tar -xf - -C /work; cd /work; npm ci --no-audit --no-fund; npm run typecheck; npm run lint; npm run build; npm test

test-here: deps
	@$(WITH_NODE) echo "make test: node $$(node --version) from $$node_dir"
	$(WITH_NODE) npm run typecheck
	$(WITH_NODE) npm run lint
	$(WITH_NODE) npm run build
	$(WITH_NODE) npm test

.PHONY: soak

soak: deps ## throughput and tail checks (fault table at 300 GET/s, lab policy outcomes): run once in CI
	$(WITH_NODE) npm run soak

lint: deps ## eslint
	$(WITH_NODE) npm run lint

typecheck: deps ## tsc -b
	$(WITH_NODE) npm run typecheck

up: ## docker compose up with N backends (default 4)
	@$(DOCKER_ENV) $(COMPOSE) up -d --build --scale backend=$(N) && \
	  echo "UI: http://localhost:$${FRONTEND_PORT:-8080}  balancer: http://localhost:$${LB_PORT_PUBLISHED:-8001}  Prometheus: http://localhost:$${PROMETHEUS_PORT:-9090}"

down: ## stop and remove the Compose cluster
	@$(DOCKER_ENV) $(COMPOSE) down -v --remove-orphans

logs: ## follow the Compose logs
	@$(DOCKER_ENV) $(COMPOSE) logs -f --tail=100

ps: ## list the Compose containers
	@$(DOCKER_ENV) $(COMPOSE) ps

scale: ## change the number of backends live: make scale N=6
	@$(DOCKER_ENV) $(COMPOSE) up -d --no-recreate --scale backend=$(N) backend

.PHONY: roll-balancers

roll-balancers: ## upgrade the balancers live: rebuild, start new replicas beside the old ones, then stop the old ones one by one (no request lost)
	@$(DOCKER_ENV) bash scripts/roll-balancers.sh --build

e2e: deps ## Compose end-to-end tests (builds, starts and removes its own cluster)
	@$(WITH_NODE) $(DOCKER_ENV) npm run test:compose -w @lcb/e2e

chaos: deps ## events under 200 GET/s open-loop through :8080 on the running cluster (changes it!), as a table
	@$(WITH_NODE) $(DOCKER_ENV) npx tsx e2e/load/chaos.ts $(if $(RATE),--rate $(RATE)) $(if $(EVENTS),--events $(EVENTS))

bench: deps build ## wrk against the balancer, nginx least_conn and HAProxy leastconn
	$(WITH_NODE) npm run bench

.PHONY: lab

lab: deps build ## algorithm lab: one slow replica among ten, every policy, same traffic (local processes)
	$(WITH_NODE) node bench/lab.mjs

.PHONY: lab-peers

lab-peers: deps build ## one balancer vs two isolated vs two sharing counts, seed's 1-10 s images, one slow backend (local processes, ~40 min)
	$(WITH_NODE) node bench/lab-peers.mjs

.PHONY: bench-connections

bench-connections: deps build ## 10,000 idle keep-alive clients: RSS of the balancer, nginx, HAProxy
	$(WITH_NODE) node bench/connections.mjs

.PHONY: host-docker-cgroup

host-docker-cgroup: ## CHANGES THE HOST: moves dockerd/containerd out of the root CPU cgroup (measurement machines without systemd; see scripts/docker-daemon-cgroup.sh)
	@bash scripts/docker-daemon-cgroup.sh

.PHONY: swarm-up swarm-down e2e-swarm

swarm-up: ## the cluster on a one-node Docker Swarm (stack lcb; see deploy/swarm)
	@$(DOCKER_ENV) bash deploy/swarm/swarm.sh up

swarm-down: ## remove the Swarm stack; leave the swarm if swarm-up made it
	@$(DOCKER_ENV) bash deploy/swarm/swarm.sh down

e2e-swarm: deps ## Swarm end-to-end tests (own one-node swarm, removed at the end)
	@$(WITH_NODE) $(DOCKER_ENV) npm run test:swarm -w @lcb/e2e

#!/usr/bin/env bash
# demo.sh: the demo shop, healed by ARES.
#   scripts/demo.sh up     build ARES and the shop's FROM-scratch images, start PostgreSQL and Redis
#                          on the host (scripts/services.sh), the shop (Compose, two replicas of
#                          product) and ARES (on the host, scoped to the demo's containers), print
#                          the URLs, then run scenario 1 with `ares chaos run` (a product replica
#                          crashes under load, ARES restarts it); leaves it all running
#   scripts/demo.sh down   remove everything 'up' started: ARES (by its PID), the shop's
#                          containers, networks and volumes
#
# Environment (defaults in brackets): DEMO_PROJECT [ares-demo] the Compose project;
# SHOP_GATEWAY_PORT [8000] the shop on 127.0.0.1; DEMO_DASHBOARD [127.0.0.1:8080] and
# DEMO_METRICS [127.0.0.1:9464] ARES's listen addresses; DEMO_STATE [dist/demo] pid,
# journal and logs; DEMO_LABELS extra key=value,... labels on the shop's containers.
set -euo pipefail
cd "$(dirname "$0")/.."

project=${DEMO_PROJECT:-ares-demo}
export SHOP_GATEWAY_PORT=${SHOP_GATEWAY_PORT:-8000}
dashboard=${DEMO_DASHBOARD:-127.0.0.1:8080}
metrics=${DEMO_METRICS:-127.0.0.1:9464}
state=${DEMO_STATE:-dist/demo}
services=(gateway user product cart order)
victim=product                              # the service scenario 1 crashes: two replicas
scenario=tests/scenarios/01-kill-backend.yaml # run by `ares chaos run`
shop_url="http://127.0.0.1:$SHOP_GATEWAY_PORT/"
dash_url="http://$dashboard/"

say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }
fail() {
	say "FAILED: $*"
	exit 1
}
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# compose runs Docker Compose (v2 plugin or v1 binary) on the shop's files, using the host's
# PostgreSQL and Redis (docker-compose.local.yml), as project $project.
dc=()
compose() {
	if [ ${#dc[@]} -eq 0 ]; then
		if docker compose version >/dev/null 2>&1; then
			dc=(docker compose)
		elif command -v docker-compose >/dev/null 2>&1; then
			dc=(docker-compose)
		else
			bash scripts/services.sh docker >"$state/services.log" 2>&1 || { cat "$state/services.log"; exit 1; }
			dc=(docker-compose)
		fi
	fi
	local files=(-f docker-compose.yml -f docker-compose.local.yml)
	[ -f "$state/compose.demo.yml" ] && files+=(-f "$state/compose.demo.yml")
	"${dc[@]}" -p "$project" --project-directory . "${files[@]}" "$@"
}

# ares_pid prints the PID of the ARES that 'up' started, if that process still runs ARES.
ares_pid() {
	[ -f "$state/ares.pid" ] || return 0
	local pid
	pid=$(cat "$state/ares.pid")
	if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q 'ares run'; then echo "$pid"; fi
}

down() {
	mkdir -p "$state"
	local pid
	pid=$(ares_pid)
	if [ -n "$pid" ]; then
		say "stopping ARES (pid $pid)"
		kill "$pid"
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
	fi
	rm -f "$state/ares.pid"
	docker info >/dev/null 2>&1 || { say "docker engine not answering: nothing else to remove"; return 0; }
	local label=com.docker.compose.project=$project
	if [ -n "$(docker ps -aq --filter "label=$label")$(docker network ls -q --filter "label=$label")$(docker volume ls -q --filter "label=$label")" ]; then
		say "removing the shop (Compose project $project: containers, networks, volumes)"
		compose down --volumes --remove-orphans --timeout 5 >"$state/compose-down.log" 2>&1 || true
		# Whatever Compose left (e.g. a replica ARES scaled out): everything with the project's label.
		docker ps -aq --filter "label=$label" | xargs -r docker rm -f >/dev/null
		docker network ls -q --filter "label=$label" | xargs -r docker network rm >/dev/null
		docker volume ls -q --filter "label=$label" | xargs -r docker volume rm >/dev/null
	fi
	# The journal goes too: its history (cooldowns, back-offs) belongs to the containers just removed.
	rm -f "$state"/journal.db* "$state/compose.demo.yml"
	say "demo removed"
}

# wait_healthy waits until every container of the project runs and is healthy.
wait_healthy() {
	local secs=$1 ids st bad
	for i in $(seq 1 $((secs * 2))); do
		mapfile -t ids < <(compose ps -q 2>/dev/null)
		if [ ${#ids[@]} -gt 0 ]; then
			st=$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "${ids[@]}")
			bad=$(grep -vc '^running/healthy$' <<<"$st" || true)
			[ "$bad" -eq 0 ] && { printf '\n'; return 0; }
		fi
		[ $((i % 4)) -eq 0 ] && printf '.'
		sleep 0.5
	done
	printf '\n'
	docker ps -a --filter "label=com.docker.compose.project=$project" --format '  {{.Names}}: {{.Status}}'
	return 1
}

up() {
	command -v go >/dev/null || fail "go is required"
	command -v docker >/dev/null || fail "docker is required (scripts/services.sh installs it: apt-get install docker.io)"
	mkdir -p "$state"
	if ! command -v curl >/dev/null; then
		say "installing curl (apt-get)"
		as_root sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl' >"$state/apt.log" 2>&1 ||
			{ cat "$state/apt.log"; fail "apt-get install curl"; }
	fi
	docker info >/dev/null 2>&1 || bash scripts/services.sh docker >"$state/services.log" 2>&1 || { cat "$state/services.log"; exit 1; }
	down >/dev/null

	say "1/5 PostgreSQL and Redis on the host (scripts/services.sh; log: $state/services.log)"
	{ bash scripts/services.sh postgres && bash scripts/services.sh redis; } >"$state/services.log" 2>&1 ||
		{ cat "$state/services.log"; fail "PostgreSQL or Redis did not start"; }

	say "2/5 building ARES and the shop's images FROM scratch (log: $state/build.log)"
	# (&&: set -e does not apply inside a group tested by ||.) ares-demo-web is the small image of
	# the README's policy tour (tests/testserver).
	{
		make build shop-images &&
			CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$state/app" ./tests/testserver &&
			docker build -q -t ares-demo-web:latest -f deploy/demo/Dockerfile "$state"
	} >"$state/build.log" 2>&1 || { tail -30 "$state/build.log"; fail "build"; }

	say "3/5 starting the shop: ${services[*]} ($victim x2), Compose project $project"
	{
		echo "# written by scripts/demo.sh: labels on the demo's containers"
		echo "services:"
		for s in "${services[@]}"; do
			printf '  %s:\n    labels:\n      ares.demo: "%s"\n' "$s" "$project"
			IFS=, read -ra extra <<<"${DEMO_LABELS:-}"
			for kv in "${extra[@]}"; do printf '      %s: "%s"\n' "${kv%%=*}" "${kv#*=}"; done
		done
	} >"$state/compose.demo.yml"
	compose up -d --scale "$victim=2" "${services[@]}" >"$state/compose-up.log" 2>&1 ||
		{ cat "$state/compose-up.log"; fail "docker compose up"; }
	printf '\033[1m[demo]\033[0m     waiting for 6 containers to be healthy '
	wait_healthy 120 || fail "the shop did not become healthy within 120 s (logs: docker logs <name>)"
	curl -fsS -o /dev/null --max-time 5 "$shop_url" || fail "the shop does not answer on $shop_url"

	say "4/5 starting ARES on the host, scoped to label com.docker.compose.project=$project"
	# Scoped to the demo's containers, so that it never touches anything else on the host.
	ARES_DOCKER_LABELS="com.docker.compose.project=$project" ARES_JOURNAL_PATH="$state/journal.db" \
		ARES_DASHBOARD_LISTEN="$dashboard" ARES_METRICS_LISTEN="$metrics" \
		nohup bin/ares run --config ares.yaml >"$state/ares.out" 2>"$state/ares.log" &
	echo $! >"$state/ares.pid"
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null --max-time 1 "${dash_url}api/v1/status" 2>/dev/null && break
		kill -0 "$(cat "$state/ares.pid")" 2>/dev/null || break
		sleep 0.2
	done
	curl -fsS -o /dev/null --max-time 2 "${dash_url}api/v1/status" || { tail -20 "$state/ares.log"; fail "ARES did not start"; }

	cat <<MSG

  shop        $shop_url
  dashboard   $dash_url

MSG
	say "5/5 scenario 1: a $victim replica crashes (SIGKILL to its process), ARES restarts it"
	# The scenario runner (docs/chaos.md): load through the gateway, the crash (kill -9 of the
	# replica's PID: ARES leaves a docker kill alone, as an operator's), a live timeline, then a
	# report judged against the file's expectations. --short halves the load (20 s); the
	# expectations' windows stay as written.
	local runner=(bin/ares)
	[ "$(id -u)" -eq 0 ] || runner=(sudo -E bin/ares) # the crash is a kill -9 of a root process
	"${runner[@]}" chaos run --short --ares "${dash_url%/}" --target "${shop_url%/}" \
		--label "com.docker.compose.project=$project" "$scenario" || fail "scenario 1 (report above; ARES's log: $state/ares.log)"
	local other
	other=$(docker inspect -f '{{.Name}}' "$(compose ps -q "$victim" | tail -1)")
	cat <<MSG

Everything keeps running:
  shop          $shop_url
  dashboard     $dash_url   (controls need ARES_API_TOKEN set when ARES starts)
  decisions     tail -f $state/ares.out       logs: $state/ares.log
  metrics       curl -s http://$metrics/metrics | grep ^ares_
  crash again   kill -9 \$(docker inspect -f '{{.State.Pid}}' ${other#/})   (as root)
  what it did   ARES_JOURNAL_PATH=$state/journal.db bin/ares actions   (and: incidents)
  remove all    make demo-down
MSG
}

case "${1:-up}" in
up) up ;;
down) down ;;
*)
	echo "usage: $0 up|down" >&2
	exit 2
	;;
esac

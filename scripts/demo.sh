#!/usr/bin/env bash
# demo.sh: a first look at ARES healing a service.
#   scripts/demo.sh up     build, start two replicas of a demo web service and ARES, kill a
#                          replica and watch ARES restart it; leaves everything running
#   scripts/demo.sh down   remove everything 'up' started
set -euo pipefail
cd "$(dirname "$0")/.."

state=dist/demo
net=ares-demo
image=ares-demo-web:latest
say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }

down() {
	if [ -f "$state/ares.pid" ]; then
		pid=$(cat "$state/ares.pid")
		if kill -0 "$pid" 2>/dev/null; then say "stopping ares (pid $pid)"; kill "$pid"; fi
		rm -f "$state/ares.pid"
	fi
	ids=$(docker ps -aq --filter label=ares.demo=1)
	if [ -n "$ids" ]; then say "removing demo containers"; docker rm -f $ids >/dev/null; fi
	if docker network inspect "$net" >/dev/null 2>&1; then docker network rm "$net" >/dev/null; fi
	# The journal goes too: its history (cooldowns, back-offs) belongs to the containers just removed.
	rm -f "$state"/journal.db*
	say "demo removed"
}

up() {
	command -v docker >/dev/null || { echo "docker is required (scripts/services.sh installs and starts it)"; exit 1; }
	docker info >/dev/null 2>&1 || bash scripts/services.sh docker
	down >/dev/null
	mkdir -p "$state"
	say "building the demo image FROM scratch"
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$state/app" ./tests/testserver
	docker build -q -t "$image" -f deploy/demo/Dockerfile "$state" >"$state/build.log" 2>&1 || { cat "$state/build.log"; exit 1; }
	docker network create --label ares.demo=1 "$net" >/dev/null
	for i in 1 2; do
		docker run -d --name "ares-demo-web-$i" --network "$net" --network-alias web \
			--label ares.demo=1 --label ares.enable=true --label ares.service=web \
			-p "127.0.0.1::8080" --memory 64m --restart no "$image" >/dev/null
	done
	say "waiting for both replicas to be healthy"
	for _ in $(seq 1 100); do
		h=$(docker inspect -f '{{.State.Health.Status}}' ares-demo-web-1 ares-demo-web-2 | sort -u)
		[ "$h" = healthy ] && break
		sleep 0.2
	done
	say "starting ares (decisions: $state/ares.out, logs: $state/ares.log)"
	# Scoped to the demo's containers, so that it never touches anything else on the host.
	ARES_DOCKER_LABELS=ares.demo=1 ARES_JOURNAL_PATH="$state/journal.db" nohup bin/ares run --config ares.yaml >"$state/ares.out" 2>"$state/ares.log" &
	echo $! >"$state/ares.pid"
	for _ in $(seq 1 50); do grep -q "ares starting" "$state/ares.log" 2>/dev/null && break; sleep 0.2; done
	grep -q "ares starting" "$state/ares.log" || { cat "$state/ares.log"; exit 1; }

	port=$(docker port ares-demo-web-1 8080/tcp | head -1)
	say "ares-demo-web-1 answers on http://$port/ ; killing it (SIGKILL) now"
	start=$(date +%s%N)
	docker kill ares-demo-web-1 >/dev/null
	for _ in $(seq 1 300); do
		s=$(docker inspect -f '{{.State.Status}} {{.State.Health.Status}}' ares-demo-web-1)
		[ "$s" = "running healthy" ] && break
		sleep 0.1
	done
	end=$(date +%s%N)
	[ "$s" = "running healthy" ] || { say "ares-demo-web-1 did not come back: $s"; cat "$state/ares.log"; exit 1; }
	say "healed: ares-demo-web-1 is running and healthy again, $(((end - start) / 1000000)) ms after the kill"
	say "what ARES printed:"
	sed 's/^/    /' "$state/ares.out"
	cat <<MSG

ARES keeps running in the background:
  dashboard     http://127.0.0.1:8080/   (controls: restart it with ARES_API_TOKEN set)
  decisions     tail -f $state/ares.out
  logs          tail -f $state/ares.log
  metrics       curl -s http://127.0.0.1:9464/metrics | grep ^ares_
  break it      docker kill ares-demo-web-2
  what it sees  bin/ares facts
  what it did   ARES_JOURNAL_PATH=$state/journal.db bin/ares actions   (and: incidents)
  remove all    make demo-down
MSG
}

case "${1:-up}" in
up) up ;;
down) down ;;
*) echo "usage: $0 up|down"; exit 2 ;;
esac

#!/usr/bin/env bash
# services.sh: install (Debian packages, idempotent) and start what ARES's tests and demo need,
# waiting until each answers. Safe to run again: what is installed is not reinstalled and
# what answers is not restarted.
#
#   scripts/services.sh            # everything
#   scripts/services.sh docker     # only the Docker engine
set -euo pipefail

want=${1:-all}
log_dir=${ARES_SERVICES_LOG_DIR:-/tmp/ares-services}
mkdir -p "$log_dir"

say() { printf '[services] %s\n' "$*"; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
need_pkg() { # need_pkg COMMAND PACKAGE...
	if command -v "$1" >/dev/null 2>&1; then return 0; fi
	shift
	if [ "$apt_updated" -eq 0 ]; then
		say "apt-get update"
		as_root apt-get update -qq
		apt_updated=1
	fi
	say "installing $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >"$log_dir/apt.log" 2>&1 ||
		{ cat "$log_dir/apt.log"; exit 1; }
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
	local secs=$1 what=$2
	shift 2
	for _ in $(seq 1 $((secs * 5))); do
		if "$@" >/dev/null 2>&1; then say "$what is up"; return 0; fi
		sleep 0.2
	done
	say "$what did not answer within ${secs}s"
	return 1
}

start_docker() {
	need_pkg dockerd docker.io
	if docker info >/dev/null 2>&1; then say "docker engine already answers"; return 0; fi
	say "starting dockerd (log: $log_dir/dockerd.log)"
	as_root sh -c "nohup dockerd >'$log_dir/dockerd.log' 2>&1 &"
	wait_for 60 "docker engine" docker info || { tail -20 "$log_dir/dockerd.log"; exit 1; }
}

case "$want" in
all | docker) start_docker ;;
*) say "unknown service '$want' (want: all, docker)"; exit 2 ;;
esac

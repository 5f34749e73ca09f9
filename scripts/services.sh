#!/usr/bin/env bash
# services.sh: install (Debian packages, idempotent) and start what ARES's tests and demo need,
# waiting until each answers. Safe to run again: what is installed is not reinstalled and
# what answers is not restarted.
#
#   scripts/services.sh            # everything
#   scripts/services.sh docker     # only the Docker engine (and docker-compose)
#   scripts/services.sh postgres   # PostgreSQL with role and database shop (the demo shop)
#   scripts/services.sh redis      # Redis for the shop's sessions, carts and cache
#   scripts/services.sh chromium   # headless Chromium for the shop's browser test
#   scripts/services.sh prometheus # install only: tests start prometheus and alertmanager themselves
#   scripts/services.sh k8s        # build etcd, kube-apiserver, kube-controller-manager (scripts/k8s-bins.sh; cached)
#
# PostgreSQL and Redis listen on 127.0.0.1 and on the docker0 gateway address, so containers
# reach them through `host-gateway`; PostgreSQL accepts the role shop only from 127.0.0.1 and
# Docker's default bridge pools (172.16.0.0/12, 192.168.0.0/16). Override the password with
# SHOP_PG_PASSWORD.
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

# docker0_ip prints the docker0 bridge gateway address (what host-gateway resolves to), or
# nothing when the bridge does not exist yet.
docker0_ip() {
	ip -4 -o addr show dev docker0 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}'
}

start_compose() {
	need_pkg docker-compose docker-compose
}

pg_password=${SHOP_PG_PASSWORD:-shop}

as_postgres() { # as_postgres COMMAND...: run as the postgres OS user (peer authentication)
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

start_postgres() {
	need_pkg pg_ctlcluster postgresql
	need_pkg ip iproute2
	local ver cluster conf_dir gw listen conf hba changed=0
	read -r ver cluster < <(pg_lsclusters -h | awk 'NR == 1 {print $1, $2}')
	if [ -z "${ver:-}" ]; then
		ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
		cluster=main
		say "creating PostgreSQL cluster $ver/$cluster"
		as_root pg_createcluster "$ver" "$cluster" >/dev/null
	fi
	conf_dir=/etc/postgresql/$ver/$cluster
	gw=$(docker0_ip)
	listen=127.0.0.1${gw:+,$gw}
	conf="# written by scripts/services.sh (ARES demo shop)
listen_addresses = '$listen'"
	if [ "$(as_root cat "$conf_dir/conf.d/ares-shop.conf" 2>/dev/null)" != "$conf" ]; then
		printf '%s\n' "$conf" | as_root tee "$conf_dir/conf.d/ares-shop.conf" >/dev/null
		changed=1
	fi
	# Docker's default address pools: 172.17.0.0/16 to 172.31.0.0/16, then 192.168.0.0/16 in
	# /20s once those are taken (many test networks at once).
	hba="# ares-shop: the demo shop from loopback and Docker's default bridge pools only
host    shop            shop            127.0.0.1/32            scram-sha-256
host    shop            shop            172.16.0.0/12           scram-sha-256
host    shop            shop            192.168.0.0/16          scram-sha-256"
	if [ "$(as_root awk '/^# ares-shop:/ || /^host +shop +shop /' "$conf_dir/pg_hba.conf")" != "$hba" ]; then
		# First match wins in pg_hba.conf: put the shop's lines first, replacing older ones.
		{ printf '%s\n' "$hba"; as_root awk '!/^# ares-shop:/ && !/^host +shop +shop /' "$conf_dir/pg_hba.conf"; } >"$log_dir/pg_hba.conf.new"
		as_root cp "$log_dir/pg_hba.conf.new" "$conf_dir/pg_hba.conf"
		rm -f "$log_dir/pg_hba.conf.new"
		changed=1
	fi
	local logf
	logf=$(pg_lsclusters -h | awk -v v="$ver" -v c="$cluster" '$1 == v && $2 == c {print $7}')
	if pg_lsclusters -h | awk -v v="$ver" -v c="$cluster" '$1 == v && $2 == c {print $4}' | grep -q online; then
		if [ "$changed" -eq 1 ]; then
			say "restarting PostgreSQL $ver/$cluster (configuration changed)"
			as_root pg_ctlcluster "$ver" "$cluster" restart
		else
			say "PostgreSQL $ver/$cluster already running"
		fi
	else
		say "starting PostgreSQL $ver/$cluster (log: $logf)"
		as_root pg_ctlcluster "$ver" "$cluster" start
	fi
	wait_for 60 "postgresql" pg_isready -q -h 127.0.0.1 -p 5432 || { as_root tail -20 "$logf"; exit 1; }
	if [ "$(as_postgres psql -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'shop'")" != 1 ]; then
		say "creating role shop"
		as_postgres psql -q -v ON_ERROR_STOP=1 -c "CREATE ROLE shop LOGIN"
	fi
	# Always (re)set the password so that SHOP_PG_PASSWORD wins; it is not printed.
	as_postgres psql -q -v ON_ERROR_STOP=1 -v pw="$pg_password" -f - <<<"ALTER ROLE shop PASSWORD :'pw';"
	if [ "$(as_postgres psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'shop'")" != 1 ]; then
		say "creating database shop"
		as_postgres createdb -O shop shop
	fi
	wait_for 30 "postgresql as shop" env PGPASSWORD="$pg_password" psql -h 127.0.0.1 -U shop -d shop -tAc 'SELECT 1'
	say "postgres: postgres://shop:***@127.0.0.1:5432/shop${gw:+ (containers: host.docker.internal via host-gateway, $gw)}; log: $logf"
}

start_redis() {
	need_pkg redis-server redis-server
	need_pkg ip iproute2
	local gw bind
	gw=$(docker0_ip)
	bind="127.0.0.1${gw:+ $gw}"
	if redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG; then
		if [ -n "$gw" ] && ! redis-cli -h "$gw" ping 2>/dev/null | grep -q PONG; then
			# Running, but not on the bridge: rebind at run time (Redis 7 can).
			say "redis: adding bind $gw"
			redis-cli -h 127.0.0.1 config set bind "$bind" >/dev/null
		fi
		# Only explicit binds to loopback and the bridge gateway: protected mode off there.
		redis-cli -h 127.0.0.1 config set protected-mode no >/dev/null
		say "redis already answers"
	else
		mkdir -p "$log_dir/redis"
		say "starting redis-server on $bind (log: $log_dir/redis.log)"
		redis-server --daemonize yes --port 6379 --bind "$bind" --protected-mode no \
			--dir "$log_dir/redis" --logfile "$log_dir/redis.log" --pidfile "$log_dir/redis.pid" \
			--save '' --appendonly no
	fi
	wait_for 30 "redis" sh -c 'redis-cli -h 127.0.0.1 ping | grep -q PONG' || { tail -20 "$log_dir/redis.log"; exit 1; }
	say "redis: 127.0.0.1:6379${gw:+ and $gw:6379}; log: $log_dir/redis.log"
}

start_chromium() {
	need_pkg chromium chromium
	wait_for 30 "chromium" chromium --headless --no-sandbox --disable-gpu --version
	say "chromium: $(command -v chromium)"
}

# install_prometheus installs the Prometheus server binary for the metrics sensor's PromQL
# tests, and Alertmanager (amtool, for deploy/'s checks and the alerting test). Neither is
# started as a daemon: each test runs its own on a free port. Also the linters deploy/'s tests
# run: shellcheck (scripts) and jq (the policy-ci workflow's fixture step).
install_prometheus() {
	need_pkg prometheus prometheus
	need_pkg prometheus-alertmanager prometheus-alertmanager
	need_pkg shellcheck shellcheck
	need_pkg jq jq
	say "prometheus: $(command -v prometheus), alertmanager: $(command -v prometheus-alertmanager) (not started; tests run their own)"
}

# build_k8s builds (first run on a machine, ~7-14 min) or finds the Kubernetes control-plane
# binaries the runtime: kubernetes tests start themselves (internal/k8stest).
build_k8s() {
	local dir
	dir=$(bash "$(dirname "$0")/k8s-bins.sh")
	say "kubernetes binaries: $dir (not started; tests run their own)"
}

case "$want" in
all)
	start_docker
	start_compose
	start_postgres
	start_redis
	start_chromium
	install_prometheus
	build_k8s
	;;
docker) start_docker; start_compose ;;
postgres) start_postgres ;;
redis) start_redis ;;
chromium) start_chromium ;;
prometheus) install_prometheus ;;
k8s) build_k8s ;;
*) say "unknown service '$want' (want: all, docker, postgres, redis, chromium, prometheus, k8s)"; exit 2 ;;
esac
say "logs: $log_dir"

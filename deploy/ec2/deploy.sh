#!/usr/bin/env bash
# deploy.sh: deploy one image tag of the ARES stack to a Docker host, and roll back to the tag
# that ran before when the new one does not come up healthy.
#
#   deploy/ec2/deploy.sh ship USER@HOST TAG   # from CI: copy the stack's files to the host over
#                                             # SSH, then run "apply TAG" there
#   deploy/ec2/deploy.sh apply TAG            # on the host: pull, up -d, wait, roll back
#
# apply pulls $REGISTRY/ares-shop-<service>:TAG and $REGISTRY/ares:TAG, tags them with the
# local names docker-compose.yml uses (ares-shop-gateway:TAG, ...), starts the stack with
# SHOP_TAG=TAG (docker compose up -d), then waits until ARES's dashboard answers
# GET /api/v1/status with a tick run and its policies loaded. On success TAG is recorded as the
# running tag; on failure the stack is started again with the recorded tag (its images are
# still on the host) and the script exits 1. The first deploy has nothing to roll back to.
#
# Environment (apply):
#   ARES_DIR        where the stack's files are (default: two levels above this script)
#   REGISTRY        image registry prefix, e.g. ghcr.io/acme; empty: the images are local
#   COMPOSE_FILES   compose files, space-separated (default docker-compose.yml)
#   COMPOSE_PROFILES, COMPOSE_PROJECT_NAME   passed on to compose
#   HEALTH_URL      default http://127.0.0.1:${ARES_DASHBOARD_PORT:-8080}/api/v1/status
#   HEALTH_TIMEOUT  seconds to wait for health (default 120)
#   ARES_API_TOKEN  sent as a bearer token (needed when dashboard.auth is read), or
#   ARES_API_TOKEN_FILE  a file holding it (never passed on a command line)
# Environment (ship):
#   REMOTE_DIR      directory on the host (default /opt/ares)
#   SSH             ssh command (default: ssh -o BatchMode=yes)
#   REGISTRY, HEALTH_URL, HEALTH_TIMEOUT, COMPOSE_FILES, COMPOSE_PROFILES are passed on.
set -euo pipefail

SERVICES=(gateway user product cart order)

say() { printf '[deploy] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() {
	sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

valid_tag() { [[ $1 =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; }

# compose runs Docker Compose: the v2 plugin when there is one, else docker-compose v1.
compose() {
	local files=() f
	for f in ${COMPOSE_FILES:-docker-compose.yml}; do files+=(-f "$f"); done
	if docker compose version >/dev/null 2>&1; then
		docker compose "${files[@]}" "$@"
	else
		docker-compose "${files[@]}" "$@"
	fi
}

# images prints "remote local" image pairs for tag.
images() {
	local tag=$1 s prefix=""
	[ -n "${REGISTRY:-}" ] && prefix="${REGISTRY%/}/"
	for s in "${SERVICES[@]}"; do
		printf '%sares-shop-%s:%s ares-shop-%s:%s\n' "$prefix" "$s" "$tag" "$s" "$tag"
	done
	printf '%sares:%s ares:%s\n' "$prefix" "$tag" "$tag"
}

pull() {
	local tag=$1 remote name
	while read -r remote name; do
		if [ -z "${REGISTRY:-}" ]; then
			docker image inspect "$name" >/dev/null 2>&1 || die "image $name not on this host (and REGISTRY is empty)"
			continue
		fi
		say "pull $remote"
		docker pull -q "$remote" >/dev/null || die "pull $remote failed"
		docker tag "$remote" "$name"
	done < <(images "$tag")
}

up() {
	local tag=$1
	say "up -d with SHOP_TAG=$tag"
	SHOP_TAG=$tag compose up -d --remove-orphans
}

# healthy waits until HEALTH_URL reports a tick and loaded policies, or HEALTH_TIMEOUT passes.
healthy() {
	local url=${HEALTH_URL:-http://127.0.0.1:${ARES_DASHBOARD_PORT:-8080}/api/v1/status}
	local timeout=${HEALTH_TIMEOUT:-120} start body
	local auth=() token=${ARES_API_TOKEN:-}
	if [ -z "$token" ] && [ -n "${ARES_API_TOKEN_FILE:-}" ]; then
		token=$(<"$ARES_API_TOKEN_FILE")
	fi
	# curl reads the header from standard input (@-), so the token is never an argument.
	[ -n "$token" ] && auth=(-H @-)
	start=$(date +%s)
	while [ $(($(date +%s) - start)) -lt "$timeout" ]; do
		if body=$(printf 'Authorization: Bearer %s\n' "$token" | curl -fsS --max-time 5 "${auth[@]}" "$url" 2>/dev/null); then
			if [[ $body == *'"reload_failed":true'* ]]; then
				say "health: ARES refuses the policies of this release"
			elif [[ $body =~ \"tick\":[[:space:]]*[1-9] ]]; then
				say "health: ok ($url)"
				return 0
			fi
		fi
		sleep 2
	done
	say "health: $url not healthy within ${timeout}s"
	return 1
}

apply() {
	local tag=$1 prev=""
	valid_tag "$tag" || die "tag '$tag': want letters, digits, '_', '.' and '-' (at most 128)"
	cd "${ARES_DIR:-$(dirname "$0")/../..}"
	local state=.deployed-tag
	[ -f "$state" ] && prev=$(<"$state")
	say "deploying $tag (running now: ${prev:-nothing})"
	pull "$tag"
	if up "$tag" && healthy; then
		printf '%s\n' "$tag" >"$state"
		[ -n "$prev" ] && printf '%s\n' "$prev" >.previous-tag
		say "deployed $tag"
		return 0
	fi
	if [ -z "$prev" ] || [ "$prev" = "$tag" ]; then
		die "deploy of $tag failed and there is no earlier tag to roll back to"
	fi
	say "deploy of $tag failed: rolling back to $prev"
	if up "$prev" && healthy; then
		die "rolled back to $prev; $tag is not deployed"
	fi
	die "rollback to $prev failed too: the stack needs a person"
}

ship() {
	local host=$1 tag=$2
	valid_tag "$tag" || die "tag '$tag': want letters, digits, '_', '.' and '-' (at most 128)"
	local dir=${REMOTE_DIR:-/opt/ares}
	local root
	root=$(cd "$(dirname "$0")/../.." && pwd)
	local ssh_cmd
	read -r -a ssh_cmd <<<"${SSH:-ssh -o BatchMode=yes}"
	say "copying the stack to $host:$dir"
	(cd "$root" && tar -czf - docker-compose*.yml deploy policies) |
		"${ssh_cmd[@]}" "$host" "mkdir -p '$dir' && tar -xzf - -C '$dir'"
	local env=() v
	for v in REGISTRY HEALTH_URL HEALTH_TIMEOUT COMPOSE_FILES COMPOSE_PROFILES ARES_DASHBOARD_PORT; do
		[ -n "${!v:-}" ] && env+=("$v=$(printf '%q' "${!v}")")
	done
	say "applying $tag on $host"
	"${ssh_cmd[@]}" "$host" "cd '$dir' && env ARES_DIR='$dir' ${env[*]} bash deploy/ec2/deploy.sh apply '$tag'"
}

case "${1:-}" in
apply) [ $# -eq 2 ] || usage; apply "$2" ;;
ship) [ $# -eq 3 ] || usage; ship "$2" "$3" ;;
*) usage ;;
esac

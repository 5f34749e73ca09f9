#!/bin/bash
# cloud-init user-data: turns a fresh Debian 12 or Ubuntu 22.04/24.04 EC2 instance into an
# ARES host (deploy/ec2/README.md). It runs once, as root, at first boot, and is safe to run
# again (every step checks what is already there):
#
#   1. installs Docker (Debian's docker.io) and Docker Compose (the v2 plugin where the
#      distribution packages it, else docker-compose v1), git and curl;
#   2. creates the system user ares, a member of the docker group;
#   3. fetches the stack's files (compose files, deploy/, policies) into ARES_DIR;
#   4. pulls the images of TAG from REGISTRY and installs the ares binary from the ares image
#      as /usr/local/bin/ares;
#   5. installs /etc/ares/ares.yaml, /etc/ares/policies (owned by root, writable by nobody
#      else: ARES refuses policies others can write), /etc/ares/ares.env (a generated API token,
#      readable by root only) and the systemd unit, checks the host with `ares doctor` and
#      enables and starts ares.service;
#   6. starts the stack with deploy/ec2/deploy.sh apply TAG, without the stack's own ARES
#      container (deploy/ec2/compose.host-ares.yml): ARES runs on the host.
#
# Launch with, e.g.:
#   aws ec2 run-instances --image-id ami-... --instance-type t3.small \
#     --user-data file://deploy/ec2/user-data.sh ...
# Change the settings below first (or prepend `export REGISTRY=...` lines to the file).
# Progress is in /var/log/cloud-init-output.log.
set -euo pipefail

# Settings.
ARES_REPO=${ARES_REPO:-https://github.com/ares-sre/ares.git} # where the stack's files come from
ARES_REF=${ARES_REF:-main}                                   # branch or tag of ARES_REPO
REGISTRY=${REGISTRY:-ghcr.io/ares-sre}                       # images: $REGISTRY/ares:$TAG, $REGISTRY/ares-shop-*:$TAG
TAG=${TAG:-latest}
ARES_DIR=${ARES_DIR:-/opt/ares} # the stack's files (deploy.sh's REMOTE_DIR)

say() { printf '[ares user-data] %s\n' "$*"; }

export DEBIAN_FRONTEND=noninteractive

install_docker() {
	say "installing Docker, Compose, git, curl"
	apt-get update -q
	apt-get install -y -q --no-install-recommends ca-certificates curl git docker.io
	# Compose: Ubuntu packages the v2 plugin as docker-compose-v2, Docker's own repository as
	# docker-compose-plugin; Debian 12 has docker-compose (v1). deploy.sh uses either.
	if ! docker compose version >/dev/null 2>&1; then
		apt-get install -y -q docker-compose-v2 ||
			apt-get install -y -q docker-compose-plugin ||
			apt-get install -y -q docker-compose
	fi
	systemctl enable --now docker
}

create_user() {
	if ! id -u ares >/dev/null 2>&1; then
		say "creating the system user ares"
		useradd --system --user-group --home-dir /var/lib/ares --no-create-home \
			--shell /usr/sbin/nologin --comment "ARES self-healing daemon" ares
	fi
	# The docker group is what lets ARES restart containers (and is root-equivalent).
	usermod -aG docker ares
	install -d -m 0700 -o ares -g ares /var/lib/ares
}

fetch_stack() {
	if [ -d "$ARES_DIR/.git" ]; then
		say "updating $ARES_DIR to $ARES_REF"
		git -C "$ARES_DIR" fetch --depth 1 origin "$ARES_REF"
		git -C "$ARES_DIR" checkout -q --force FETCH_HEAD
	else
		say "cloning $ARES_REPO ($ARES_REF) into $ARES_DIR"
		git clone -q --depth 1 --branch "$ARES_REF" "$ARES_REPO" "$ARES_DIR"
	fi
}

install_binary() {
	local image="${REGISTRY%/}/ares:$TAG" cid
	say "pulling $image"
	docker pull -q "$image" >/dev/null
	docker tag "$image" "ares:$TAG"
	# The image is FROM scratch with the static binary at /ares: copy it out.
	cid=$(docker create "ares:$TAG")
	docker cp "$cid:/ares" /usr/local/bin/.ares.new
	docker rm -f "$cid" >/dev/null
	install -m 0755 -o root -g root /usr/local/bin/.ares.new /usr/local/bin/ares
	rm -f /usr/local/bin/.ares.new
	say "installed $(/usr/local/bin/ares version | head -n 1)"
}

install_config() {
	install -d -m 0755 -o root -g root /etc/ares
	# Policies: replaced as a whole, owned by root, writable by nobody else.
	rm -rf /etc/ares/policies.new
	cp -r "$ARES_DIR/policies" /etc/ares/policies.new
	chown -R root:root /etc/ares/policies.new
	chmod -R u=rwX,go=rX /etc/ares/policies.new
	rm -rf /etc/ares/policies
	mv /etc/ares/policies.new /etc/ares/policies
	if [ ! -f /etc/ares/ares.yaml ]; then
		say "writing /etc/ares/ares.yaml"
		cat >/etc/ares/ares.yaml <<'YAML'
# ARES on this host (deploy/ec2/user-data.sh). Unset keys keep their defaults; ares.yaml in the
# repository documents every key. After a change: systemctl restart ares (policies and
# log.level also reload with systemctl reload ares).
policy:
  dir: /etc/ares/policies
docker:
  host: unix:///var/run/docker.sock
journal:
  backend: sqlite
  path: /var/lib/ares/journal.db
anomaly:
  state_file: /var/lib/ares/anomaly.json
metrics:
  listen: 127.0.0.1:9464
dashboard:
  # Loopback only: reach it over an SSH tunnel (ssh -L 8080:127.0.0.1:8080 admin@host).
  listen: 127.0.0.1:8080
log:
  format: json
YAML
		chmod 0644 /etc/ares/ares.yaml
	fi
	if [ ! -f /etc/ares/ares.env ]; then
		say "writing /etc/ares/ares.env with a new API token"
		(
			umask 077
			printf 'ARES_API_TOKEN=%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >/etc/ares/ares.env
		)
	fi
	chown root:root /etc/ares/ares.env
	chmod 0600 /etc/ares/ares.env
}

install_unit() {
	install -m 0644 -o root -g root "$ARES_DIR/deploy/ec2/ares.service" /etc/systemd/system/ares.service
	systemctl daemon-reload
	say "ares doctor (as the user ares):"
	# Its warnings (no labelled containers yet: the stack starts below) do not stop the setup.
	runuser -u ares -- /usr/local/bin/ares doctor --config /etc/ares/ares.yaml || say "ares doctor reported failures (above)"
	systemctl enable ares.service
	systemctl restart ares.service
}

start_stack() {
	say "starting the stack $TAG (ARES runs on the host, not in the stack)"
	local script="$ARES_DIR/deploy/ec2/deploy.sh"
	ARES_DIR="$ARES_DIR" REGISTRY="$REGISTRY" \
		COMPOSE_FILES="docker-compose.yml deploy/ec2/compose.host-ares.yml" \
		bash "$script" apply "$TAG"
}

main() {
	install_docker
	create_user
	fetch_stack
	install_binary
	install_config
	install_unit
	start_stack
	say "done: systemctl status ares; journalctl -u ares -f"
}

main "$@"

# ARES itself, FROM scratch: the static bin/ares, the default policy pack and an /etc/passwd
# that names its unprivileged user. `make shop-images` builds it from the context dist/shop.
#
# ARES runs as uid 65532 ("ares"), never as root. Its one privilege is the Docker socket:
# docker-compose.yml mounts it and adds the socket's group to the container (group_add with
# DOCKER_GID, the gid of /var/run/docker.sock on the host: `stat -c %g /var/run/docker.sock`).
# Whoever can reach that socket controls the host's containers, ARES included (docs/security.md).
# The policies belong to root and are not writable by ARES's user (ARES refuses policies that
# others can write); its working directory, where the journal goes, is its own.
FROM scratch
COPY ares-etc/passwd ares-etc/group /etc/
COPY ares /ares
COPY policies /etc/ares/policies
COPY --chown=65532:65532 ares-state /var/lib/ares
WORKDIR /var/lib/ares
USER 65532:65532
ENTRYPOINT ["/ares"]
CMD ["run", "--policies", "/etc/ares/policies"]

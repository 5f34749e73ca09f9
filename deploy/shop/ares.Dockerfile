# ARES itself, FROM scratch: the static bin/ares and the default policy pack. It needs the
# Docker socket mounted (docker-compose.yml does) and runs as root to use it.
FROM scratch
COPY ares /ares
COPY policies /etc/ares/policies
ENTRYPOINT ["/ares"]
CMD ["run", "--policies", "/etc/ares/policies"]

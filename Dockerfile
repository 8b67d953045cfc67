# syntax=docker/dockerfile:1
# The gateway's image: multi-stage, non-root, fit for a read-only root file system.
#
#   docker build -t router .                       # or: podman build -t router .
#   docker run --read-only --tmpfs /tmp -p 8080:8080 -e ROUTER_MASTER_KEY=... router
#
# BASE defaults to Debian's own image; `scripts/debootstrap-base` builds the same base from
# Debian's packages alone (no registry) and tags it `router-base:bookworm`:
#   podman build --build-arg BASE=localhost/router-base:bookworm -t router .
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
# Behind a TLS-inspecting proxy: mount its CA bundle and name it, e.g.
#   -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/host-ca.crt:ro --build-arg PIP_CERT=/etc/ssl/host-ca.crt
ARG PIP_CERT
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python3 -m venv /opt/router \
 && /opt/router/bin/pip install --no-cache-dir '.[postgres,redis]'

FROM ${BASE} AS run
# tini as PID 1 forwards SIGTERM to the router, whose supervisor drains its workers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /srv/router --shell /usr/sbin/nologin router
COPY --from=build /opt/router /opt/router
COPY providers /srv/router/providers
COPY deploy/routing.container.toml /srv/router/routing.toml
# Writable places only: /tmp (metrics of several workers) and /data (SQLite), both volumes.
RUN mkdir -p /data && chown router /data
VOLUME ["/data", "/tmp"]
USER 10001
WORKDIR /srv/router
ENV PATH=/opt/router/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ROUTER_CONFIG=/srv/router/routing.toml
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["/usr/bin/tini", "--", "router", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8080", "--workers", "2"]

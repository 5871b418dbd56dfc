# The ha image: deno from its npm package (pinned as in install.sh), nats-server from Debian, the
# app with its npm dependencies cached at build time, run as a non-root user on /data.
#   podman build -t ha .                             (or docker build)
#   podman build --build-arg VARIANT=compiled -t ha .  the `deno compile`d single binary; the build
#                                                    downloads Deno's runtime (denort) for it
# Listeners beyond loopback need credentials (README "Docker"): pass HA_TOKEN and HA_PG_PASS.

FROM debian:bookworm-slim AS base
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nats-server curl \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --system --gid 10001 ha \
  && useradd --system --uid 10001 --gid ha --home-dir /data --no-create-home ha \
  && mkdir -p /data && chown ha:ha /data

# Tools of the build only: npm (for deno and the SQLite sources), gcc (SQLite extensions).
FROM base AS tools
ARG DENO_VERSION=2.9.6
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    nodejs npm gcc libc6-dev ca-certificates \
  && rm -rf /var/lib/apt/lists/*
# Behind a TLS-intercepting proxy: its CA certificate(s), PEM (the build stages trust them).
ARG EXTRA_CA_CERTS=""
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
    printf '%s\n' "$EXTRA_CA_CERTS" >/usr/local/share/ca-certificates/build-extra.crt \
    && update-ca-certificates >/dev/null; \
  fi
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
  DENO_CERT=/etc/ssl/certs/ca-certificates.crt
RUN npm install -g --no-audit --no-fund "deno@${DENO_VERSION}" \
  && install -m 755 "$(find "$(npm root -g)/deno" -name deno -type f -size +1M | head -1)" \
    /usr/local/bin/deno \
  && deno --version

FROM tools AS build
ENV DENO_DIR=/opt/deno-dir DENO_NO_UPDATE_CHECK=1
WORKDIR /app
# npm dependencies first: this layer is rebuilt only when deno.json or deno.lock change.
COPY deno.json deno.lock ./
RUN deno install --frozen
COPY . .
# The SQLite extension that makes statements stoppable (vendor/ha_interrupt.so).
RUN --mount=type=cache,target=/app/.tmp bash scripts/build-extension.sh
RUN deno cache --frozen main.ts src/engine/worker.ts src/replication/writer_plugin.ts \
  && deno cache --no-config --no-lock src/interceptor/child.ts
# /out is what the image gets: `ha` (a wrapper around deno and the sources, or the compiled
# binary), deno, its cache (writable by the ha user, uid 10001) and the app.
ARG VARIANT=source
RUN mkdir -p /out/usr/local/bin /out/opt/deno-dir /out/app \
  && if [ "$VARIANT" = compiled ]; then \
    deno task compile /out/usr/local/bin/ha; \
  else \
    cp /usr/local/bin/deno /out/usr/local/bin/deno && cp -a /app/. /out/app/ \
    && cp -a "$DENO_DIR/." /out/opt/deno-dir/ \
    && printf '%s\n' '#!/bin/sh' \
      'exec deno run -A --unstable-worker-options --cached-only --config /app/deno.json /app/main.ts "$@"' \
      >/out/usr/local/bin/ha && chmod 755 /out/usr/local/bin/ha; \
  fi \
  && chown -R 10001:10001 /out/opt/deno-dir

FROM base
ENV DENO_DIR=/opt/deno-dir DENO_NO_UPDATE_CHECK=1
COPY --from=build /out/usr/ /usr/
COPY --from=build /out/app/ /app/
COPY --from=build --chown=10001:10001 /out/opt/ /opt/
# Reachable from outside the container (credentials required, see above); NATS stays on loopback
# unless clustered (compose.yaml, charts/ha set HA_NATS_ADDR with HA_NATS_USER/HA_NATS_PASS).
ENV HA_HTTP_ADDR=0.0.0.0 \
  HA_PG_ADDR=0.0.0.0 \
  HA_NATS_STORE_DIR=/data/nats \
  HA_ASYNC_REPLICATION_STORE_DIR=/data/outbox
WORKDIR /data
USER ha
VOLUME /data
EXPOSE 8080 5432 4222 6222
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${HA_PORT:-8080}/healthz" >/dev/null || exit 1
ENTRYPOINT ["ha"]

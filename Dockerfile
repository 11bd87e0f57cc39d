# Postern container image (docs/deployment.md, "Containers").
#
#   docker build -t postern .
#   docker compose -f contrib/compose.yaml up -d     # with HAProxy in front
#
# Two stages: Debian 12 with the build dependencies compiles the daemon; the image that runs
# it is Debian 12 slim with only the shared libraries the binary links against.
# tests/e2e/test_packaging.py checks that the runtime list below names the package of every
# library the binary needs (readelf NEEDED + dpkg -S), and runs the HEALTHCHECK command
# against a live server.

FROM debian:12 AS build
WORKDIR /src
# The same package list `make` installs: the image and a developer machine build alike.
COPY scripts/install-deps scripts/install-deps
RUN scripts/install-deps && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPOSTERN_BENCH=OFF \
 && cmake --build build -j"$(nproc)" --target postern \
 && strip build/postern

FROM debian:12-slim
# One package per NEEDED library of build/postern; ca-certificates to verify relays and
# ACME servers; publicsuffix is the Public Suffix List libpsl reads for DMARC.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libc-ares2 \
      libcrypt1 \
      libfmt9 \
      libgcc-s1 \
      libpsl5 \
      libsodium23 \
      libspdlog1.10 \
      libssl3 \
      libstdc++6 \
      libsystemd0 \
      libtomlplusplus3 \
      publicsuffix \
 && rm -rf /var/lib/apt/lists/*
# uid/gid 5000 is the owner of docker-mailserver's /var/mail: a mail volume carried over from
# it is served as it is, without a chown.
RUN groupadd --system --gid 5000 postern \
 && useradd --system --uid 5000 --gid postern --home-dir /var/lib/postern --no-create-home \
      --shell /usr/sbin/nologin postern \
 && mkdir -p /var/lib/postern /var/mail /etc/postern/tls \
 && chown postern:postern /var/lib/postern /var/mail /etc/postern \
 && chmod 0700 /var/lib/postern /var/mail
COPY --from=build /src/build/postern /usr/local/bin/postern
# A starting point; mount your own /etc/postern (postern.toml, accounts.cf, virtual.cf, tls/).
COPY --chown=postern:postern contrib/postern.toml /etc/postern/postern.toml

# Never root at run time. The mail ports are below 1024, yet an unprivileged process may
# bind them here: Docker sets net.ipv4.ip_unprivileged_port_start=0 in every container's
# network namespace (Docker 20.10 and later; Podman does the same with its default
# settings). postern.toml says `[server] user = "postern"`, the user this already is, so
# Postern has nothing to drop. The certificate and key must be readable by uid 5000.
USER postern
EXPOSE 25 465 587
VOLUME ["/var/lib/postern", "/var/mail"]

# /healthz on the metrics listener (127.0.0.1:9465 in contrib/postern.toml; it stays
# inside the container). bash and its /dev/tcp are in the slim image, so no HTTP client
# is installed just for this.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9465 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r line <&3 && [[ $line == 'HTTP/1.'[01]' 200 '* ]]"]

# SIGTERM (docker stop) lets open transactions finish for [server] shutdown_timeout (30s):
# give the container more than that, e.g. `stop_grace_period: 45s` as in compose.yaml.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/postern"]
CMD ["serve", "--config", "/etc/postern/postern.toml"]

# governord container image.
#
#   podman build -t governord:0.1.0 .      (or docker build)
#
# Two stages: the build stage installs the compiler and -dev packages with
# scripts/deps.sh (the same list `make` uses) and builds build/governord;
# the runtime stage has only the shared libraries governord links against.
# The image runs as a numeric non-root user, so Kubernetes' runAsNonRoot can
# verify it, and needs no writable path (readOnlyRootFilesystem works).
# The Helm chart (charts/metrics-app) mounts its policy ConfigMap at
# /etc/governor, over the default policy shipped here.

FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh build
COPY Makefile ./
COPY governor/ governor/
COPY app/ app/
COPY policies/ policies/
RUN make -j"$(nproc)" build/governord && strip --strip-unneeded build/governord

FROM debian:bookworm-slim
# the runtime libraries of governord (pkg-config names in the Makefile:
# libmicrohttpd libcgroup libsystemd jansson inih hiredis nettle); libsystemd0 is in
# the base, libnettle8 comes with libmicrohttpd12 (through libgnutls30) anyway
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libmicrohttpd12 libcgroup2 libsystemd0 libjansson4 libinih1 libhiredis0.14 libnettle8 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
COPY --from=build /src/build/governord /usr/local/bin/governord
COPY policies/default.ini /etc/governor/policy.ini
USER 65532:65532
EXPOSE 8080
# listens on 0.0.0.0:8080 unless --listen or GOVERNOR_LISTEN says otherwise
ENTRYPOINT ["/usr/local/bin/governord"]
CMD ["--policy", "/etc/governor/policy.ini"]

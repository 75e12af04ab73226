# governord container image.
#
#   make image                              (podman, or docker where present)
#   podman build -t governord:0.1.0 .       (or docker build)
#
# Two stages.  The build stage (Debian bookworm) installs the compiler and
# -dev packages with scripts/deps.sh, builds libmicrohttpd from Debian's own
# source package without HTTPS (scripts/build-mhd.sh: governord never uses
# TLS, and Debian's GnuTLS-linked build would bring 6.7 MB of libraries and
# 2.4 MiB of resident memory), links governord against it, and collects the
# runtime file system (scripts/image-rootfs.sh).  The runtime stage is FROM
# scratch with only that: governord, its shared libraries and the loader,
# passwd/group entries for uid 65532 and the default policy.  No shell, no
# package manager.  The measurements behind this are in bench/README.md
# ("Image").
#
# The image runs as a numeric non-root user, so Kubernetes' runAsNonRoot can
# verify it, and needs no writable path (readOnlyRootFilesystem works).  The
# Helm chart (charts/metrics-app) mounts its policy ConfigMap at
# /etc/governor, over the default policy shipped here, and stops it with
# --shutdown-delay rather than a preStop command (there is no shell).

FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/deps.sh scripts/build-mhd.sh scripts/image-rootfs.sh scripts/
RUN scripts/deps.sh image
# `make image` mounts build/image-cache at /var/cache/governord-mhd, so
# libmicrohttpd is built once per Debian version; without it, every time
RUN mkdir -p /var/cache/governord-mhd \
 && scripts/build-mhd.sh /opt/mhd /var/cache/governord-mhd
COPY Makefile ./
COPY governor/ governor/
COPY app/ app/
COPY policies/ policies/
RUN PKG_CONFIG_PATH=/opt/mhd/lib/pkgconfig make -j"$(nproc)" build/governord \
 && scripts/image-rootfs.sh build/governord policies/default.ini /rootfs

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
EXPOSE 8080
# listens on 0.0.0.0:8080 unless --listen or GOVERNOR_LISTEN says otherwise
ENTRYPOINT ["/usr/local/bin/governord"]
CMD ["--policy", "/etc/governor/policy.ini"]

# syntax=docker/dockerfile:1
# Multi-stage build of the single static kairos binary, run as non-root.
# Works with BuildKit and with the classic builder (no --chmod, no RUN
# in the final stage: distroless has no shell).

# build compiles the static binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/kairos ./cmd/kairos
# The data directory (keys, embedded store, archive) and the cold tier of
# the cluster history (/var/lib/kairos-history, deploy/compose.cluster.yaml), prepared here with
# mode 0700 and copied below as an entry of /var/lib, owned by the image's
# non-root user (nonroot = 65532:65532 in distroless): both builders keep
# the mode of a copied entry and apply --chown to it.
RUN mkdir -p /out/varlib/kairos /out/varlib/kairos-history && chmod 0700 /out/varlib/kairos /out/varlib/kairos-history

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kairos /usr/local/bin/kairos
COPY --from=build --chown=65532:65532 /out/varlib/ /var/lib/
# The embedded store (when no KAIROS_REDIS_URL is set) persists here; a
# new named volume starts with this directory's owner and mode.
WORKDIR /var/lib/kairos
VOLUME ["/var/lib/kairos"]
USER 65532:65532
ENV KAIROS_ADDR=0.0.0.0:8080 KAIROS_DATA_DIR=/var/lib/kairos
EXPOSE 8080
# No curl in the image: the binary probes its own /readyz (on loopback,
# at $KAIROS_ADDR's port).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/kairos", "healthcheck", "--timeout", "4s"]
ENTRYPOINT ["/usr/local/bin/kairos"]
CMD ["serve"]

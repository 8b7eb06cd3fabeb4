# syntax=docker/dockerfile:1
# Multi-stage build of the single static kairos binary, run as non-root.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/kairos ./cmd/kairos

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kairos /usr/local/bin/kairos
# The embedded store (when no KAIROS_REDIS_URL is set) persists here.
WORKDIR /var/lib/kairos
VOLUME ["/var/lib/kairos"]
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kairos"]
CMD ["serve", "--addr", "0.0.0.0:8080", "--data-dir", "/var/lib/kairos"]

# syntax=docker/dockerfile:1
# Tickmesh node image: the browser client built with Node, embedded into a static Go binary, run as non-root on
# distroless. Used by docker-compose.yml (task compose:up); build alone with: docker build -t tickmesh-node .

# 1. The browser client (frontend/dist/app).
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# 2. The node binary with the client embedded, and the health check binary (the final image has no curl).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=frontend /src/frontend/dist/app ./frontend/dist/app
ENV CGO_ENABLED=0
RUN go build -trimpath -ldflags="-s -w" -o /out/tickmesh-node ./cmd/node \
 && go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./cmd/healthcheck \
 && mkdir -p /out/data

# 3. Runtime: static binaries only, user nonroot (65532). /data holds JetStream; a fresh named volume mounted
# there inherits the directory's owner, so the node can write to it.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tickmesh-node /tickmesh-node
COPY --from=build /out/healthcheck /healthcheck
COPY --from=build --chown=65532:65532 /out/data /data
USER nonroot:nonroot
ENV HTTP_ADDR=:8080 \
    NATS_ADDR=0.0.0.0:4222 \
    DATA_DIR=/data
VOLUME ["/data"]
# 8080 HTTP and WebSocket, 4222 NATS client (operators), 6222 NATS routes (other nodes).
EXPOSE 8080 4222 6222
HEALTHCHECK --interval=5s --timeout=3s --start-period=90s --retries=3 CMD ["/healthcheck", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/tickmesh-node"]

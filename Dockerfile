# syntax=docker/dockerfile:1
#
# podmedic's container image: a static Go binary on distroless (no shell, no package manager),
# running as the unprivileged user 65532.
#
#   docker build --build-arg VERSION=v0.1.0 -t ghcr.io/podmedic/podmedic:v0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=v0.1.0 ...
#
# The base images are pinned by tag; pin them by digest too (image@sha256:...) in the release
# pipeline. deploy/deploy_test.go checks this file: pinned FROM lines, a static -trimpath
# build with the version stamped in, and a distroless nonroot final stage.

# Build on the builder's own platform and cross-compile (no emulation for arm64).
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/podmedic/podmedic/internal/version.version=${VERSION}" \
      -o /out/podmedic ./cmd/podmedic

# static: CA certificates, tzdata and /etc/passwd with the nonroot user, nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/podmedic /usr/local/bin/podmedic
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/podmedic"]
CMD ["run"]

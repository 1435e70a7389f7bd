# The image of one spendledger service. One file builds all four: they differ
# only in the package built and the port, so the pinned bases, the hardening
# and the module-download layer are written (and cached) once.
#
#   docker build -f deploy/docker/service.Dockerfile \
#     --build-arg SERVICE=gateway --build-arg PORT=4000 -t spendledger-gateway .
#
# SERVICE is gateway, pricing, ledger or budget; PORT is the port it listens on
# (gateway 4000, budget 4010, ledger 4020, pricing 4030). The build context is
# the repository root (see /.dockerignore). deploy/docker-compose.yml builds
# all four with the right arguments; e2e/deploy checks this file.
#
# The binary is built from the services module alone (GOWORK=off; its go.mod
# replaces gen, ledger and migrations with their directories), so the test-only
# dependencies of the e2e module never reach an image and go.work is not
# copied. e2e/deploy checks that this resolves every dependency of the four
# services to the same version as the workspace build that `make up` and the
# e2e tests run.

# --- build ---------------------------------------------------------------
# The Go version of go.work; GOTOOLCHAIN=local makes a mismatch fail instead
# of downloading another toolchain.
FROM golang:1.26.8 AS build
ENV CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=readonly
WORKDIR /src

# Module files first: the download layer is rebuilt only when one changes.
COPY gen/go.mod gen/go.sum gen/
COPY ledger/go.mod ledger/go.sum ledger/
COPY migrations/go.mod migrations/go.sum migrations/
COPY services/go.mod services/go.sum services/
RUN cd services && go mod download

# Then the sources.
COPY gen/ gen/
COPY ledger/ ledger/
COPY migrations/ migrations/
COPY services/ services/
COPY deploy/probe/ deploy/probe/

# SERVICE only from here: a RUN after an ARG is cached per value, and the
# layers above are shared by all four images.
ARG SERVICE
RUN case "$SERVICE" in gateway|pricing|ledger|budget) ;; \
	*) echo "build arg SERVICE must be gateway, pricing, ledger or budget (got '$SERVICE')" >&2; exit 1 ;; esac
RUN --mount=type=cache,target=/root/.cache/go-build \
	cd /src/services && go build -trimpath -ldflags="-s -w" -o /out/bin/service "./$SERVICE" && \
	cd /src/deploy/probe && go build -trimpath -ldflags="-s -w" -o /out/bin/probe . && \
	mkdir -p /out/data/spendledger/spool

# --- run -----------------------------------------------------------------
# Static binaries on distroless: no shell, no package manager; CA certificates
# and tzdata included. It publishes no version tags: append @sha256:<digest>
# to pin it byte for byte.
FROM gcr.io/distroless/static-debian12:nonroot
ARG SERVICE
ARG PORT
LABEL org.opencontainers.image.title="spendledger-${SERVICE}" \
	org.opencontainers.image.description="spendledger ${SERVICE} service"
COPY --from=build /out/bin/ /usr/local/bin/
# The state directory and the spool in it, owned by the runtime user (copied
# as entries of /var/lib, so both are chowned): a volume mounted on
# /var/lib/spendledger/spool starts as that empty, writable directory.
COPY --from=build --chown=65532:65532 /out/data/ /var/lib/
WORKDIR /var/lib/spendledger
# Listen on every interface (the binaries default to 127.0.0.1, unreachable
# from outside a container); the probe takes its port from here.
ENV HTTP_ADDR=0.0.0.0:${PORT}
EXPOSE ${PORT}
# distroless's nonroot user, by number so runAsNonRoot can verify it.
USER 65532:65532
# Exec form: no shell needed. compose overrides it with the same check.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
	CMD ["/usr/local/bin/probe"]
ENTRYPOINT ["/usr/local/bin/service"]

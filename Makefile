# spendledger: an LLM gateway with an event-sourced spend ledger.
#
#   make up        start NATS, Postgres, Redis and the four services locally
#   make down      stop everything `make up` started
#   make test      unit tests and end-to-end tests against real servers
#
# Every target installs what it needs (into .bin/ or with apt), idempotently,
# so a fresh Debian machine needs only Go and make.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

REPO    := $(CURDIR)
BIN     := $(REPO)/.bin
export PATH := $(BIN):$(PATH)

# Pinned tool versions. Bump them here only.
BUF_VERSION                  := v1.75.0
PROTOC_GEN_GO_VERSION        := v1.36.12
PROTOC_GEN_CONNECT_GO_VERSION := v1.21.1
NATS_SERVER_VERSION          := v2.12.15

# Go packages of every module in the workspace (go.work), which `./...` at the
# root does not reach.
MODULES  := gen ledger migrations services e2e
UNIT_PKGS := ./gen/... ./ledger/... ./migrations/... ./services/...
E2E_PKGS  := ./e2e/...

CONFIG ?= deploy/local/demo.yaml
GO_TEST_FLAGS ?=

.PHONY: help
help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# --- tools ---------------------------------------------------------------

# A stamp per tool and version: reinstall only when the pinned version changes.
$(BIN)/.buf-$(BUF_VERSION):
	@mkdir -p $(BIN)
	GOWORK=off GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@

$(BIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION):
	@mkdir -p $(BIN)
	GOWORK=off GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@

$(BIN)/.protoc-gen-connect-go-$(PROTOC_GEN_CONNECT_GO_VERSION):
	@mkdir -p $(BIN)
	GOWORK=off GOBIN=$(BIN) go install connectrpc.com/connect/cmd/protoc-gen-connect-go@$(PROTOC_GEN_CONNECT_GO_VERSION)
	@touch $@

PROTO_TOOLS := $(BIN)/.buf-$(BUF_VERSION) $(BIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION) \
	$(BIN)/.protoc-gen-connect-go-$(PROTOC_GEN_CONNECT_GO_VERSION)

.PHONY: tools
tools: $(PROTO_TOOLS) deps ## install buf, protoc plugins and the local servers

.PHONY: deps
deps: ## install nats-server, redis-server and postgres if missing
	NATS_VERSION=$(NATS_SERVER_VERSION) deploy/local/deps.sh

# --- code generation -----------------------------------------------------

.PHONY: generate
generate: $(PROTO_TOOLS) ## regenerate gen/ from proto/
	buf generate
	cd gen && GOWORK=off go mod tidy

.PHONY: check-generated
check-generated: generate ## fail when gen/ differs from what proto/ generates
	@if [ -n "$$(git status --porcelain -- gen)" ]; then \
		echo "gen/ is stale: run 'make generate' and commit the result" >&2; \
		git status --porcelain -- gen >&2; git diff --stat -- gen >&2; exit 1; fi

# --- checks --------------------------------------------------------------

.PHONY: lint
lint: $(PROTO_TOOLS) ## gofmt, go vet, buf lint, buf breaking
	@bad=$$(gofmt -l $(MODULES)); if [ -n "$$bad" ]; then echo "not gofmt-clean:" >&2; echo "$$bad" >&2; exit 1; fi
	go vet $(UNIT_PKGS) $(E2E_PKGS)
	buf lint
	@base=$$(cat .ci/breaking-against 2>/dev/null || true); \
	if [ -n "$$base" ] && git cat-file -e "$$base^{commit}" 2>/dev/null; then \
		echo "buf breaking against $$base"; buf breaking --against ".git#ref=$$base"; \
	else echo "buf breaking: no landed base recorded in .ci/breaking-against yet; skipped"; fi

# --- tests ---------------------------------------------------------------

.PHONY: test
test: test-unit test-e2e ## unit tests, then e2e tests against real NATS, Postgres and Redis

.PHONY: test-unit
test-unit:
	go test $(GO_TEST_FLAGS) -count=1 $(UNIT_PKGS)

.PHONY: test-e2e
test-e2e: deps e2e/openainpm/node_modules/.installed
	go test $(GO_TEST_FLAGS) -count=1 -timeout 20m $(E2E_PKGS)

# The official openai npm client, pinned by package-lock.json, drives the
# gateway in e2e/openainpm.
e2e/openainpm/node_modules/.installed: e2e/openainpm/package.json e2e/openainpm/package-lock.json
	cd e2e/openainpm && npm ci --no-audit --no-fund
	@touch $@

.PHONY: bench
bench: deps ## Go benchmarks of the hot paths, then load drivers against the real stack
	go test -run '^$$' -bench . -benchmem $(UNIT_PKGS)
	go test -run '^$$' -bench . -benchtime 1x -timeout 60m ./e2e/bench/

# --- local stack ---------------------------------------------------------

.PHONY: up
up: ## start the whole stack; CONFIG=path.yaml picks the gateway config
	NATS_VERSION=$(NATS_SERVER_VERSION) CONFIG=$(CONFIG) deploy/local/up.sh

.PHONY: down
down: ## stop everything `make up` started
	deploy/local/down.sh

.PHONY: clean
clean: down ## stop the stack and delete its state under .data/
	rm -rf .data

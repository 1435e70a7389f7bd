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

# make bench runs every benchmark the issues name and the machine's own limits
# (e2e/bench/README.md), keeps the raw output in $(BENCH_RUN), and writes
# $(BENCH_MD) and $(BENCH_JSON) from it, even when a benchmark failed (its
# figures show as not measured; the target still fails). BENCH_SHORT=1 is a
# smoke run with a tenth of the load: point BENCH_MD and BENCH_JSON elsewhere.
BENCH_RUN       ?= e2e/.logs/bench
BENCH_MD        ?= BENCHMARKS.md
BENCH_JSON      ?= e2e/bench/results.json
BENCH_BASELINE  ?=
BENCH_TOLERANCE ?= 0.2
export BENCH_SHORT

.PHONY: bench
bench: deps ## all benchmarks + machine limits on the real stack; writes BENCHMARKS.md, e2e/bench/results.json
	mkdir -p $(BENCH_RUN) && rm -f $(BENCH_RUN)/figures.jsonl $(BENCH_RUN)/unit.txt $(BENCH_RUN)/e2e.txt
	status=0; \
	go test -cpu 1 -run '^$$' -bench . -benchmem $(if $(filter 1,$(BENCH_SHORT)),-benchtime 100ms) $(UNIT_PKGS) \
		2>&1 | tee $(BENCH_RUN)/unit.txt || status=$$?; \
	SPENDLEDGER_BENCH_RECORD=$(abspath $(BENCH_RUN))/figures.jsonl SPENDLEDGER_E2E_LOG_LEVEL=warn \
		go test -run '^$$' -bench . -benchtime 1x -timeout 60m ./e2e/bench/ \
		2>&1 | tee $(BENCH_RUN)/e2e.txt || status=$$?; \
	go run ./e2e/bench/report -run $(BENCH_RUN) -md $(BENCH_MD) -json $(BENCH_JSON) \
		-command "$(if $(filter 1,$(BENCH_SHORT)),BENCH_SHORT=1 )make bench" || status=$$?; \
	exit $$status

.PHONY: bench-check
bench-check: ## fail when e2e/bench/results.json misses a goal (BENCH_BASELINE=old.json: or regressed)
	go run ./e2e/bench/check $(if $(BENCH_BASELINE),-baseline $(BENCH_BASELINE) -tolerance $(BENCH_TOLERANCE)) $(BENCH_JSON)

# The randomized fault suite under load, long mode (make test runs a short
# one). CHAOS_SEED replays a run; CHAOS_DURATION, CHAOS_STEPS and CHAOS_CLIENTS
# size it. Writes e2e/chaos/REPORT.md, also when an invariant broke.
.PHONY: chaos
chaos: deps ## faults under load, checks the books; writes e2e/chaos/REPORT.md (CHAOS_SEED=, CHAOS_DURATION=)
	CHAOS_MODE=long go test -count=1 -timeout 90m -v -run '^TestChaos$$' ./e2e/chaos/

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

# pgdrill — see README.md. `make help` lists the targets.
GO          ?= go
BIN         ?= bin/pgdrill
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X github.com/pgdrill/pgdrill/cmd/pgdrill/internal/cli.version=$(VERSION)
# Ginkgo's own timeout stays below go test's, so cleanups (server teardown) still run.
TEST_TIMEOUT ?= 25m
BENCHTIME   ?= 5x

.PHONY: help build run test test-fast bench lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/pgdrill
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/pgdrill

run: build ## the main job: the default drill (wrong-id-deletion) on the local provider
	./$(BIN) run

test: ## the whole suite against real Postgres servers, race detector on (what CI runs)
	mkdir -p $(CURDIR)/test-artifacts
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -artifacts -outputdir $(CURDIR)/test-artifacts ./...

test-fast: ## the suite without slow specs
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./... -ginkgo.label-filter='!slow'

bench: ## benchmarks, printed as ratios against the raw tools doing the same work
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 60m ./...

lint: ## gofmt and go vet
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean: ## remove build output and every cluster pgdrill recorded
	rm -rf bin
	-$(GO) run ./cmd/pgdrill down --all

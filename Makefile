# pgdrill — see README.md. `make help` lists the targets.
GO          ?= go
BIN         ?= bin/pgdrill
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X github.com/pgdrill/pgdrill/cmd/pgdrill/internal/cli.version=$(VERSION)
# Ginkgo's own timeout stays below go test's, so cleanups (server teardown) still run.
TEST_TIMEOUT ?= 25m
BENCHTIME   ?= 5x
FUZZTIME    ?= 15s
# Every suite appends here the specs it skipped for a missing tool; `make test` prints it last.
NOT_RUN     := $(CURDIR)/test-artifacts/not-run.txt

# The Debian packages each target needs: .ci/deps installs what is missing when run as root, and
# otherwise stops at once with the apt-get line to run.
RUN_PACKAGES  := postgresql-15 postgresql-client-15
TEST_PACKAGES := $(RUN_PACKAGES) pgbackrest ca-certificates chromium mmdebstrap iproute2

.PHONY: help deps-run deps-test image-test build run test test-fast bench fuzz lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

deps-run: ## install (as root) or name the Debian packages `make run` needs
	@.ci/deps $(RUN_PACKAGES)

deps-test: ## install (as root) or name the Debian packages `make test` needs
	@.ci/deps $(TEST_PACKAGES)

image-test: ## build the Postgres image the Docker specs run, where a Docker engine answers and it is missing
	@if docker version >/dev/null 2>&1; then $(GO) run ./cmd/pgdrill image build --if-missing --log-level warn; \
	else echo "no Docker engine answers: the specs labelled docker will not run"; fi

build: ## build bin/pgdrill
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/pgdrill

run: deps-run build ## the main job: the default drill (wrong-id-deletion) on the local provider
	./$(BIN) run

test: deps-test image-test ## the whole suite against real Postgres servers, race detector on (what CI runs)
	mkdir -p $(CURDIR)/test-artifacts
	rm -f $(NOT_RUN)
	@status=0; PGDRILL_NOT_RUN_FILE=$(NOT_RUN) $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) \
		-artifacts -outputdir $(CURDIR)/test-artifacts ./... || status=$$?; \
	if [ -s $(NOT_RUN) ]; then cat $(NOT_RUN); fi; exit $$status

test-fast: deps-test image-test ## the suite without slow specs
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./... -ginkgo.label-filter='!slow'

bench: deps-test image-test ## benchmarks, printed as ratios against the raw tools doing the same work
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 60m ./...

fuzz: ## fuzz the scenario decoder and the objective parser, $(FUZZTIME) each (new crashers land in testdata/fuzz)
	$(GO) test -run '^$$' -fuzz '^FuzzScenario$$' -fuzztime $(FUZZTIME) -parallel 1 ./scenarios/
	$(GO) test -run '^$$' -fuzz '^FuzzObjective$$' -fuzztime $(FUZZTIME) -parallel 1 ./harness/objective/

lint: ## gofmt, go vet, and go.mod/go.sum tidy (direct dependencies not marked indirect)
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod is not tidy: run go mod tidy"; exit 1; }

clean: ## remove build output and every cluster pgdrill recorded
	rm -rf bin
	-$(GO) run ./cmd/pgdrill down --all

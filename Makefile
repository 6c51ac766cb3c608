# gpunet: a decentralized GPU compute marketplace on its own Cosmos SDK chain.

GO        ?= go
BUILD_DIR ?= build
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SDK       := github.com/cosmos/cosmos-sdk/version
LDFLAGS   := -X $(SDK).Name=gpunet -X $(SDK).AppName=gpunetd \
             -X $(SDK).Version=$(VERSION) -X $(SDK).Commit=$(COMMIT)
VALIDATORS ?= 1
LOCALNET_DIR ?= $(HOME)/.gpunet-localnet

# Packages run by test-unit: everything except the black-box suites.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v /tests/)

.PHONY: all setup build install test test-unit test-e2e test-sim test-sim-long test-fuzz lint \
        proto-gen proto-check localnet localnet-down localnet-status demo bench bench-quick clean \
        k8s-build k8s-up k8s-down

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BUILD_DIR)/gpunetd ./cmd/gpunetd
	$(GO) build -ldflags '-X main.version=$(VERSION)' -o $(BUILD_DIR)/gpunet-provider ./cmd/gpunet-provider
	$(GO) build -o $(BUILD_DIR)/localnet ./cmd/localnet

install:
	$(GO) install -ldflags '$(LDFLAGS)' ./cmd/gpunetd
	$(GO) install -ldflags '-X main.version=$(VERSION)' ./cmd/gpunet-provider

# The whole suite: unit and keeper tests (with the short simulation), each
# fuzz target for FUZZTIME, then the black-box tests that run real gpunetd
# processes. This is what CI runs.
test: setup lint proto-check test-unit test-fuzz test-e2e

# Installs and starts what Go does not bring (protoc, a Docker engine).
setup:
	scripts/setup.sh

# The daemon, the tenant client and the SDL parser also run under the race
# detector: they are the concurrent code.
RACE_PKGS = ./provider/... ./tenant/... ./sdl/...
test-unit:
	$(GO) test -count=1 $(UNIT_PKGS)
	$(GO) test -count=1 -race $(RACE_PKGS)

# The full-app simulation: random transactions for every gpunet message with
# every invariant checked after each block, export/import half way, and the
# determinism check (same seed, same app hashes). test-unit runs the short
# version; SIM_BLOCKS and SIM_SEEDS change it.
SIM_BLOCKS ?= 200
SIM_SEEDS  ?= 1,2,3
test-sim:
	$(GO) test -count=1 -timeout 60m -run '^TestSimulation' ./app/ -v -sim.blocks=$(SIM_BLOCKS) -sim.seeds=$(SIM_SEEDS)

test-sim-long:
	$(MAKE) test-sim SIM_BLOCKS=1500 SIM_SEEDS=1,2,3,4,5,6,7,8,9,10

# Every fuzz target for FUZZTIME each. Inputs that fail are written to the
# package's testdata/fuzz (commit them: they become regression seeds); the
# generated corpus stays in the Go cache between runs.
FUZZTIME ?= 10s
FUZZ_TARGETS = ./sdl:FuzzParse ./provider/leaseauth:FuzzVerify \
               ./provider/daemon:FuzzManifestRequest ./app:FuzzMsgServer
#
# Go's fuzzing engine can fail a run with "context deadline exceeded" and no
# failing input when -fuzztime ends while a worker is mid-input: such a run
# is repeated once. A run that wrote a failing input, or failed any other
# way, fails the target.
test-fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
	  for try in 1 2; do \
	    if out=$$($(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg 2>&1); then echo "$$out"; break; fi; \
	    echo "$$out"; \
	    if [ $$try = 2 ] || echo "$$out" | grep -q 'Failing input written' || ! echo "$$out" | grep -q 'context deadline exceeded'; then exit 1; fi; \
	    echo "fuzz $$fn: the engine's own deadline ran out with no failing input; running it again"; \
	  done; \
	done

# The Kubernetes server binaries are built first (once; cached), so their
# build does not count against the suite's timeout: TestKubernetes starts
# the local cluster with them.
# The browser tests' screenshots are kept in build/e2e-artifacts.
test-e2e: build k8s-build
	mkdir -p $(BUILD_DIR)/e2e-artifacts
	GPUNETD_BIN=$(abspath $(BUILD_DIR)/gpunetd) GPUNET_PROVIDER_BIN=$(abspath $(BUILD_DIR)/gpunet-provider) \
	  $(GO) test -count=1 -timeout 40m -v -artifacts -outputdir $(abspath $(BUILD_DIR))/e2e-artifacts ./tests/...

# gofmt, go vet, errcheck and staticcheck (pinned in tools/go.mod, built
# from the module cache) over the whole tree (go vet also over the
# upgradetest build that rehearses upgrades), and no tracked file over 1 MB.
LINT_TOOLS = $(BUILD_DIR)/tools
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\(\.gw\)\?\.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	scripts/check-large-files.sh
	$(GO) vet ./...
	$(GO) vet -tags upgradetest ./app/... ./x/market/...
	cd tools && $(GO) build -o $(abspath $(LINT_TOOLS))/ github.com/kisielk/errcheck honnef.co/go/tools/cmd/staticcheck
	$(LINT_TOOLS)/errcheck -ignoretests -exclude .errcheck-excludes ./...
	$(LINT_TOOLS)/staticcheck ./...

proto-gen:
	scripts/protocgen.sh

# Fails when the committed generated code differs from what proto-gen makes.
proto-check:
	scripts/protocgen.sh --check

localnet: build
	$(BUILD_DIR)/localnet up --config config.yml --dir $(LOCALNET_DIR) --binary $(BUILD_DIR)/gpunetd --validators $(VALIDATORS)

# A one-node Kubernetes cluster on loopback for the Kubernetes runtime: its
# server binaries are built once from the Go module proxy into
# ~/.cache/gpunet (about ten minutes), then start in about fifteen
# seconds; k8s-down stops it and undoes every change to the host.
K8S_SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -E)
k8s-build:
	scripts/k8s/build.sh
k8s-up: k8s-build
	$(K8S_SUDO) scripts/k8s/up.sh
k8s-down:
	$(K8S_SUDO) scripts/k8s/down.sh

localnet-down:
	@$(GO) build -o $(BUILD_DIR)/localnet ./cmd/localnet
	$(BUILD_DIR)/localnet down --dir $(LOCALNET_DIR)

localnet-status:
	@$(GO) build -o $(BUILD_DIR)/localnet ./cmd/localnet
	$(BUILD_DIR)/localnet status --dir $(LOCALNET_DIR)

# The main job (scripts/demo.sh): a local chain, a provider daemon running
# Docker and a tenant renting a GPU slot end to end — examples/gpu-job.yaml
# deployed with --follow, its output, the lease closing and the settlement.
# KEEP=1 leaves the chain and daemon running; SDL=file deploys another file.
demo:
	scripts/demo.sh

# The figures of ARCHITECTURE.md §6 as one table (docs/benchmarks.md):
# in-process Go benchmarks (transaction execution and gas, EndBlock with 1k/
# 10k/100k live leases, state per lease) and, on a local chain with a real
# provider daemon and Docker, rental latency (again with 0.5 s blocks) and
# the daemon's footprint.
# Medians over repeated runs (-count). BENCH_JSON=path also writes them as
# JSON. Takes ~35 minutes on 2 cores.
bench: setup build
	$(GO) build -o $(BUILD_DIR)/gpunet-bench ./cmd/gpunet-bench
	$(GO) test -run '^$$' -bench 'TxExecution' -benchtime 300x -count 5 ./app/ | tee $(BUILD_DIR)/gobench.txt
	$(GO) test -run '^$$' -bench 'StatePerLease' -benchtime 1x -count 1 ./app/ | tee -a $(BUILD_DIR)/gobench.txt
	$(GO) test -run '^$$' -bench 'AttestGas' -benchtime 3x -count 1 ./app/ | tee -a $(BUILD_DIR)/gobench.txt
	$(GO) test -run '^$$' -bench 'EndBlock' -benchtime 200x -count 5 -timeout 60m ./app/ | tee -a $(BUILD_DIR)/gobench.txt
	$(BUILD_DIR)/gpunet-bench -gobench $(BUILD_DIR)/gobench.txt $(if $(BENCH_JSON),-json $(BENCH_JSON))
	$(BUILD_DIR)/gpunet-bench -only latency -block-time 500ms $(if $(BENCH_JSON),-json $(basename $(BENCH_JSON))-500ms.json)

# The in-process rows only (transaction execution and gas, state per lease),
# with their targets: a few minutes, no chain or Docker needed.
bench-quick:
	$(GO) build -o $(BUILD_DIR)/gpunet-bench ./cmd/gpunet-bench
	$(GO) test -run '^$$' -bench 'TxExecution' -benchtime 300x -count 5 ./app/ | tee $(BUILD_DIR)/gobench-quick.txt
	$(GO) test -run '^$$' -bench 'StatePerLease' -benchtime 1x -count 1 ./app/ | tee -a $(BUILD_DIR)/gobench-quick.txt
	$(GO) test -run '^$$' -bench 'AttestGas' -benchtime 3x -count 1 ./app/ | tee -a $(BUILD_DIR)/gobench-quick.txt
	$(BUILD_DIR)/gpunet-bench -no-network -gobench $(BUILD_DIR)/gobench-quick.txt $(if $(BENCH_JSON),-json $(BENCH_JSON))

clean:
	rm -rf $(BUILD_DIR)

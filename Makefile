# podmedic — build, test, demo, bench, lint. Everything it needs comes from the Go module proxy.
GO        ?= go
BIN       := bin/podmedic
PKGS      := ./...
# Packages with concurrency run under the race detector.
RACE_PKGS := ./airflow/... ./overrides/... ./webhook/... ./bus/... ./watchers/... ./rules/... ./audit/... ./app/... ./notifier/... ./actions/... ./schedule/... ./internal/memapi/... ./internal/retry/...
TESTBINS  := .cache/bin
export PODMEDIC_TESTBIN_DIR := $(CURDIR)/$(TESTBINS)

.PHONY: all build test unit race e2e testbins browser demo bench lint fmt vet fuzz manifests bench-micro faults clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/podmedic

## test: everything CI runs — lint, unit tests, race tests, and the e2e tests against a real
## kube-apiserver + etcd (built once into .cache/bin, cached afterwards).
test: lint testbins browser
	PODMEDIC_REQUIRE_E2E=1 $(GO) test -count=1 -timeout 20m $(PKGS)
	PODMEDIC_REQUIRE_E2E=1 $(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)

unit:
	$(GO) test -count=1 -short $(PKGS)

race:
	$(GO) test -race -count=1 $(RACE_PKGS)

e2e: testbins
	PODMEDIC_REQUIRE_E2E=1 $(GO) test -count=1 -timeout 20m -v ./e2e/...

## faults: the fault tests (kill -9 with pending proposals, NATS and kube-apiserver restarts during
## storms, a 10,000-pod budget storm, replicas on a 3-node NATS cluster); each prints its figures.
faults: testbins
	PODMEDIC_REQUIRE_E2E=1 $(GO) test -tags faults -run '^TestFault' -count=1 -timeout 40m -v ./e2e/

## testbins: kube-apiserver, etcd and nats-server built from the module proxy (cached).
testbins:
	hack/testbins.sh all

## browser: headless Chromium for the inbox's browser test (Debian's package; needs root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (Debian package) for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

demo:
	$(GO) run ./cmd/podmedic demo

## bench: the figures of the performance issue as one JSON object (20,000 pods in a real
## kube-apiserver, the real binary measured from outside); bench-micro: the Go benchmarks.
bench:
	hack/bench.sh

bench-micro:
	hack/bench.sh -micro

lint: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^hack/testbins/')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)
	$(GO) vet -tags faults ./e2e/

## fuzz: each fuzz target for FUZZTIME (default 30s); the seed corpora (f.Add and testdata/fuzz)
## run in every `make test`.
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./config -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rules -run '^$$' -fuzz '^FuzzDecodePod$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rules -run '^$$' -fuzz '^FuzzReadDump$$' -fuzztime $(FUZZTIME)
	$(GO) test ./bus -run '^$$' -fuzz '^FuzzDecodeObservation$$' -fuzztime $(FUZZTIME)
	$(GO) test ./bus -run '^$$' -fuzz '^FuzzDecodeFrame$$' -fuzztime $(FUZZTIME)
	$(GO) test ./bus -run '^$$' -fuzz '^FuzzEnvelopeDecodeFastPath$$' -fuzztime $(FUZZTIME)
	$(GO) test ./bus -run '^$$' -fuzz '^FuzzEnvelopeEncodeFastPath$$' -fuzztime $(FUZZTIME)
	$(GO) test ./notifier/slack -run '^$$' -fuzz '^FuzzInteraction$$' -fuzztime $(FUZZTIME)
	$(GO) test ./webhook -run '^$$' -fuzz '^FuzzDecodeReview$$' -fuzztime $(FUZZTIME)

## manifests: regenerate deploy/manifests (and the chart's copy of rules.yaml) from the chart
manifests:
	deploy/render.sh

clean:
	rm -rf bin

# obol's developer entry points. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/obol/obol/internal/cmd/version.Version=$(VERSION)
GOLANGCI_LINT := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
BENCH ?= .
BENCHTIME ?= 10x

.PHONY: build gateway git-endpoint image git-image check test fuzz e2e e2e-bench lint bench generate demo clean

build: ## build bin/obol and bin/obol-full, the rest of the CLI it runs (install both side by side)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/obol ./cmd/obol
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/obol-full ./cmd/obol-full

# The image is tagged with the chart's appVersion, the tag the chart deploys by default, so an
# image imported into a local cluster is the one the offers use.
GATEWAY_ARCH ?= amd64
GATEWAY_VERSION ?= $(shell sed -n 's/^appVersion: *"*\([^"]*\)"*/\1/p' charts/obol-gateway/Chart.yaml)
IMAGE ?= ghcr.io/obol/obol-gateway:$(GATEWAY_VERSION)

gateway: ## build bin/obol-gateway, static linux
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GATEWAY_ARCH) $(GO) build -trimpath -ldflags "-s -w -X main.version=$(GATEWAY_VERSION)" -o $(BIN)/obol-gateway ./cmd/obol-gateway

git-endpoint: ## build bin/obol-git, the read-only smart-HTTP git endpoint, static linux
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GATEWAY_ARCH) $(GO) build -trimpath -ldflags "-s -w -X main.version=$(GATEWAY_VERSION)" -o $(BIN)/obol-git ./cmd/obol-git

git-image: git-endpoint ## obol-git's OCI image, without Docker: bin/obol-git.tar and bin/obol-git-oci
	$(GO) run ./hack/mkimage --binary $(BIN)/obol-git --tag ghcr.io/obol/obol-git:$(GATEWAY_VERSION) --path /usr/local/bin/obol-git --port 8080 --arch $(GATEWAY_ARCH) --out $(BIN)/obol-git.tar --layout $(BIN)/obol-git-oci

image: gateway ## the gateway's OCI image, without Docker: bin/obol-gateway.tar (docker-save: k3d image import, ctr images import) and bin/obol-gateway-oci (OCI layout)
	$(GO) run ./hack/mkimage --binary $(BIN)/obol-gateway --tag $(IMAGE) --arch $(GATEWAY_ARCH) --out $(BIN)/obol-gateway.tar --layout $(BIN)/obol-gateway-oci

check: test fuzz e2e ## everything CI runs: the quick tests, every fuzz target briefly, then the end-to-end test (.ci/run)

test: ## vet, then every test with the race detector
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 25m ./...

FUZZTIME ?= 10s
fuzz: ## run every Go fuzz target in the module for FUZZTIME each (scripts/fuzz.sh finds them)
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# The end-to-end test on a real cluster on this machine (scripts/e2e/up.sh, as root): the control
# plane and a real node (kubelet, containerd, runc, CNI, kube-proxy, CoreDNS) as host processes;
# the Flux controllers, obol-git and every gateway run as pods on it, from images built here.
# setup.sh installs the Debian packages and builds the binaries and the Flux images once into
# ~/.cache/obol-e2e (about 35 minutes on 2 cores cold; nothing when warm); images.sh builds this
# checkout's images. Not part of the quick `make test`.
E2E_STATE ?= /tmp/obol-e2e
E2E_RUN = ./scripts/e2e/setup.sh && export OBOL_E2E_STATE=$(E2E_STATE) && ./scripts/e2e/images.sh && ./scripts/e2e/up.sh && \
	{ OBOL_E2E=1 $(GO) test -count=1 -v $(1) ./test/e2e/; rc=$$?; ./scripts/e2e/down.sh; exit $$rc; }
e2e: ## end-to-end: build the cluster (cached) and the images, start it, run test/e2e, stop it
	$(call E2E_RUN,-run Test -timeout 30m)

e2e-bench: ## on the real node: commit -> offer Ready p50/p95 with and without the trigger, stack up with 100 offers, memory
	$(call E2E_RUN,-run '^$$' -bench BenchmarkConvergence -benchtime 1x -timeout 30m)

lint: ## gofmt, go vet and golangci-lint
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(GOLANGCI_LINT) run ./...

bench: ## benchmarks; figures are ratios against a baseline measured in the same run
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem ./...

generate: ## regenerate deepcopy code, the ServiceOffer CRD and the Flux CRDs
	$(GO) tool controller-gen object paths=./api/...
	$(GO) tool controller-gen crd paths=./api/... output:crd:dir=templates/infrastructure/crds
	./scripts/gen-flux-crds.sh
	./scripts/gen-flux-components.sh
	./scripts/gen-gateway-api-crds.sh
	./scripts/gen-argocd-crds.sh

demo: build ## the 30-second walkthrough, in a throwaway stack repo
	./scripts/demo.sh $(BIN)/obol

clean:
	rm -rf $(BIN)

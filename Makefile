# keyferry — the two commands are `make dev` and `make test`.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

K8S_VERSION ?= v1.37.1
CONTROL_PLANE := bin/k8s/$(K8S_VERSION)
export KEYFERRY_CONTROL_PLANE ?= $(abspath $(CONTROL_PLANE))
GOTEST_FLAGS ?=

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(CONTROL_PLANE)/kube-apiserver:
	K8S_VERSION=$(K8S_VERSION) hack/control-plane.sh

.PHONY: control-plane
control-plane: $(CONTROL_PLANE)/kube-apiserver ## build kube-apiserver, etcd, kube-controller-manager into bin/k8s

.PHONY: generate
generate: ## regenerate deepcopy and CRDs (config/crd)
	go tool controller-gen object paths=./apis/...
	rm -f config/crd/*.yaml
	go tool controller-gen crd paths=./apis/... output:crd:artifacts:config=config/crd

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

.PHONY: build
build: ## build bin/keyferry
	CGO_ENABLED=0 go build -trimpath -o bin/keyferry ./cmd/keyferry

VAULT_VERSION ?= v1.21.0
export KEYFERRY_VAULT_BIN ?= $(abspath bin/vault/$(VAULT_VERSION)/vault)
export KEYFERRY_GCPSM_EMULATOR_BIN ?= $(abspath bin/gcp-sm-emulator)

$(KEYFERRY_VAULT_BIN):
	VAULT_VERSION=$(VAULT_VERSION) hack/vault.sh

.PHONY: vault
vault: $(KEYFERRY_VAULT_BIN) ## build the Vault server the vault provider tests run against

$(KEYFERRY_GCPSM_EMULATOR_BIN): go.mod
	CGO_ENABLED=0 go build -trimpath -o $@ github.com/blackwell-systems/gcp-secret-manager-emulator/cmd/server

.PHONY: moto
moto: ## check that moto_server (AWS test server) is installed
	@command -v moto_server >/dev/null || { echo "moto_server not found: the aws provider tests need moto (Python moto 5.x, on this machine image)"; exit 1; }

.PHONY: test-servers
test-servers: control-plane vault moto $(KEYFERRY_GCPSM_EMULATOR_BIN) ## build or find the real servers the tests run against

.PHONY: test
test: lint test-servers ## unit and integration tests against the real control plane and servers
	go test $(GOTEST_FLAGS) ./...

.PHONY: dev
dev: control-plane ## local control plane + operator + the quickstart example
	go run ./cmd/keyferry dev

.PHONY: clean
clean:
	rm -rf bin .keyferry

BENCH_FLAGS ?=
.PHONY: bench
bench: control-plane build ## scale benchmark at 1,000 ExternalSecrets (BENCH_FLAGS="-n 10000 -namespaces 50" for 10k)
	go run ./bench $(BENCH_FLAGS)

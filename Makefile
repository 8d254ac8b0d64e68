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
generate: ## regenerate deepcopy, CRDs (config/crd) and the chart's CRD templates
	go tool controller-gen object paths=./apis/...
	rm -f config/crd/*.yaml
	go tool controller-gen crd paths=./apis/... output:crd:artifacts:config=config/crd
	go run ./hack/chartcrds -in config/crd -out deploy/chart/keyferry/templates/crds

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

# Fuzz targets run by `make test` for a short fixed time each (package:target).
FUZZ_SHORT := internal/engine/render:FuzzTemplateBudget internal/engine/render:FuzzTemplateErrorsNeverQuoteValues internal/engine/render:FuzzRender internal/engine/render:FuzzParsePath \
	internal/engine/render:FuzzPKCS12 internal/engine/render:FuzzCertPEM internal/engine/render:FuzzJWK internal/preview:FuzzRenderManifest internal/engine:FuzzMergedKeysRecord internal/engine:FuzzParseObjectRef internal/engine:FuzzParseGeneratedRecord internal/engine/values:FuzzMerge \
	apis/externalsecrets/v1:FuzzSecondsOrDuration apis/externalsecrets/v1:FuzzDuration apis/externalsecrets/v1:FuzzTime \
	internal/provider:FuzzParseIdentityGrants internal/provider:FuzzFindMatcher internal/provider/webhook:FuzzScopedToNamespaceIsSound internal/provider/webhook:FuzzGeneratedKeys internal/provider/webhook:FuzzPushRequest internal/provider/aws/classobjects:FuzzParse internal/provider/aws/ecrtoken:FuzzParse internal/provider/aws:FuzzPropertyValue internal/provider/aws:FuzzParsePushMetadata \
	internal/provider/gcpsm:FuzzParseClassSecrets internal/provider/vault:FuzzParseClassObjects internal/generator:FuzzPassword internal/generator:FuzzParseVaultDynamicSecret internal/generator:FuzzParseGCRAccessToken internal/controller/unsupported:FuzzObjectChecks \
	internal/provider/csiplugin:FuzzReadResponse internal/provider/csiplugin:FuzzValidateSpec \
	internal/provider/azurekv:FuzzPushValues internal/provider/azurekv:FuzzPushMetadata internal/provider/azurekv:FuzzParseRegistry internal/provider/gcpsm:FuzzPushPayload internal/provider/gcpsm:FuzzParsePushMetadata \
	internal/provider/vault:FuzzParsePushMetadata internal/provider/kubernetes:FuzzParsePushMetadata
FUZZTIME ?= 10s

.PHONY: fuzz-short
# A run that ends in "context deadline exceeded" with no failing input
# written is Go 1.26's fuzztime race (go.dev/issue/75804, fixed in Go 1.27),
# not a finding: that target runs again, up to three runs in all (with 40
# targets, one race per make test is common and a race in the one re-run
# happened often enough to fail CI now and then).
fuzz-short: ## run the FUZZ_SHORT fuzz targets briefly (FUZZTIME=10s each; part of make test)
	@for f in $(FUZZ_SHORT); do \
		n=0; \
		while :; do \
			n=$$((n+1)); \
			echo "fuzz $${f#*:} ($(FUZZTIME))"; \
			out=$$(go test ./$${f%%:*}/ -run '^$$' -fuzz "^$${f#*:}$$" -fuzztime $(FUZZTIME) -parallel 1 2>&1); rc=$$?; \
			echo "$$out"; \
			if [ $$rc -eq 0 ]; then break; fi; \
			if [ $$n -lt 3 ] && echo "$$out" | grep -q "context deadline exceeded" && ! echo "$$out" | grep -q "Failing input written"; then \
				echo "fuzz $${f#*:}: Go's fuzztime race (go.dev/issue/75804), no failing input; running it again"; \
				continue; \
			fi; \
			exit 1; \
		done; \
	done

.PHONY: test
test: lint test-servers fuzz-short ## unit and integration tests against the real control plane and servers
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

# Container images, built without Docker or a base image (hack/image); see docs/install.md.
IMAGE_REPOSITORY ?= ghcr.io/keyferry/keyferry
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_TAG ?= $(subst +,-,$(VERSION))
PAUSE_IMAGE ?= keyferry.local/pause:1.0.0
IMAGE_FLAGS := -ref $(IMAGE_REPOSITORY):$(IMAGE_TAG) -version $(VERSION) -revision $(REVISION) -created $(SOURCE_DATE_EPOCH)
export KEYFERRY_IMAGE ?= $(abspath bin/image/keyferry.tar)
export KEYFERRY_PAUSE_IMAGE ?= $(abspath bin/image/pause.tar)

.PHONY: FORCE
FORCE:

# go build reuses its cache (seconds when nothing changed), and hack/image
# rewrites a tarball only when the image's digest changed.
bin/image/keyferry: FORCE
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $@ ./cmd/keyferry
bin/image/pause: FORCE
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $@ ./hack/pause
bin/image/keyferry.flags: FORCE
	@mkdir -p $(@D); echo '$(IMAGE_FLAGS)' | cmp -s - $@ || echo '$(IMAGE_FLAGS)' > $@
bin/image/keyferry.tar: bin/image/keyferry bin/image/keyferry.flags hack/image/main.go
	go run ./hack/image -binary $< -args controller $(IMAGE_FLAGS) -out $@
bin/image/pause.tar: bin/image/pause hack/image/main.go
	go run ./hack/image -binary $< -ref $(PAUSE_IMAGE) -version 1.0.0 -created 0 -ca-certs "" -out $@

.PHONY: image
image: bin/image/keyferry.tar bin/image/pause.tar ## operator image + pause image (docker-archive tarballs) into bin/image
	@ls -l bin/image/*.tar; cat bin/image/*.digest

# A one-node cluster (kubelet + containerd) for test/node; see docs/install.md.
NODE_DIR := bin/node/$(K8S_VERSION)
export KEYFERRY_NODE_BIN ?= $(abspath $(NODE_DIR))

.PHONY: node
node: ## kubelet, kube-scheduler, containerd into bin/node; runc, CNI plugins, iptables from apt
	K8S_VERSION=$(K8S_VERSION) hack/node.sh

.PHONY: test-node
test-node: control-plane vault node image ## the chart on a real one-node cluster (root; test/node)
	KEYFERRY_NODE=1 go test -count=1 -timeout 30m $(GOTEST_FLAGS) ./test/node/

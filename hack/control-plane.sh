#!/usr/bin/env bash
# Builds kube-apiserver, etcd and kube-controller-manager from the Go module proxy
# into bin/k8s/<version>/, for envtest and `keyferry dev`. The usual envtest binary
# download is not reachable here, so the project builds its own control plane.
# Skips the work when the binaries are already present.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.1}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${root}/bin/k8s/${K8S_VERSION}"

if [[ -x "${out}/kube-apiserver" && -x "${out}/etcd" && -x "${out}/kube-controller-manager" ]]; then
  exit 0
fi
mkdir -p "${out}"

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
cd "${work}"

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
staging="v0.${K8S_VERSION#v1.}"

cat > go.mod <<MOD
module keyferry.local/controlplane

go 1.26

require k8s.io/kubernetes ${K8S_VERSION}
MOD

# k8s.io/kubernetes replaces its staging modules with ./staging/...; point each at
# the published module of the matching version instead.
go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" > dl.json
kmod="$(sed -n 's/.*"GoMod": "\(.*\)",*/\1/p' dl.json)"
grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "${kmod}" | awk '{print $1}' | sort -u | while read -r m; do
  echo "replace ${m} => ${m} ${staging}" >> go.mod
done

go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@${K8S_VERSION}" \
  "k8s.io/kubernetes/cmd/kube-controller-manager@${K8S_VERSION}" \
  "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
done

export CGO_ENABLED=0
go build -trimpath -ldflags "${ldflags}" -o "${out}/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "${ldflags}" -o "${out}/kube-controller-manager.tmp" k8s.io/kubernetes/cmd/kube-controller-manager
go build -trimpath -ldflags "-s -w" -o "${out}/etcd.tmp" go.etcd.io/etcd/server/v3
for b in kube-apiserver kube-controller-manager etcd; do mv "${out}/${b}.tmp" "${out}/${b}"; done
echo "control plane ${K8S_VERSION} (etcd ${ETCD_VERSION}) in ${out}"

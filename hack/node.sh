#!/usr/bin/env bash
# Builds what a one-node cluster needs beside the control plane (hack/control-plane.sh):
# kube-scheduler and kubelet from the same k8s.io/kubernetes wrapper module, and
# containerd with its runc shim from the Go module proxy, into bin/node/<k8s version>/.
# Installs Debian's runc, CNI plugins (/usr/lib/cni), iptables and iproute2 when missing
# (CI runs this as root on a fresh machine). Skips the work already done.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.1}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${root}/bin/node/${K8S_VERSION}"

# Debian packages: runc, the CNI plugins, iptables and ip (iproute2).
if ! command -v runc >/dev/null || [[ ! -x /usr/lib/cni/bridge ]] || ! command -v iptables >/dev/null || ! command -v ip >/dev/null; then
  if [[ "$(id -u)" != 0 ]]; then
    echo "node: runc, containernetworking-plugins, iptables or iproute2 is missing; run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends runc containernetworking-plugins iptables iproute2
fi

need=()
for b in kubelet kube-scheduler containerd containerd-shim-runc-v2 ctr; do
  [[ -x "${out}/${b}" ]] || need+=("${b}")
done
if [[ ${#need[@]} -eq 0 ]]; then
  exit 0
fi
mkdir -p "${out}"

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
export CGO_ENABLED=0

# containerd: its own module, so its own wrapper (its dependency versions must not
# mix with the Kubernetes ones).
if [[ ! -x "${out}/containerd" || ! -x "${out}/containerd-shim-runc-v2" || ! -x "${out}/ctr" ]]; then
  mkdir -p "${work}/containerd"
  cd "${work}/containerd"
  cat > go.mod <<MOD
module keyferry.local/containerd

go 1.26
MOD
  go get -tool "github.com/containerd/containerd/v2/cmd/containerd@${CONTAINERD_VERSION}" \
    "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@${CONTAINERD_VERSION}" \
    "github.com/containerd/containerd/v2/cmd/ctr@${CONTAINERD_VERSION}"
  cldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION}"
  for b in containerd containerd-shim-runc-v2 ctr; do
    go build -trimpath -tags no_btrfs -ldflags "${cldflags}" -o "${out}/${b}.tmp" "github.com/containerd/containerd/v2/cmd/${b}"
    mv "${out}/${b}.tmp" "${out}/${b}"
  done
fi

if [[ ! -x "${out}/kubelet" || ! -x "${out}/kube-scheduler" ]]; then
  mkdir -p "${work}/k8s"
  cd "${work}/k8s"
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  staging="v0.${K8S_VERSION#v1.}"
  cat > go.mod <<MOD
module keyferry.local/node

go 1.26

require k8s.io/kubernetes ${K8S_VERSION}
MOD
  # Same as hack/control-plane.sh: point each staging replace at the published module.
  go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" > dl.json
  kmod="$(sed -n 's/.*"GoMod": "\(.*\)",*/\1/p' dl.json)"
  grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "${kmod}" | awk '{print $1}' | sort -u | while read -r m; do
    echo "replace ${m} => ${m} ${staging}" >> go.mod
  done
  go get -tool "k8s.io/kubernetes/cmd/kubelet@${K8S_VERSION}" "k8s.io/kubernetes/cmd/kube-scheduler@${K8S_VERSION}"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
  done
  for b in kube-scheduler kubelet; do
    go build -trimpath -ldflags "${ldflags}" -o "${out}/${b}.tmp" "k8s.io/kubernetes/cmd/${b}"
    mv "${out}/${b}.tmp" "${out}/${b}"
  done
fi
echo "node ${K8S_VERSION} (containerd ${CONTAINERD_VERSION}) in ${out}"

#!/usr/bin/env bash
# Builds a HashiCorp Vault server from the Go module proxy into
# bin/vault/<version>/vault, for the vault provider's tests (`vault server -dev`).
# Skips the work when the binary is already present.
set -euo pipefail

VAULT_VERSION="${VAULT_VERSION:-v1.21.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${root}/bin/vault/${VAULT_VERSION}"
[[ -x "${out}/vault" ]] && exit 0
mkdir -p "${out}"

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
cd "${work}"

# Newer Vault tags do not build against any published sdk; two of v1.21.0's
# dependencies moved and are replaced by their maintained forks.
cat > go.mod <<MOD
module keyferry.local/vaultbuild

go 1.26

require github.com/hashicorp/vault ${VAULT_VERSION}

replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3

replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1
MOD
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/hashicorp/vault"
GO
go mod tidy -e >/dev/null 2>&1 || true
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${out}/vault.tmp" github.com/hashicorp/vault
mv "${out}/vault.tmp" "${out}/vault"
echo "vault ${VAULT_VERSION} in ${out}"

package all

import (
	"strings"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
)

// A vault SecretProviderClass without vaultAddress is served at the
// operator's default address (--secretsync-vault-address) and refused
// without one.
func TestVaultClassAddressReachesTheVaultProvider(t *testing.T) {
	store := provider.Store{Kind: provider.ClassKind, Name: "vault-kv", Namespace: "app", Class: &provider.Class{
		Provider: "vault",
		Parameters: map[string]string{
			"roleName": "kv-role",
			"audience": "vault",
			"objects":  "- objectName: secret-1\n  secretPath: secret/data/kv1\n  secretKey: bar1\n",
		},
		ServiceAccount: "app",
	}}
	for _, tc := range []struct {
		address string
		wantErr string
	}{
		{address: "https://vault.vault:8200"},
		{address: "", wantErr: "vaultAddress"},
	} {
		reg := Registry(Options{VaultClassAddress: tc.address})
		_, p, err := reg.ProviderFor(store)
		if err != nil {
			t.Fatal(err)
		}
		err = p.ValidateSpec(store)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("with default address %q: %v", tc.address, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("without a default address: err = %v, want one naming %s", err, tc.wantErr)
		}
	}
}

package fetch

import (
	"maps"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/azurekv"
)

// A SecretProviderClass's client is keyed by everything it is built from:
// its provider, its parameters and the ServiceAccount that reads through it.
// A parameter change builds a new client; two ServiceAccounts never share
// one, and each keeps its own identity so neither releases the other's.
func TestKeyForClassStores(t *testing.T) {
	p := azurekv.New()
	params := map[string]string{"keyvaultName": "kv1", "clientID": "c", "objects": "array: []"}
	backend := func(mut func(*provider.Class)) provider.Store {
		c := &provider.Class{Provider: "azure", Parameters: maps.Clone(params), ServiceAccount: "reader"}
		if mut != nil {
			mut(c)
		}
		return provider.Store{Kind: provider.ClassKind, Namespace: "ns", Name: "spc", Class: c}
	}
	baseKey, baseID := keyFor(p, azurekv.Name, backend(nil), "ns")
	if again, _ := keyFor(p, azurekv.Name, backend(nil), "ns"); again != baseKey {
		t.Fatalf("the same class gets keys %v and %v", baseKey, again)
	}
	for name, mut := range map[string]func(*provider.Class){
		"a parameter":        func(c *provider.Class) { c.Parameters["clientID"] = "other" },
		"a parameter added":  func(c *provider.Class) { c.Parameters["tenantID"] = "t" },
		"the ServiceAccount": func(c *provider.Class) { c.ServiceAccount = "writer" },
		"the provider":       func(c *provider.Class) { c.Provider = "gcp" },
	} {
		key, id := keyFor(p, azurekv.Name, backend(mut), "ns")
		if key == baseKey {
			t.Errorf("changing %s keeps the client %v", name, key)
		}
		if name == "the ServiceAccount" && id == baseID {
			t.Errorf("two ServiceAccounts share the identity %+v", id)
		}
	}
}

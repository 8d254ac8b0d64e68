package azurekv

import (
	"context"
	"errors"
	"testing"

	"github.com/go-logr/logr/testr"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

// TestClusterStoreCredentialsResolvePerTenant: a ClusterSecretStore whose
// authSecretRef names no namespace uses, for each ExternalSecret, the
// credentials in the ExternalSecret's namespace. Through the real fetch
// layer, API server and in-repo Key Vault, the tenant whose app may read
// gets the value and the tenant whose app may not is refused — on the first
// fetch and while the first tenant's value sits in its cache.
func TestClusterStoreCredentialsResolvePerTenant(t *testing.T) {
	srv := newServer(t)
	srv.SetSecret("db", "db-"+canary)
	allowed, denied := newNamespace(t), newNamespace(t)
	createSecret(t, allowed, "azure-credentials", map[string][]byte{"client-id": []byte("tenant-a"), "client-secret": []byte("a-" + canary)})
	createSecret(t, denied, "azure-credentials", map[string][]byte{"client-id": []byte("tenant-b"), "client-secret": []byte("b-" + canary)})
	srv.AddApp(kvserver.App{ClientID: "tenant-a", ClientSecret: "a-" + canary, Access: kvserver.ReadAll})
	srv.AddApp(kvserver.App{ClientID: "tenant-b", ClientSecret: "b-" + canary, Access: kvserver.NoAccess})

	reg := provider.NewRegistry()
	reg.Register("azurekv", providerFor(srv, nil))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := fetch.New(ctx, fetch.Options{Registry: reg, Kube: kube, Log: testr.New(t)})
	store := clusterStore(&esv1.AzureKVProvider{
		TenantID: ptr(srv.TenantID()),
		VaultURL: ptr(srv.VaultURL() + "/"),
		AuthSecretRef: &esv1.AzureKVAuth{
			ClientID:     &esv1.SecretKeySelector{Name: "azure-credentials", Key: "client-id"},
			ClientSecret: &esv1.SecretKeySelector{Name: "azure-credentials", Key: "client-secret"},
		},
	})
	ref := provider.Ref{Key: "db"}
	get := func(tenant string) (provider.Value, error) {
		vals, errs := l.Get(ctx, fetch.Request{Store: store, Namespace: tenant, Subscriber: tenant + "/es", MaxAge: 1 << 40}, []provider.Ref{ref})
		return vals[ref], errs[ref]
	}
	for round := range 2 {
		v, err := get(allowed)
		if err != nil {
			t.Fatalf("round %d: the allowed tenant: %v", round, err)
		}
		if string(v.Data) != "db-"+canary {
			t.Fatalf("round %d: the allowed tenant read the wrong value", round)
		}
		_, err = get(denied)
		if !errors.Is(err, provider.ErrForbidden) {
			t.Fatalf("round %d: the other tenant got %v, want permission denied (never the first tenant's value)", round, err)
		}
		noCanary(t, err)
	}
}

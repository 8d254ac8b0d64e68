package fetch

import (
	"context"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// tenantProvider answers every key with the namespace its client was built
// for, as a webhook whose URL reads .remoteRef.namespace does. It is
// shareable, and scoped to the namespace when scoped is set.
type tenantProvider struct {
	scoped bool
	built  int
}

func (p *tenantProvider) ValidateSpec(provider.Store) error     { return nil }
func (p *tenantProvider) Shareable(provider.Store) bool         { return true }
func (p *tenantProvider) ScopedToNamespace(provider.Store) bool { return p.scoped }
func (p *tenantProvider) NewClient(_ context.Context, opts provider.Options) (provider.Client, error) {
	p.built++
	return tenantClient{ns: opts.Namespace}, nil
}

type tenantClient struct{ ns string }

func (c tenantClient) GetSecret(context.Context, provider.Ref) (provider.Value, error) {
	return provider.Value{Data: []byte("value-of-" + c.ns)}, nil
}
func (c tenantClient) ListSecrets(context.Context, provider.List) provider.ListPager {
	return provider.OnePage([]provider.Listed{{Name: "k", Ref: provider.Ref{Key: "k"}, Value: &provider.Value{Data: []byte("value-of-" + c.ns)}}})
}
func (tenantClient) Validate(context.Context) error { return nil }
func (tenantClient) Close(context.Context) error    { return nil }

func fakeSpec() *esv1.SecretStoreSpec {
	return &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Fake: &esv1.FakeProvider{}}}
}

// TestTenantsNeverShareAScopedClientOrCache: identical stores whose client
// depends on the requester's namespace get one client and one cache per
// namespace, for SecretStores copied into two namespaces and for one
// ClusterSecretStore used from two namespaces.
func TestTenantsNeverShareAScopedClientOrCache(t *testing.T) {
	for _, tt := range []struct {
		name    string
		backend func(ns string) provider.Store
	}{
		{"identical SecretStores", func(ns string) provider.Store {
			return provider.Store{Kind: esv1.SecretStoreKind, Namespace: ns, Name: "s", Spec: fakeSpec()}
		}},
		{"one ClusterSecretStore", func(string) provider.Store {
			return provider.Store{Kind: esv1.ClusterSecretStoreKind, Name: "s", Spec: fakeSpec()}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &tenantProvider{scoped: true}
			l := newTenantLayer(t, p)
			ref := provider.Ref{Key: "k"}
			for round := 0; round < 2; round++ { // the second round is served from the caches
				for _, ns := range []string{"tenant-a", "tenant-b"} {
					r := Request{Store: tt.backend(ns), Namespace: ns, Subscriber: ns + "/es", MaxAge: 1e12}
					vals, errs := l.Get(context.Background(), r, []provider.Ref{ref})
					if errs[ref] != nil {
						t.Fatalf("Get from %s: %v", ns, errs[ref])
					}
					if got, want := string(vals[ref].Data), "value-of-"+ns; got != want {
						t.Fatalf("round %d: %s got %q, want %q (another tenant's client or cache answered)", round, ns, got, want)
					}
					found, err := l.Find(context.Background(), r, provider.Find{})
					if err != nil || string(found["k"]) != "value-of-"+ns {
						t.Fatalf("round %d: Find from %s got %q, %v", round, ns, found["k"], err)
					}
				}
			}
			if p.built != 2 {
				t.Fatalf("built %d clients, want one per tenant (2)", p.built)
			}
		})
	}
}

// TestUnscopedShareableStoresStillShare: identical shareable stores that do
// not depend on the namespace still share one client across namespaces.
func TestUnscopedShareableStoresStillShare(t *testing.T) {
	p := &tenantProvider{}
	l := newTenantLayer(t, p)
	ref := provider.Ref{Key: "k"}
	for _, ns := range []string{"tenant-a", "tenant-b", "tenant-c"} {
		st := provider.Store{Kind: esv1.SecretStoreKind, Namespace: ns, Name: "s", Spec: fakeSpec()}
		if _, errs := l.Get(context.Background(), Request{Store: st, Namespace: ns, MaxAge: 1e12}, []provider.Ref{ref}); errs[ref] != nil {
			t.Fatal(errs[ref])
		}
	}
	if p.built != 1 {
		t.Fatalf("built %d clients, want 1 shared", p.built)
	}
}

// TestNamespacedStoreNeverUsesAClusterStoresClient: a SecretStore whose
// configuration equals a ClusterSecretStore's gets its own client, built
// under the rules for namespaced stores (provider.Admit), never the one the
// ClusterSecretStore built with the operator's looser rules.
func TestNamespacedStoreNeverUsesAClusterStoresClient(t *testing.T) {
	p := &tenantProvider{}
	l := newTenantLayer(t, p)
	ref := provider.Ref{Key: "k"}
	for _, st := range []provider.Store{
		{Kind: esv1.ClusterSecretStoreKind, Name: "s", Spec: fakeSpec()},
		{Kind: esv1.SecretStoreKind, Namespace: "tenant-a", Name: "s", Spec: fakeSpec()},
		{Kind: esv1.SecretStoreKind, Namespace: "tenant-b", Name: "s", Spec: fakeSpec()},
	} {
		if _, errs := l.Get(context.Background(), Request{Store: st, Namespace: "tenant-a", MaxAge: 1e12}, []provider.Ref{ref}); errs[ref] != nil {
			t.Fatal(errs[ref])
		}
	}
	if p.built != 2 {
		t.Fatalf("built %d clients, want 2: one for the ClusterSecretStore, one shared by the SecretStores", p.built)
	}
}

func TestKeyForScopesWhatVariesByRequester(t *testing.T) {
	ns := "other"
	withRef := &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Kubernetes: &esv1.KubernetesProvider{
		Auth: &esv1.KubernetesAuth{ServiceAccount: &esv1.ServiceAccountSelector{Name: "reader"}}}}}
	withNamespacedRef := &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Kubernetes: &esv1.KubernetesProvider{
		Auth: &esv1.KubernetesAuth{ServiceAccount: &esv1.ServiceAccountSelector{Name: "reader", Namespace: &ns}}}}}
	cluster := func(spec *esv1.SecretStoreSpec) provider.Store {
		return provider.Store{Kind: esv1.ClusterSecretStoreKind, Name: "c", Spec: spec}
	}
	for _, tt := range []struct {
		name      string
		p         provider.Provider
		backend   provider.Store
		wantScope bool
	}{
		{"cluster store with a reference resolved in the requester's namespace", &countingProvider{}, cluster(withRef), true},
		{"cluster store whose references name their namespace", &countingProvider{}, cluster(withNamespacedRef), false},
		{"cluster store of a provider scoped to the namespace", &tenantProvider{scoped: true}, cluster(fakeSpec()), true},
		{"shareable cluster store of an unscoped provider", &tenantProvider{}, cluster(fakeSpec()), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := keyFor(tt.p, "x", tt.backend, "tenant-a")
			b, _ := keyFor(tt.p, "x", tt.backend, "tenant-b")
			if got := a != b; got != tt.wantScope {
				t.Fatalf("keys differ between tenants = %v, want %v (%s vs %s)", got, tt.wantScope, a, b)
			}
		})
	}
}

func newTenantLayer(t *testing.T, p provider.Provider) *Layer {
	t.Helper()
	reg := provider.NewRegistry()
	reg.Register("fake", p)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return New(ctx, Options{Registry: reg, QPS: 1e6, Burst: 1e6})
}

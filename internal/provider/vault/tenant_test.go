package vault

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

// TestClusterStoreTokenResolvesPerTenant: a ClusterSecretStore whose
// auth.tokenSecretRef names no namespace uses, for each ExternalSecret, the
// token in the ExternalSecret's namespace. Through the real fetch layer,
// API server and Vault dev server, the tenant whose token may read gets the
// value and the tenant whose token may not is refused — on the first fetch
// and while the first tenant's value sits in its cache.
func TestClusterStoreTokenResolvesPerTenant(t *testing.T) {
	e := newEnv(t)
	value := e.canary()
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": value})
	e.secret("vault-token", map[string]string{"token": e.vault.RootToken})
	other := "t-" + randomHex(4)
	createNamespace(t, other)
	weak := e.vault.Token(t, "default") // may read nothing under secret/
	if err := cluster.kube.Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "vault-token"}, StringData: map[string]string{"token": weak},
	}); err != nil {
		t.Fatal(err)
	}

	reg := provider.NewRegistry()
	reg.Register("vault", New())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := fetch.New(ctx, fetch.Options{Registry: reg, Kube: cluster.kube, Tokens: tokenRequester{cluster.cs}, Log: testr.New(t)})
	spec := e.spec(&esv1.VaultAuth{TokenSecretRef: &esv1.SecretKeySelector{Name: "vault-token", Key: "token"}})
	store := provider.Store{Kind: esv1.ClusterSecretStoreKind, Name: "vault-tenants",
		Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Vault: spec}}}
	ref := provider.Ref{Key: "app"}
	get := func(tenant string) (provider.Value, error) {
		vals, errs := l.Get(ctx, fetch.Request{Store: store, Namespace: tenant, Subscriber: tenant + "/es", MaxAge: 1 << 40}, []provider.Ref{ref})
		return vals[ref], errs[ref]
	}
	for round := range 2 {
		v, err := get(e.ns)
		if err != nil {
			t.Fatalf("round %d: the allowed tenant: %v", round, err)
		}
		if !strings.Contains(string(v.Data), value) {
			t.Fatalf("round %d: the allowed tenant read the wrong value", round)
		}
		_, err = get(other)
		if !errors.Is(err, provider.ErrForbidden) {
			t.Fatalf("round %d: the other tenant got %v, want permission denied (never the first tenant's value)", round, err)
		}
		e.noLeak(err)
	}
}

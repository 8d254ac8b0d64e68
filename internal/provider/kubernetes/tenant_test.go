package kubernetes_test

import (
	"context"
	"errors"
	"testing"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
	k8sprovider "github.com/keyferry/keyferry/internal/provider/kubernetes"
)

// TestClusterStoreServiceAccountResolvesPerTenant: a ClusterSecretStore
// whose auth.serviceAccount has no namespace authenticates, for each
// ExternalSecret, as the ServiceAccount of that name in the ExternalSecret's
// namespace. Through the real fetch layer and API server, the tenant whose
// ServiceAccount may read gets the value, and the tenant whose
// ServiceAccount may not is refused — on the first fetch and while the
// first tenant's value sits in its cache.
func TestClusterStoreServiceAccountResolvesPerTenant(t *testing.T) {
	ctx := context.Background()
	// team-b's reader exists but has no access to team-a's Secrets.
	if err := fx.kube.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: deniedNS, Name: reader}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("kubernetes", k8sprovider.New(nil))
	lctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	l := fetch.New(lctx, fetch.Options{Registry: reg, Kube: fx.kube, Tokens: &tokenRequester{cs: fx.admin}, Log: testr.New(t)})
	spec := esv1.KubernetesProvider{
		Server:          remoteServer(),
		Auth:            &esv1.KubernetesAuth{ServiceAccount: &esv1.ServiceAccountSelector{Name: reader}},
		RemoteNamespace: allowNS,
	}
	store := provider.Store{Kind: esv1.ClusterSecretStoreKind, Name: "k8s-tenants",
		Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Kubernetes: &spec}}}
	ref := provider.Ref{Key: "db"}
	get := func(tenant string) (provider.Value, error) {
		vals, errs := l.Get(ctx, fetch.Request{Store: store, Namespace: tenant, Subscriber: tenant + "/es", MaxAge: 1 << 40}, []provider.Ref{ref})
		return vals[ref], errs[ref]
	}
	for round := range 2 {
		v, err := get(storeNS)
		if err != nil {
			t.Fatalf("round %d: the allowed tenant: %v", round, err)
		}
		checkDB(t, v)
		_, err = get(deniedNS)
		if !errors.Is(err, provider.ErrForbidden) {
			t.Fatalf("round %d: the other tenant got %v, want permission denied (never the first tenant's value)", round, err)
		}
		assertClean(t, err)
	}
}

package test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// The operator's cache holds only the Secrets it manages, so its memory
// does not grow with unrelated Secrets in the cluster.
func TestUnrelatedSecretsAreNeverCached(t *testing.T) {
	ns := env.Namespace(t)
	unrelated := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unrelated"}, StringData: map[string]string{"x": "y"}}
	if err := env.Client.Create(context.Background(), unrelated); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, fakeStore("store", "k", "v"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: managed
spec:
  secretStoreRef: {name: store}
  data: [{secretKey: k, remoteRef: {key: k}}]
`)
	cache := env.Op.Manager.GetCache()
	// The managed Secret reaches the cache...
	testenv.Eventually(t, "the managed Secret in the operator's cache", func(ctx context.Context) (bool, string) {
		err := cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: "managed"}, &corev1.Secret{})
		return err == nil, fmt.Sprint(err)
	})
	// ...and the unrelated one, created before it, is not there.
	err := cache.Get(context.Background(), client.ObjectKeyFromObject(unrelated), &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("an unrelated Secret is in the operator's cache (err=%v)", err)
	}
	var list corev1.SecretList
	if err := cache.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "managed" {
		names := []string{}
		for _, s := range list.Items {
			names = append(names, s.Name)
		}
		t.Fatalf("cache holds %v in the namespace, want only the managed Secret", names)
	}
}

// Many ExternalSecrets using the same remote keys through identical stores
// in different namespaces cost one provider call per key.
func TestIdenticalStoresInManyNamespacesShareFetches(t *testing.T) {
	const namespaces = 5
	var nss []string
	for i := 0; i < namespaces; i++ {
		ns := env.Namespace(t)
		nss = append(nss, ns)
		env.Apply(t, ns, sharedFakeStore("shared-config", "a", "1", "b", "2", "_test", "identical-stores"))
		for j := 0; j < 4; j++ {
			env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: es-%d
spec:
  refreshInterval: 1h
  secretStoreRef: {name: shared-config}
  data:
    - {secretKey: a, remoteRef: {key: a}}
    - {secretKey: b, remoteRef: {key: b}}
`, j))
		}
	}
	for _, ns := range nss {
		for j := 0; j < 4; j++ {
			env.WaitSecret(t, ns, fmt.Sprintf("es-%d", j), testenv.HasData(map[string]string{"a": "1", "b": "2"}))
		}
	}
	if n := env.Op.Fetch.Calls("SecretStore", nss[0], "shared-config"); n != 2 {
		t.Fatalf("20 ExternalSecrets over 5 identical stores made %d provider calls, want 2 (one per key)", n)
	}
}

package operator

import (
	"context"
	"fmt"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// TestNamespaceScopedWithoutClusterKinds is the chart's scopedNamespace +
// scopedRBAC mode: --namespace X --enable-cluster-store-reconciler=false.
// ExternalSecrets in X sync from SecretStores in X; one that uses a
// ClusterSecretStore is told why it cannot; other namespaces, cluster
// stores and ClusterExternalSecrets are not touched.
func TestNamespaceScopedWithoutClusterKinds(t *testing.T) {
	ctx := context.Background()
	served := env.Namespace(t)
	other := env.Namespace(t)
	startOperator(t, func(o *operator.Options) {
		o.Namespace = served
		o.DisableClusterStores = true
	})
	css := "cluster-" + served
	env.Apply(t, "", fakeStore("ClusterSecretStore", css, "", "k", "v"))
	for _, ns := range []string{served, other} {
		env.Apply(t, ns, fakeStore("SecretStore", "local", "", "k", "v"))
		env.Apply(t, ns, externalSecret("from-local", "SecretStore", "local", "k"))
	}
	env.Apply(t, served, externalSecret("from-cluster", "ClusterSecretStore", css, "k"))
	env.Apply(t, "", fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ClusterExternalSecret
metadata:
  name: ces-%[1]s
spec:
  namespaceSelectors:
    - matchLabels: {kubernetes.io/metadata.name: %[1]s}
  externalSecretName: from-ces
  externalSecretSpec:
    secretStoreRef: {name: local}
    data:
      - secretKey: value
        remoteRef: {key: k}
`, served))

	env.WaitReady(t, served, "from-local", metav1.ConditionTrue, "SecretSynced")
	env.WaitSecret(t, served, "from-local", testenv.HasData(map[string]string{"value": "v"}))
	es := env.WaitReady(t, served, "from-cluster", metav1.ConditionFalse, engine.ReasonClusterStoreDisabled)
	if c := testenv.ReadyCondition(es); !strings.Contains(c.Message, css) || !strings.Contains(c.Message, "--enable-cluster-store-reconciler=false") {
		t.Errorf("message does not say which store and why: %q", c.Message)
	}
	testenv.Eventually(t, "a Warning Event for from-cluster", func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, served, "from-cluster")
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			if ev.Reason == engine.ReasonClusterStoreDisabled {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events, none %s", len(evs), engine.ReasonClusterStoreDisabled)
	})

	// Nothing outside the served namespace, and no cluster kind, was
	// touched. The served namespace's syncs above are the barrier: objects
	// in other namespaces were created before them.
	var outside esv1.ExternalSecret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: other, Name: "from-local"}, &outside); err != nil {
		t.Fatal(err)
	}
	if len(outside.Status.Conditions) != 0 {
		t.Errorf("ExternalSecret outside the served namespace has a status: %+v", outside.Status)
	}
	var store esv1.ClusterSecretStore
	if err := env.Client.Get(ctx, client.ObjectKey{Name: css}, &store); err != nil {
		t.Fatal(err)
	}
	if len(store.Status.Conditions) != 0 {
		t.Errorf("ClusterSecretStore has a status though cluster stores are off: %+v", store.Status)
	}
	var ces esv1.ClusterExternalSecret
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "ces-" + served}, &ces); err != nil {
		t.Fatal(err)
	}
	if len(ces.Status.Conditions) != 0 {
		t.Errorf("ClusterExternalSecret has a status though --namespace turns its controller off: %+v", ces.Status)
	}
	var fromCES esv1.ExternalSecret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: served, Name: "from-ces"}, &fromCES); err == nil {
		t.Errorf("the ClusterExternalSecret was provisioned though its controller is off")
	}
}

// TestScopedModeNeedsOnlyARoleInItsNamespace: with --namespace X and every
// cluster-scoped kind and SecretSync switched off, the operator runs as an
// identity that holds nothing but a Role in X (what the chart's scopedRBAC
// grants) and syncs: no cluster-scoped kind, and no other namespace, is
// watched.
func TestScopedModeNeedsOnlyARoleInItsNamespace(t *testing.T) {
	ctx := context.Background()
	served := env.Namespace(t)
	user := "scoped-operator-" + served
	cfg, err := env.Cluster.AddUser(user)
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: served, Name: "keyferry"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"external-secrets.io"}, Resources: []string{"externalsecrets", "secretstores"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
			{APIGroups: []string{"external-secrets.io"}, Resources: []string{"externalsecrets/status", "secretstores/status"}, Verbs: []string{"get", "update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: served, Name: "keyferry"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "keyferry"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	r := startOperatorAs(t, cfg, func(o *operator.Options) {
		o.Namespace = served
		o.DisableClusterStores = true
		o.DisableClusterExternalSecrets = true
		o.DisableSecretSync = true
	})
	env.Apply(t, served, fakeStore("SecretStore", "local", "", "k", "v"))
	env.Apply(t, served, externalSecret("es", "SecretStore", "local", "k"))
	env.WaitReady(t, served, "es", metav1.ConditionTrue, "SecretSynced")
	env.WaitSecret(t, served, "es", testenv.HasData(map[string]string{"value": "v"}))
	env.WaitStoreReady(t, served, "local")
	if logs := r.logs.String(); strings.Contains(logs, "forbidden") {
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, "forbidden") {
				t.Errorf("the scoped operator asked for more than its Role: %.400s", line)
				break
			}
		}
	}
}

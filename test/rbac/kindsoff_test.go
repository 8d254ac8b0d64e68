package rbac

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/fake"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// With the cluster-scoped kinds and SecretSync switched off, the chart
// grants nothing for them (no Namespaces, ClusterSecretStores,
// ClusterExternalSecrets, ClusterPushSecrets, SecretSyncs or
// SecretProviderClasses), and the
// operator still starts without a refusal and syncs ExternalSecrets.
func TestSwitchedOffKindsNeedNoPermissions(t *testing.T) {
	const (
		release = "slim"
		sa      = "slim-keyferry"
		ns      = "rbac-slim"
	)
	ensureNamespace(t, ns)
	objs := install(t, release, map[string]any{
		"processClusterStore": false, "processClusterExternalSecret": false, "processClusterPushSecret": false, "processSecretSync": false,
	})
	for _, c := range []struct{ verb, group, resource string }{
		{"list", "", "namespaces"},
		{"list", "external-secrets.io", "clustersecretstores"},
		{"list", "external-secrets.io", "clusterexternalsecrets"},
		{"list", "external-secrets.io", "clusterpushsecrets"},
		{"create", "external-secrets.io", "pushsecrets"},
		{"list", "secret-sync.x-k8s.io", "secretsyncs"},
		{"list", "secrets-store.csi.x-k8s.io", "secretproviderclasses"},
	} {
		if canI(t, sa, c.verb, c.group, c.resource, "") {
			t.Errorf("the ServiceAccount may still %s %s", c.verb, c.resource)
		}
	}

	reg := provider.NewRegistry()
	reg.Register("fake", fake.New())
	op := startOperator(t, serviceAccountConfig(t, releaseNamespace, sa), objs, reg)

	env.Apply(t, ns, fakeApp("slim-value"))
	env.WaitStoreReady(t, ns, "inline")
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"key": "slim-value"}))
	op.assertNothingForbidden(t)
}

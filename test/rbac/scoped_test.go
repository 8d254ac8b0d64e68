package rbac

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/fake"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// scopedRBAC: a Role in one namespace and no ClusterRole for Secrets. The
// operator, serving that namespace only (--namespace), syncs there and
// touches nothing elsewhere.
func TestScopedInstallSyncsOnlyItsNamespaceWithARole(t *testing.T) {
	const (
		release = "scoped"
		sa      = "scoped-keyferry"
		served  = "rbac-scoped"
		other   = "rbac-not-served"
	)
	ensureNamespace(t, served)
	ensureNamespace(t, other)
	objs := install(t, release, map[string]any{"scopedRBAC": true, "scopedNamespace": served})

	t.Run("the ServiceAccount may write Secrets in its namespace only", func(t *testing.T) {
		checks := []struct {
			verb, group, resource, namespace string
			want                             bool
		}{
			{"create", "", "secrets", served, true},
			{"list", "", "secrets", served, true},
			{"get", "", "secrets", other, false},
			{"list", "", "secrets", "", false},
			{"list", "external-secrets.io", "externalsecrets", other, false},
			{"list", "external-secrets.io", "clustersecretstores", "", false},
			{"list", "", "namespaces", "", false},
		}
		for _, c := range checks {
			if got := canI(t, sa, c.verb, c.group, c.resource, c.namespace); got != c.want {
				t.Errorf("%s %s in %q: allowed=%v, want %v", c.verb, c.resource, c.namespace, got, c.want)
			}
		}
	})

	// The namespace it does not serve gets its objects first, so they would
	// be synced before the served ones if the operator saw them.
	for _, ns := range []string{other, served} {
		env.Apply(t, ns, fakeApp("scoped-value"))
	}

	reg := provider.NewRegistry()
	reg.Register("fake", fake.New())
	op := startOperator(t, serviceAccountConfig(t, releaseNamespace, sa), objs, reg)

	t.Run("it syncs in its namespace", func(t *testing.T) {
		env.WaitStoreReady(t, served, "inline")
		env.WaitReady(t, served, "app", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
		env.WaitSecret(t, served, "app", testenv.HasData(map[string]string{"key": "scoped-value"}))
		waitEvent(t, served, "app")
	})

	t.Run("it leaves the other namespace alone", func(t *testing.T) {
		ctx := ctxFor(t, time.Minute)
		// Its cache holds the served namespace only: it never even sees
		// the other namespace's objects.
		var seen esv1.ExternalSecretList
		if err := op.Manager.GetCache().List(ctx, &seen, client.InNamespace(other)); err == nil && len(seen.Items) > 0 {
			t.Fatalf("the operator's cache holds %d ExternalSecrets of %s", len(seen.Items), other)
		}
		var es esv1.ExternalSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: other, Name: "app"}, &es); err != nil {
			t.Fatal(err)
		}
		if len(es.Status.Conditions) != 0 {
			t.Fatalf("the ExternalSecret of %s has a status: %+v", other, es.Status.Conditions)
		}
		var ss esv1.SecretStore
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: other, Name: "inline"}, &ss); err != nil {
			t.Fatal(err)
		}
		if len(ss.Status.Conditions) != 0 {
			t.Fatalf("the SecretStore of %s has a status: %+v", other, ss.Status.Conditions)
		}
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: other, Name: "app"}, &corev1.Secret{})
		if !apierrors.IsNotFound(err) {
			t.Fatalf("a Secret in %s: %v", other, err)
		}
	})

	t.Run("metrics stay authenticated in scoped mode", func(t *testing.T) {
		testenv.Eventually(t, "/metrics to refuse an anonymous scraper", func(ctx context.Context) (bool, string) {
			code, _, err := scrape(ctx, op.metricsURL, "")
			if err != nil {
				return false, err.Error()
			}
			return code == 401 || code == 403, fmt.Sprintf("HTTP %d", code)
		})
	})

	t.Run("the API server refused the operator nothing", func(t *testing.T) {
		op.assertNothingForbidden(t)
	})
}

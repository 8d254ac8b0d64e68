package pushsecret_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// pushReconciles is how many reconciles the PushSecret controller ran.
func pushReconciles(t *testing.T) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "pushsecret" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// As in ESO, a PushSecret that uses a store of another controller class is
// skipped entirely: no condition, no finalizer, nothing pushed.
func TestAPushSecretOfAnotherControllerClassIsLeftAlone(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: eso-store
spec:
  controller: eso
  provider:
    fake:
      data: []
---
apiVersion: v1
kind: Secret
metadata:
  name: src
stringData:
  k: v
`)
	before := pushReconciles(t)
	env.Apply(t, ns, pushSecretYAML("push-to-eso-store", "eso-store", "Replace", "Delete", "src", [3]string{"k", "r", "p"}))
	env.Apply(t, ns, pushSecretYAML("push-to-missing-store", "missing-store", "Replace", "None", "src", [3]string{"k", "r", "p"}))
	waitPushReady(t, ns, "push-to-missing-store", corev1.ConditionFalse, engine.ReasonStoreNotFound)
	// The refused one is reconciled once (StoreNotFound waits for a
	// change), so a second reconcile is the other PushSecret's.
	testenv.Eventually(t, "both PushSecrets reconciled", func(context.Context) (bool, string) {
		return pushReconciles(t) >= before+2, "fewer reconciles"
	})
	var ps esv1alpha1.PushSecret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "push-to-eso-store"}, &ps); err != nil {
		t.Fatal(err)
	}
	if len(ps.Status.Conditions) != 0 || len(ps.Finalizers) != 0 {
		t.Errorf("status = %+v, finalizers %v; want none on a PushSecret of another controller class", ps.Status, ps.Finalizers)
	}
}

// A PushSecret refused because its store does not exist waits; the store
// appearing wakes it at once, and it pushes (the fake provider, in memory:
// an ExternalSecret on the same store reads the pushed value back).
func TestAStoreThatAppearsWakesAPushSecretAndFakeReadsBack(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, `apiVersion: v1
kind: Secret
metadata:
  name: src
stringData:
  k: `+canary+`-fake
`)
	env.Apply(t, ns, pushSecretYAML("push-later", "fake", "Replace", "None", "src", [3]string{"k", "pushed", "p"}))
	waitPushReady(t, ns, "push-later", corev1.ConditionFalse, engine.ReasonStoreNotFound)
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: fake
spec:
  provider:
    fake:
      data: []
`)
	waitPushReady(t, ns, "push-later", corev1.ConditionTrue, "Synced")
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: read-back
spec:
  refreshInterval: 1h
  secretStoreRef: {name: fake, kind: SecretStore}
  data:
    - secretKey: k
      remoteRef: {key: pushed, property: p}
`)
	env.WaitSecret(t, ns, "read-back", testenv.HasData(map[string]string{"k": canary + "-fake"}))
	noLeak(t, ns)
}

// A ClusterSecretStore serves a PushSecret only in the namespaces its
// conditions allow, exactly as for an ExternalSecret.
func TestAClusterSecretStoreServesOnlyTheNamespacesItsConditionsAllow(t *testing.T) {
	allowed, denied := env.Namespace(t), env.Namespace(t)
	store := "push-css-" + allowed // cluster-scoped: named after the test's namespace
	env.Apply(t, "", `apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: `+store+`
spec:
  conditions:
    - namespaces: [`+allowed+`]
  provider:
    fake:
      data: []
`)
	for _, ns := range []string{allowed, denied} {
		env.Apply(t, ns, `apiVersion: v1
kind: Secret
metadata:
  name: src
stringData:
  k: v
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: push
spec:
  secretStoreRefs: [{name: `+store+`, kind: ClusterSecretStore}]
  selector: {secret: {name: src}}
  data:
    - match: {secretKey: k, remoteRef: {remoteKey: `+ns+`}}
`)
	}
	waitPushReady(t, allowed, "push", corev1.ConditionTrue, "Synced")
	ps := waitPushReady(t, denied, "push", corev1.ConditionFalse, engine.ReasonStoreNotAllowed)
	if msg := ps.Status.Conditions[0].Message; !strings.Contains(msg, denied) {
		t.Errorf("message %q does not name the namespace", msg)
	}
}

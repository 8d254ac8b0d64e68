package clusterpushsecret_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/clusterpushsecret"
	"github.com/keyferry/keyferry/internal/manifest"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// canary is part of a pushed value: it must never appear in the operator's
// logs, an Event or a status.
const canary = "kf-cps-canary-7d2a"

var env *testenv.Env

func TestMain(m *testing.M) {
	// The garbage collector deletes the PushSecrets of a deleted
	// ClusterPushSecret through their ownerReferences, as in a real
	// cluster.
	os.Exit(testenv.Main(m, testenv.Options{ControllerManager: true}, &env))
}

// unique returns base with a random suffix, so tests can share the cluster
// and be run again with -count.
func unique(base string) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	for i := range b {
		b[i] = letters[rand.N(len(letters))]
	}
	return base + "-" + string(b)
}

// namespace creates a namespace with labels and deletes it when the test
// ends.
func namespace(t *testing.T, labels ...string) string {
	t.Helper()
	ns := env.Namespace(t, labels...)
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	})
	return ns
}

func deleteCPS(t *testing.T, name string) {
	t.Helper()
	err := env.Client.Delete(context.Background(), &esv1alpha1.ClusterPushSecret{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting ClusterPushSecret %s: %v", name, err)
	}
}

func readyOf(conds []esv1alpha1.PushSecretStatusCondition) *esv1alpha1.PushSecretStatusCondition {
	for i := range conds {
		if conds[i].Type == esv1alpha1.PushSecretReady {
			return &conds[i]
		}
	}
	return nil
}

// waitCPS waits until the ClusterPushSecret's Ready condition has status and
// reason and check (when not nil) holds, and returns it.
func waitCPS(t *testing.T, name string, status corev1.ConditionStatus, reason string, check func(*esv1alpha1.ClusterPushSecret) (bool, string)) *esv1alpha1.ClusterPushSecret {
	t.Helper()
	var cps esv1alpha1.ClusterPushSecret
	testenv.Eventually(t, fmt.Sprintf("ClusterPushSecret %s Ready=%s %s", name, status, reason), func(ctx context.Context) (bool, string) {
		if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, &cps); err != nil {
			return false, err.Error()
		}
		c := readyOf(cps.Status.Conditions)
		if c == nil {
			return false, "no Ready condition"
		}
		if c.Status != status || c.Reason != reason {
			return false, fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
		}
		if check != nil {
			return check(&cps)
		}
		return true, ""
	})
	return &cps
}

// provisioned checks that status.provisionedNamespaces holds want and none
// of notWant (other tests' namespaces may be listed too).
func provisioned(want, notWant []string) func(*esv1alpha1.ClusterPushSecret) (bool, string) {
	return func(cps *esv1alpha1.ClusterPushSecret) (bool, string) {
		got := cps.Status.ProvisionedNamespaces
		for _, ns := range want {
			if !slices.Contains(got, ns) {
				return false, fmt.Sprintf("provisionedNamespaces %v lacks %s", got, ns)
			}
		}
		for _, ns := range notWant {
			if slices.Contains(got, ns) {
				return false, fmt.Sprintf("provisionedNamespaces %v has %s", got, ns)
			}
		}
		return true, ""
	}
}

// waitPushReady waits until a PushSecret's Ready condition has status and
// reason, and returns it.
func waitPushReady(t *testing.T, ns, name string, status corev1.ConditionStatus, reason string) *esv1alpha1.PushSecret {
	t.Helper()
	var ps esv1alpha1.PushSecret
	testenv.Eventually(t, fmt.Sprintf("PushSecret %s/%s Ready=%s %s", ns, name, status, reason), func(ctx context.Context) (bool, string) {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ps); err != nil {
			return false, err.Error()
		}
		c := readyOf(ps.Status.Conditions)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == status && c.Reason == reason, fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
	})
	return &ps
}

// waitGone waits until the PushSecret ns/name does not exist.
func waitGone(t *testing.T, ns, name string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("PushSecret %s/%s gone", ns, name), func(ctx context.Context) (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &esv1alpha1.PushSecret{})
		return apierrors.IsNotFound(err), fmt.Sprintf("still there (%v)", err)
	})
}

// pushSecretsNamed lists the PushSecrets named name in every namespace.
func pushSecretsNamed(t *testing.T, name string) []string {
	t.Helper()
	var list esv1alpha1.PushSecretList
	if err := env.Client.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ps := range list.Items {
		if ps.Name == name {
			out = append(out, ps.Namespace)
		}
	}
	return out
}

// waitEvent waits for an Event of type and reason about the
// ClusterPushSecret name (cluster-scoped: its Events are in default).
func waitEvent(t *testing.T, name, typ, reason string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("a %s Event %s about %s", typ, reason, name), func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, "default", name)
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			if ev.Type == typ && ev.Reason == reason {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d Events, none of that reason", len(evs))
	})
}

// readBack applies an ExternalSecret that reads destination-secret's
// property best-pokemon-dst from the fake store of ns, and waits for the
// value want.
func readBack(t *testing.T, ns, want string) {
	t.Helper()
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: read-back
spec:
  refreshInterval: 1h
  secretStoreRef: {name: fake-store, kind: SecretStore}
  data:
    - secretKey: pokemon
      remoteRef: {key: destination-secret, property: best-pokemon-dst}
`)
	env.WaitSecret(t, ns, "read-back", testenv.HasData(map[string]string{"pokemon": want}))
}

// relabel replaces the labels of namespace ns.
func relabel(t *testing.T, ns string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	var n corev1.Namespace
	if err := env.Client.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
		t.Fatal(err)
	}
	n.Labels = labels
	if err := env.Client.Update(ctx, &n); err != nil {
		t.Fatal(err)
	}
}

// noLeak fails when the canary is in the operator's logs, in an Event, in
// a ClusterPushSecret or in a PushSecret.
func noLeak(t *testing.T) {
	t.Helper()
	env.AssertNoLeak(t, canary)
	ctx := context.Background()
	var evs corev1.EventList
	if err := env.Client.List(ctx, &evs); err != nil {
		t.Fatal(err)
	}
	var cpss esv1alpha1.ClusterPushSecretList
	if err := env.Client.List(ctx, &cpss); err != nil {
		t.Fatal(err)
	}
	var pss esv1alpha1.PushSecretList
	if err := env.Client.List(ctx, &pss); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []any{evs, cpss, pss} {
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), canary) {
			t.Fatal("a pushed value appeared in an Event, a ClusterPushSecret or a PushSecret")
		}
	}
}

// ESO's documented ClusterPushSecret example cannot be applied as written,
// on ESO or on keyferry: its pushSecretSpec.selector names both a Secret
// and a generatorRef, and the CRD (ESO v2.9.0's schema, which keyferry
// serves) allows one. The API server refuses it naming the field, so no
// ClusterPushSecret exists and nothing is provisioned; the fake example
// (examples/pushsecret/cluster/fake) is that example cut to what pushes.
func TestESOClusterPushSecretExampleIsRefusedByTheSchemaAsOnESO(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "cool", "label")
	objs, err := manifest.Read(filepath.Join(env.Root, "examples/pushsecret/cluster/eso-full-cluster-push-secret.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	err = manifest.Apply(ctx, env.Client, ns, objs)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.pushSecretSpec.selector") {
		t.Fatalf("applying ESO's example: %v; want it refused naming spec.pushSecretSpec.selector", err)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "hello-world"}, &esv1alpha1.ClusterPushSecret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("ClusterPushSecret hello-world: %v; want none", err)
	}
}

// A ClusterPushSecret that keyferry can push (the fake example) pushes in
// every matching namespace: each namespace's PushSecret reads that
// namespace's source Secret, and an ExternalSecret on the same store reads
// the pushed value back. A namespace that stops matching loses its
// PushSecret (deletionPolicy Delete then deletes what it pushed), and
// deleting the ClusterPushSecret deletes the others.
func TestAClusterPushSecretPushesInEveryMatchingNamespace(t *testing.T) {
	label := []string{"keyferry.io/example", "cluster-push"}
	nsA, nsB := namespace(t, label...), namespace(t, label...)
	unlabelled := namespace(t)
	for _, ns := range []string{nsA, nsB, unlabelled} {
		env.Apply(t, ns, "examples/pushsecret/cluster/fake/10-source-and-store.yaml")
	}
	// nsB pushes a value that must never be logged, to a store of its own:
	// the fake stores of nsA and nsB are otherwise the same store (same
	// spec, no credentials), and every PushSecret of a ClusterPushSecret
	// pushes to the same remoteKey.
	env.Apply(t, nsB, `apiVersion: v1
kind: Secret
metadata:
  name: source-secret
stringData:
  best-pokemon: `+canary+`
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: fake-store
spec:
  provider:
    fake:
      data: [{key: `+nsB+`, value: "x"}]
`)
	env.Apply(t, "", "examples/pushsecret/cluster/fake/20-clusterpushsecret.yaml")
	t.Cleanup(func() { deleteCPS(t, "pokedex-push") })

	cps := waitCPS(t, "pokedex-push", corev1.ConditionTrue, clusterpushsecret.ReasonSynced, provisioned([]string{nsA, nsB}, []string{unlabelled}))
	if cps.Status.PushSecretName != "pokedex-ps" || len(cps.Status.FailedNamespaces) != 0 {
		t.Errorf("status %+v; want pushSecretName pokedex-ps and no failed namespace", cps.Status)
	}
	waitEvent(t, "pokedex-push", corev1.EventTypeNormal, clusterpushsecret.ReasonSynced)
	for _, ns := range []string{nsA, nsB} {
		ps := waitPushReady(t, ns, "pokedex-ps", corev1.ConditionTrue, "Synced")
		if ps.Labels["app.kubernetes.io/part-of"] != "pokedex" {
			t.Errorf("%s: labels %v; want pushSecretMetadata's", ns, ps.Labels)
		}
		if ref := metav1.GetControllerOf(ps); ref == nil || ref.UID != cps.UID || ref.Kind != "ClusterPushSecret" {
			t.Errorf("%s: controller reference %+v; want the ClusterPushSecret", ns, ref)
		}
		if ps.Spec.Selector.Secret == nil || ps.Spec.Selector.Secret.Name != "source-secret" || len(ps.Spec.Data) != 1 ||
			ps.Spec.DeletionPolicy != esv1alpha1.PushSecretDeletionPolicyDelete {
			t.Errorf("%s: spec %+v; want pushSecretSpec", ns, ps.Spec)
		}
	}
	readBack(t, nsA, "Pikachu")
	readBack(t, nsB, canary)
	if got := pushSecretsNamed(t, "pokedex-ps"); slices.Contains(got, unlabelled) {
		t.Error("a namespace without the label has a PushSecret")
	}

	relabel(t, nsB, nil)
	waitGone(t, nsB, "pokedex-ps")
	waitCPS(t, "pokedex-push", corev1.ConditionTrue, clusterpushsecret.ReasonSynced, provisioned([]string{nsA}, []string{nsB}))

	deleteCPS(t, "pokedex-push")
	waitGone(t, nsA, "pokedex-ps")
	noLeak(t)
}

// cpsYAML is a ClusterPushSecret pushing source-secret of each selected
// namespace to its fake-store; selectors is the YAML of
// spec.namespaceSelectors ("" leaves the field out).
func cpsYAML(name, psName, selectors string) string {
	sel := ""
	if selectors != "" {
		sel = "  namespaceSelectors: " + selectors + "\n"
	}
	return fmt.Sprintf(`apiVersion: external-secrets.io/v1alpha1
kind: ClusterPushSecret
metadata:
  name: %s
spec:
  pushSecretName: %s
%s  pushSecretSpec:
    secretStoreRefs: [{name: fake-store, kind: SecretStore}]
    selector: {secret: {name: source-secret}}
    data:
      - match: {secretKey: best-pokemon, remoteRef: {remoteKey: destination-secret, property: best-pokemon-dst}}
`, name, psName, sel)
}

// A PushSecret of the same name that the ClusterPushSecret did not create is
// never modified or deleted: its namespace is reported in failedNamespaces
// with ESO's reason, Ready is False (ESO's Errored) and a Warning Event
// says so. Once it is deleted, the namespace is provisioned. Deleting the
// ClusterPushSecret never deletes it.
func TestAForeignPushSecretIsLeftAloneAndReported(t *testing.T) {
	ctx := context.Background()
	key := unique("team")
	nsF, nsG := namespace(t, "keyferry.io/team", key), namespace(t, "keyferry.io/team", key)
	name, psName := unique("foreign"), "app-push"
	env.Apply(t, nsF, `apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: app-push
  labels: {owner: me}
spec:
  secretStoreRefs: [{name: my-store, kind: SecretStore}]
  selector: {secret: {name: mine}}
  data:
    - match: {secretKey: k, remoteRef: {remoteKey: mine, property: p}}
`)
	var before esv1alpha1.PushSecret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: nsF, Name: psName}, &before); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, "", cpsYAML(name, psName, `[{matchLabels: {keyferry.io/team: `+key+`}}]`))
	t.Cleanup(func() { deleteCPS(t, name) })

	cps := waitCPS(t, name, corev1.ConditionFalse, clusterpushsecret.ReasonErrored, provisioned([]string{nsG}, []string{nsF}))
	if len(cps.Status.FailedNamespaces) != 1 || cps.Status.FailedNamespaces[0].Namespace != nsF ||
		!strings.HasPrefix(cps.Status.FailedNamespaces[0].Reason, "push secret already exists in namespace") {
		t.Errorf("failedNamespaces %+v; want %s with ESO's reason", cps.Status.FailedNamespaces, nsF)
	}
	if msg := readyOf(cps.Status.Conditions).Message; !strings.HasPrefix(msg, "one or more namespaces failed") || !strings.Contains(msg, nsF) {
		t.Errorf("Ready message %q; want ESO's message naming %s", msg, nsF)
	}
	waitEvent(t, name, corev1.EventTypeWarning, clusterpushsecret.EventConflict)
	var after esv1alpha1.PushSecret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: nsF, Name: psName}, &after); err != nil {
		t.Fatal(err)
	}
	if after.Generation != before.Generation || len(after.OwnerReferences) != 0 || after.Labels["owner"] != "me" || after.Spec.SecretStoreRefs[0].Name != "my-store" {
		t.Errorf("the foreign PushSecret was changed: %+v", after.ObjectMeta)
	}

	// Deleting the ClusterPushSecret removes only its own PushSecret.
	deleteCPS(t, name)
	waitGone(t, nsG, psName)
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: nsF, Name: psName}, &after); err != nil {
		t.Fatalf("the foreign PushSecret is gone with the ClusterPushSecret: %v", err)
	}

	// Once the foreign one is gone, a new ClusterPushSecret provisions
	// the namespace.
	if err := env.Client.Delete(ctx, &after); err != nil {
		t.Fatal(err)
	}
	name2 := unique("foreign")
	env.Apply(t, "", cpsYAML(name2, psName, `[{matchLabels: {keyferry.io/team: `+key+`}}]`))
	t.Cleanup(func() { deleteCPS(t, name2) })
	waitCPS(t, name2, corev1.ConditionTrue, clusterpushsecret.ReasonSynced, provisioned([]string{nsF, nsG}, nil))
}

// A ClusterPushSecret without a namespace selector selects no namespace,
// never every namespace (ESO advisory GHSA-fcxq-v2r3-cc8h): Ready is False
// NoNamespaceSelector with a message that says so, and no PushSecret is
// created. Removing the selectors of one that had PushSecrets deletes them.
func TestAClusterPushSecretWithoutANamespaceSelectorMatchesNothing(t *testing.T) {
	key := unique("sel")
	ns := namespace(t, "keyferry.io/sel", key)
	none, psNone := unique("no-selector"), unique("ps")
	env.Apply(t, "", cpsYAML(none, psNone, ""))
	t.Cleanup(func() { deleteCPS(t, none) })
	cps := waitCPS(t, none, corev1.ConditionFalse, clusterpushsecret.ReasonNoNamespaceSelector, nil)
	if msg := readyOf(cps.Status.Conditions).Message; !strings.Contains(msg, "GHSA-fcxq-v2r3-cc8h") || !strings.Contains(msg, "no namespace is selected") {
		t.Errorf("Ready message %q does not say that nothing is selected and why", msg)
	}
	waitEvent(t, none, corev1.EventTypeWarning, clusterpushsecret.ReasonNoNamespaceSelector)
	if got := pushSecretsNamed(t, psNone); len(got) != 0 {
		t.Errorf("PushSecrets %s created in %v; want none", psNone, got)
	}

	name, psName := unique("dropped"), unique("ps")
	env.Apply(t, "", cpsYAML(name, psName, `[{matchLabels: {keyferry.io/sel: `+key+`}}]`))
	t.Cleanup(func() { deleteCPS(t, name) })
	waitCPS(t, name, corev1.ConditionTrue, clusterpushsecret.ReasonSynced, provisioned([]string{ns}, nil))
	env.Apply(t, "", cpsYAML(name, psName, "[]"))
	waitCPS(t, name, corev1.ConditionFalse, clusterpushsecret.ReasonNoNamespaceSelector, provisioned(nil, []string{ns}))
	waitGone(t, ns, psName)
}

// An invalid selector changes nothing until it is fixed: the PushSecrets
// stay, Ready is False InvalidSpec naming the field.
func TestAnInvalidSelectorChangesNothing(t *testing.T) {
	ctx := context.Background()
	key := unique("inv")
	ns := namespace(t, "keyferry.io/inv", key)
	name, psName := unique("invalid"), unique("ps")
	env.Apply(t, "", cpsYAML(name, psName, `[{matchLabels: {keyferry.io/inv: `+key+`}}]`))
	t.Cleanup(func() { deleteCPS(t, name) })
	waitCPS(t, name, corev1.ConditionTrue, clusterpushsecret.ReasonSynced, provisioned([]string{ns}, nil))
	env.Apply(t, "", cpsYAML(name, psName, `[{matchExpressions: [{key: keyferry.io/inv, operator: In}]}]`))
	cps := waitCPS(t, name, corev1.ConditionFalse, clusterpushsecret.ReasonInvalidSpec, nil)
	if msg := readyOf(cps.Status.Conditions).Message; !strings.Contains(msg, "spec.namespaceSelectors[0]") {
		t.Errorf("Ready message %q does not name the field", msg)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: psName}, &esv1alpha1.PushSecret{}); err != nil {
		t.Errorf("the PushSecret of an invalid ClusterPushSecret: %v; want it kept", err)
	}
}

// With --namespace the operator serves one namespace, so the ClusterPushSecret
// controller, which writes into many, is off (as the ClusterExternalSecret
// controller), and the operator says so.
func TestNamespaceScopedOperatorLeavesClusterPushSecretsAlone(t *testing.T) {
	ns := namespace(t)
	logs := &testenv.LogBuffer{}
	testenv.StartOperator(t, env.Cluster.Config, operator.Options{
		MetricsAddr: "0", HealthAddr: "0", Namespace: ns, Log: testenv.DebugLogger(logs),
		SkipControllerNameValidation: true,
	})
	const line = `"msg":"ClusterPushSecret controller is off: --namespace serves one namespace and a ClusterPushSecret writes into many"`
	if !strings.Contains(logs.String(), line) {
		t.Fatalf("the namespace-scoped operator did not log that its ClusterPushSecret controller is off:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), `"controller":"clusterpushsecret"`) {
		t.Fatal("the namespace-scoped operator runs the ClusterPushSecret controller")
	}
}

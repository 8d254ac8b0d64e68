package clusterexternalsecret_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/controller/clusterexternalsecret"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{
		// The garbage collector removes what ownerReferences tie to a
		// deleted object, as in a real cluster.
		ControllerManager: true,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting test environment:", err)
		os.Exit(1)
	}
	code := m.Run()
	env.Stop()
	os.Exit(code)
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

// fakeClusterStore applies a ClusterSecretStore with ESO's fake provider
// serving key=value and returns its name.
func fakeClusterStore(t *testing.T, key, value string) string {
	t.Helper()
	name := unique("fake")
	env.Apply(t, "", fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: %s
spec:
  provider:
    fake:
      data:
        - key: %s
          value: %q
`, name, key, value))
	return name
}

// cesManifest is a ClusterExternalSecret in ESO's form that maps the remote
// key /shared/token to the key "token" of Secret "app-token".
func cesManifest(name, store, selection string) string {
	return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ClusterExternalSecret
metadata:
  name: %s
spec:
  externalSecretName: app-token
  externalSecretMetadata:
    labels:
      app.kubernetes.io/part-of: shop
    annotations:
      owner: platform-team
  refreshTime: 1m
%s
  externalSecretSpec:
    refreshInterval: 1h
    secretStoreRef:
      kind: ClusterSecretStore
      name: %s
    target:
      name: app-token
    data:
      - secretKey: token
        remoteRef:
          key: /shared/token
`, name, selection, store)
}

func getCES(ctx context.Context, name string) (*esv1.ClusterExternalSecret, error) {
	ces := &esv1.ClusterExternalSecret{}
	return ces, env.Client.Get(ctx, client.ObjectKey{Name: name}, ces)
}

func ready(ces *esv1.ClusterExternalSecret) (metav1.ConditionStatus, string) {
	for _, c := range ces.Status.Conditions {
		if c.Type == esv1.ClusterExternalSecretReady {
			return c.Status, c.Message
		}
	}
	return "", "no Ready condition"
}

// waitProvisioned waits until the ClusterExternalSecret is Ready with
// exactly namespaces provisioned, and returns it.
func waitProvisioned(t *testing.T, name string, namespaces []string) *esv1.ClusterExternalSecret {
	t.Helper()
	want := slices.Clone(namespaces)
	slices.Sort(want)
	var ces *esv1.ClusterExternalSecret
	testenv.Eventually(t, fmt.Sprintf("ClusterExternalSecret %s Ready in %d namespaces", name, len(want)), func(ctx context.Context) (bool, string) {
		var err error
		if ces, err = getCES(ctx, name); err != nil {
			return false, err.Error()
		}
		status, msg := ready(ces)
		got := ces.Status.ProvisionedNamespaces
		return status == metav1.ConditionTrue && slices.Equal(got, want),
			fmt.Sprintf("Ready=%s (%s), %d provisioned, %d failed", status, msg, len(got), len(ces.Status.FailedNamespaces))
	})
	return ces
}

// waitSecret waits until namespace has Secret app-token with token=value.
func waitSecret(t *testing.T, namespace, value string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("Secret %s/app-token", namespace), func(ctx context.Context) (bool, string) {
		var s corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "app-token"}, &s); err != nil {
			return false, err.Error()
		}
		if string(s.Data["token"]) != value {
			return false, fmt.Sprintf("key token is %d bytes, not the expected %d", len(s.Data["token"]), len(value))
		}
		return true, ""
	})
}

func waitGone(t *testing.T, namespace, name string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("ExternalSecret %s/%s to be deleted", namespace, name), func(ctx context.Context) (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &esv1.ExternalSecret{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		return false, fmt.Sprintf("still there (err=%v)", err)
	})
}

func TestFansOutToEveryNamespaceMatchingTheSelector(t *testing.T) {
	ctx := context.Background()
	canary := unique("canary-fanout-value")
	store := fakeClusterStore(t, "/shared/token", canary)
	team := unique("team")
	selected := []string{env.Namespace(t, "team", team), env.Namespace(t, "team", team), env.Namespace(t, "team", team)}
	other := env.Namespace(t, "team", unique("other"))
	name := unique("shop-token")
	env.Apply(t, "", cesManifest(name, store, fmt.Sprintf(`  namespaceSelectors:
    - matchLabels:
        team: %s`, team)))

	ces := waitProvisioned(t, name, selected)
	for _, ns := range selected {
		waitSecret(t, ns, canary)
		var es esv1.ExternalSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-token"}, &es); err != nil {
			t.Fatalf("ExternalSecret in %s: %v", ns, err)
		}
		if es.Labels["app.kubernetes.io/part-of"] != "shop" || es.Annotations["owner"] != "platform-team" {
			t.Errorf("ExternalSecret in %s lacks externalSecretMetadata: labels %v annotations %v", ns, es.Labels, es.Annotations)
		}
		if ref := metav1.GetControllerOf(&es); ref == nil || ref.Kind != "ClusterExternalSecret" || ref.UID != ces.UID {
			t.Errorf("ExternalSecret in %s has controller reference %+v, want the ClusterExternalSecret", ns, ref)
		}
		if !reflect.DeepEqual(es.Spec, ces.Spec.ExternalSecretSpec) {
			t.Errorf("ExternalSecret in %s: spec differs from externalSecretSpec", ns)
		}
	}
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: other, Name: "app-token"}, &esv1.ExternalSecret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s does not match the selector but has an ExternalSecret (err=%v)", other, err)
	}
	if ces.Status.ExternalSecretName != "app-token" || len(ces.Status.FailedNamespaces) != 0 {
		t.Errorf("status: externalSecretName %q, failedNamespaces %v", ces.Status.ExternalSecretName, ces.Status.FailedNamespaces)
	}
	events, err := env.Events(ctx, metav1.NamespaceDefault, name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(e eventsv1.Event) bool { return e.Reason == clusterexternalsecret.EventProvisioned }) {
		t.Errorf("no %s Event; events: %v", clusterexternalsecret.EventProvisioned, reasons(events))
	}
	env.AssertNoLeak(t, canary)
}

func TestNamespaceCreatedAfterwardsGetsItsExternalSecret(t *testing.T) {
	canary := unique("canary-late-value")
	store := fakeClusterStore(t, "/shared/token", canary)
	team := unique("team")
	first := env.Namespace(t, "team", team)
	name := unique("late")
	env.Apply(t, "", cesManifest(name, store, fmt.Sprintf(`  namespaceSelectors:
    - matchLabels:
        team: %s`, team)))
	waitProvisioned(t, name, []string{first})

	// refreshTime is 1m: only the namespace watch can make this prompt
	// within the 30s deadline.
	late := env.Namespace(t, "team", team)
	waitProvisioned(t, name, []string{first, late})
	waitSecret(t, late, canary)
	env.AssertNoLeak(t, canary)
}

func TestNamespaceThatStopsMatchingLosesItsExternalSecret(t *testing.T) {
	ctx := context.Background()
	canary := unique("canary-relabel-value")
	store := fakeClusterStore(t, "/shared/token", canary)
	team := unique("team")
	stays, leaves := env.Namespace(t, "team", team), env.Namespace(t, "team", team)
	name := unique("relabel")
	env.Apply(t, "", cesManifest(name, store, fmt.Sprintf(`  namespaceSelectors:
    - matchLabels:
        team: %s`, team)))
	waitProvisioned(t, name, []string{stays, leaves})
	waitSecret(t, leaves, canary)

	var n corev1.Namespace
	if err := env.Client.Get(ctx, client.ObjectKey{Name: leaves}, &n); err != nil {
		t.Fatal(err)
	}
	relabelled := n.DeepCopy()
	relabelled.Labels["team"] = "someone-else"
	if err := env.Client.Patch(ctx, relabelled, client.MergeFrom(&n)); err != nil {
		t.Fatalf("relabelling namespace: %v", err)
	}
	waitGone(t, leaves, "app-token")
	waitProvisioned(t, name, []string{stays})
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: stays, Name: "app-token"}, &esv1.ExternalSecret{}); err != nil {
		t.Fatalf("the namespace that still matches lost its ExternalSecret: %v", err)
	}
	// With creationPolicy Owner the Secret belongs to the ExternalSecret,
	// so the garbage collector removes it too (as with ESO).
	testenv.Eventually(t, "Secret app-token collected in "+leaves, func(ctx context.Context) (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: leaves, Name: "app-token"}, &corev1.Secret{})
		return apierrors.IsNotFound(err), fmt.Sprintf("err=%v", err)
	})
	env.AssertNoLeak(t, canary)
}

func TestExistingExternalSecretNotOwnedIsLeftUntouchedAndReported(t *testing.T) {
	ctx := context.Background()
	canary := unique("canary-conflict-value")
	store := fakeClusterStore(t, "/shared/token", canary)
	free, taken := env.Namespace(t), env.Namespace(t)
	// Someone's own ExternalSecret, of the name the ClusterExternalSecret uses.
	env.Apply(t, taken, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app-token
  labels:
    mine: "yes"
spec:
  refreshInterval: 1h
  secretStoreRef:
    kind: ClusterSecretStore
    name: %s
  target:
    name: hand-made
  data:
    - secretKey: mine
      remoteRef:
        key: /shared/token
`, store))
	var before esv1.ExternalSecret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: taken, Name: "app-token"}, &before); err != nil {
		t.Fatal(err)
	}

	name := unique("conflict")
	env.Apply(t, "", cesManifest(name, store, fmt.Sprintf(`  namespaces:
    - %s
    - %s`, free, taken)))
	var ces *esv1.ClusterExternalSecret
	testenv.Eventually(t, "the conflicting namespace reported in failedNamespaces", func(ctx context.Context) (bool, string) {
		var err error
		if ces, err = getCES(ctx, name); err != nil {
			return false, err.Error()
		}
		status, msg := ready(ces)
		return status == metav1.ConditionFalse && len(ces.Status.FailedNamespaces) == 1 && slices.Equal(ces.Status.ProvisionedNamespaces, []string{free}),
			fmt.Sprintf("Ready=%s (%s) provisioned=%v failed=%v", status, msg, ces.Status.ProvisionedNamespaces, ces.Status.FailedNamespaces)
	})
	f := ces.Status.FailedNamespaces[0]
	if f.Namespace != taken || !strings.Contains(f.Reason, "not owned by this ClusterExternalSecret") {
		t.Errorf("failedNamespaces[0] = %+v, want namespace %s with a reason saying it is not owned", f, taken)
	}
	if _, msg := ready(ces); !strings.Contains(msg, taken) {
		t.Errorf("Ready message %q does not name the failed namespace", msg)
	}
	waitSecret(t, free, canary)

	var after esv1.ExternalSecret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: taken, Name: "app-token"}, &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion && (after.Generation != before.Generation || !reflect.DeepEqual(after.Labels, before.Labels) || len(after.OwnerReferences) != 0) {
		t.Fatalf("the unowned ExternalSecret was modified: generation %d→%d, labels %v, ownerReferences %v", before.Generation, after.Generation, after.Labels, after.OwnerReferences)
	}
	testenv.Eventually(t, "an ExternalSecretConflict Event", func(ctx context.Context) (bool, string) {
		events, err := env.Events(ctx, metav1.NamespaceDefault, name)
		if err != nil {
			return false, err.Error()
		}
		return slices.ContainsFunc(events, func(e eventsv1.Event) bool {
			return e.Reason == clusterexternalsecret.EventConflict && e.Type == corev1.EventTypeWarning && strings.Contains(e.Note, taken)
		}), fmt.Sprintf("events: %v", reasons(events))
	})

	// Once its owner deletes it, the namespace is provisioned.
	if err := env.Client.Delete(ctx, &after); err != nil {
		t.Fatal(err)
	}
	waitProvisioned(t, name, []string{free, taken})
	waitSecret(t, taken, canary)
	env.AssertNoLeak(t, canary)
}

func TestEditedOrDeletedExternalSecretIsRestored(t *testing.T) {
	ctx := context.Background()
	canary := unique("canary-repair-value")
	store := fakeClusterStore(t, "/shared/token", canary)
	ns := env.Namespace(t)
	name := unique("repair")
	env.Apply(t, "", cesManifest(name, store, "  namespaces: ["+ns+"]"))
	waitProvisioned(t, name, []string{ns})

	var es esv1.ExternalSecret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-token"}, &es); err != nil {
		t.Fatal(err)
	}
	edited := es.DeepCopy()
	edited.Spec.Data[0].RemoteRef.Key = "/somewhere/else"
	edited.Labels["app.kubernetes.io/part-of"] = "edited"
	if err := env.Client.Patch(ctx, edited, client.MergeFrom(&es)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the edit to be undone", func(ctx context.Context) (bool, string) {
		var got esv1.ExternalSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-token"}, &got); err != nil {
			return false, err.Error()
		}
		return got.Spec.Data[0].RemoteRef.Key == "/shared/token" && got.Labels["app.kubernetes.io/part-of"] == "shop",
			fmt.Sprintf("key %q, label %q", got.Spec.Data[0].RemoteRef.Key, got.Labels["app.kubernetes.io/part-of"])
	})

	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-token"}, &es); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(ctx, &es); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the deleted ExternalSecret to be recreated", func(ctx context.Context) (bool, string) {
		var got esv1.ExternalSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-token"}, &got); err != nil {
			return false, err.Error()
		}
		return got.UID != es.UID, "still the old object"
	})
	waitSecret(t, ns, canary)
	env.AssertNoLeak(t, canary)
}

func TestUnchangedClusterExternalSecretRewritesNothing(t *testing.T) {
	ctx := context.Background()
	canary := unique("canary-idle-value")
	store := fakeClusterStore(t, "/shared/token", canary)
	team := unique("team")
	first := env.Namespace(t, "team", team)
	name := unique("idle")
	env.Apply(t, "", cesManifest(name, store, fmt.Sprintf(`  namespaceSelectors:
    - matchLabels:
        team: %s`, team)))
	waitProvisioned(t, name, []string{first})
	var before esv1.ExternalSecret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: first, Name: "app-token"}, &before); err != nil {
		t.Fatal(err)
	}
	// Relabel the first namespace without changing whether it matches,
	// then add a second one: once the second is provisioned, the reconcile
	// has seen both changes.
	var n corev1.Namespace
	if err := env.Client.Get(ctx, client.ObjectKey{Name: first}, &n); err != nil {
		t.Fatal(err)
	}
	relabelled := n.DeepCopy()
	relabelled.Labels["unrelated"] = "x"
	if err := env.Client.Patch(ctx, relabelled, client.MergeFrom(&n)); err != nil {
		t.Fatal(err)
	}
	second := env.Namespace(t, "team", team)
	waitProvisioned(t, name, []string{first, second})

	var after esv1.ExternalSecret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: first, Name: "app-token"}, &after); err != nil {
		t.Fatal(err)
	}
	if after.Generation != before.Generation || !reflect.DeepEqual(after.ObjectMeta.Labels, before.ObjectMeta.Labels) || !reflect.DeepEqual(after.ObjectMeta.Annotations, before.ObjectMeta.Annotations) {
		t.Fatalf("the up-to-date ExternalSecret was rewritten: generation %d→%d", before.Generation, after.Generation)
	}
	env.AssertNoLeak(t, canary)
}

func TestDeletingTheClusterExternalSecretRemovesItsExternalSecrets(t *testing.T) {
	ctx := context.Background()
	canary := unique("canary-delete-value")
	store := fakeClusterStore(t, "/shared/token", canary)
	a, b := env.Namespace(t), env.Namespace(t)
	name := unique("deleted")
	env.Apply(t, "", cesManifest(name, store, "  namespaces: ["+a+", "+b+"]"))
	ces := waitProvisioned(t, name, []string{a, b})
	if err := env.Client.Delete(ctx, ces); err != nil {
		t.Fatal(err)
	}
	waitGone(t, a, "app-token")
	waitGone(t, b, "app-token")
	env.AssertNoLeak(t, canary)
}

func TestInvalidNamespaceSelectorIsReported(t *testing.T) {
	store := fakeClusterStore(t, "/shared/token", unique("canary-invalid-value"))
	name := unique("invalid")
	env.Apply(t, "", cesManifest(name, store, `  namespaceSelectors:
    - matchExpressions:
        - key: team
          operator: Near`))
	testenv.Eventually(t, "Ready=False naming the invalid field", func(ctx context.Context) (bool, string) {
		ces, err := getCES(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		status, msg := ready(ces)
		return status == metav1.ConditionFalse && strings.Contains(msg, "spec.namespaceSelectors[0]"), fmt.Sprintf("Ready=%s (%s)", status, msg)
	})
}

func TestForceSyncOnTheClusterExternalSecretReachesEveryExternalSecret(t *testing.T) {
	ctx := context.Background()
	store := fakeClusterStore(t, "/shared/token", unique("canary-force-value"))
	a, b := env.Namespace(t), env.Namespace(t)
	name := unique("force")
	env.Apply(t, "", cesManifest(name, store, "  namespaces: ["+a+", "+b+"]"))
	ces := waitProvisioned(t, name, []string{a, b})
	annotated := ces.DeepCopy()
	annotated.Annotations = map[string]string{esv1.AnnotationForceSync: "now"}
	if err := env.Client.Patch(ctx, annotated, client.MergeFrom(ces)); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{a, b} {
		testenv.Eventually(t, "force-sync annotation on the ExternalSecret in "+ns, func(ctx context.Context) (bool, string) {
			var es esv1.ExternalSecret
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-token"}, &es); err != nil {
				return false, err.Error()
			}
			return es.Annotations[esv1.AnnotationForceSync] == "now", fmt.Sprintf("annotations %v", es.Annotations)
		})
	}
}

func TestFinalizersLeftByESOAreReleased(t *testing.T) {
	ctx := context.Background()
	store := fakeClusterStore(t, "/shared/token", unique("canary-eso-value"))
	name := unique("from-eso")
	// A namespace and a ClusterExternalSecret as ESO leaves them.
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "t-",
		Finalizers:   []string{clusterexternalsecret.ESONamespaceFinalizer(name)},
	}}
	if err := env.Client.Create(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	ns := nsObj.Name
	env.Apply(t, "", strings.Replace(cesManifest(name, store, "  namespaces: ["+ns+"]"),
		"metadata:\n", "metadata:\n  finalizers: ["+clusterexternalsecret.ESOFinalizer+"]\n", 1))
	ces := waitProvisioned(t, name, []string{ns})
	testenv.Eventually(t, "ESO's finalizer removed from namespace "+ns, func(ctx context.Context) (bool, string) {
		var n corev1.Namespace
		if err := env.Client.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
			return false, err.Error()
		}
		return len(n.Finalizers) == 0, fmt.Sprintf("finalizers %v", n.Finalizers)
	})

	if err := env.Client.Delete(ctx, ces); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the ClusterExternalSecret ESO finalized to be deleted", func(ctx context.Context) (bool, string) {
		_, err := getCES(ctx, name)
		return apierrors.IsNotFound(err), fmt.Sprintf("err=%v", err)
	})
	waitGone(t, ns, "app-token")
}

// TestOneRemoteValueFannedOutTo200NamespacesIsFetchedOnce: 200
// ExternalSecrets that read the same key from the same store share one
// provider call.
func TestOneRemoteValueFannedOutTo200NamespacesIsFetchedOnce(t *testing.T) {
	const n = 200
	ctx := context.Background()
	canary := unique("canary-shared-value")
	store := fakeClusterStore(t, "/shared/token", canary)
	team := unique("team")
	namespaces := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-", Labels: map[string]string{"team": team}}}
			errs[i] = env.Client.Create(ctx, ns)
			namespaces[i] = ns.Name
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("creating namespace: %v", err)
		}
	}
	name := unique("shared")
	env.Apply(t, "", cesManifest(name, store, fmt.Sprintf(`  namespaceSelectors:
    - matchLabels:
        team: %s`, team)))
	waitProvisioned(t, name, namespaces)

	want := map[string]bool{}
	for _, ns := range namespaces {
		want[ns] = true
	}
	testenv.Eventually(t, fmt.Sprintf("%d Secrets with the shared value", n), func(ctx context.Context) (bool, string) {
		var list corev1.SecretList
		if err := env.Client.List(ctx, &list, client.MatchingFields{"metadata.name": "app-token"}); err != nil {
			return false, err.Error()
		}
		got := 0
		for _, s := range list.Items {
			if want[s.Namespace] && string(s.Data["token"]) == canary {
				got++
			}
		}
		return got == n, fmt.Sprintf("%d of %d Secrets written", got, n)
	})
	calls := env.Op.Fetch.Calls("ClusterSecretStore", "", store)
	t.Logf("provider calls for %d ExternalSecrets reading one key: %d", n, calls)
	if calls != 1 {
		t.Errorf("the store was called %d times for one key fanned out to %d namespaces, want 1", calls, n)
	}
	env.AssertNoLeak(t, canary)
}

func reasons(events []eventsv1.Event) []string {
	out := make([]string, 0, len(events))
	for _, e := range events {
		out = append(out, e.Type+"/"+e.Reason)
	}
	return out
}

// TestRefreshTimeThatIsNotADurationIsReported: a spec.refreshTime the API
// server accepts but that is not a duration ("1d") no longer falls back to
// the default silently: Ready=False names the field, a Warning Event
// InvalidSpec says so, nothing is provisioned until the spec is fixed, and
// fixing it provisions.
func TestRefreshTimeThatIsNotADurationIsReported(t *testing.T) {
	ctx := context.Background()
	value := unique("token")
	store := fakeClusterStore(t, "/shared/token", value)
	ns := env.Namespace(t)
	name := unique("bad-refresh")
	manifest := func(refreshTime string) string {
		return strings.Replace(cesManifest(name, store, "  namespaces: ["+ns+"]"), "refreshTime: 1m", "refreshTime: "+refreshTime, 1)
	}
	env.Apply(t, "", manifest(`"1d"`))

	const want = `spec.refreshTime: "1d" is not a duration`
	testenv.Eventually(t, "Ready=False naming spec.refreshTime", func(ctx context.Context) (bool, string) {
		ces, err := getCES(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		status, msg := ready(ces)
		return status == metav1.ConditionFalse && strings.Contains(msg, want), fmt.Sprintf("Ready=%s (%s)", status, msg)
	})
	testenv.Eventually(t, "a Warning Event "+clusterexternalsecret.EventInvalidSpec, func(ctx context.Context) (bool, string) {
		events, err := env.Events(ctx, metav1.NamespaceDefault, name)
		if err != nil {
			return false, err.Error()
		}
		return slices.ContainsFunc(events, func(e eventsv1.Event) bool {
			return e.Type == corev1.EventTypeWarning && e.Reason == clusterexternalsecret.EventInvalidSpec && strings.Contains(e.Note, want)
		}), fmt.Sprintf("events: %v", reasons(events))
	})
	// The reconcile that wrote the condition decided not to provision.
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-token"}, &esv1.ExternalSecret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("an ExternalSecret was provisioned from an invalid spec (err=%v)", err)
	}

	env.Apply(t, "", manifest("1m"))
	waitProvisioned(t, name, []string{ns})
	waitSecret(t, ns, value)
}

package writepolicy

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

func mergeInto(target, name string, keys ...string) string {
	es := fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %s
spec:
  refreshInterval: 0s
  secretStoreRef: {name: store}
  target: {name: %s, creationPolicy: Merge}
  data:
`, name, target)
	for _, k := range keys {
		es += fmt.Sprintf("    - {secretKey: %s, remoteRef: {key: %s}}\n", k, k)
	}
	return es
}

// Merge never writes into a credential another component trusts, nor into
// a Secret another controller controls unless that Secret opts in; the
// refused Secret is left exactly as it was.
func TestMergeNeverWritesIntoSecretsNobodyGaveUs(t *testing.T) {
	cases := []struct {
		name   string
		secret func(t *testing.T, ns string) *corev1.Secret
		// adoptable: the keyferry.io/adopt annotation lifts the refusal
		adoptable bool
	}{
		{name: "ServiceAccount token", secret: func(t *testing.T, ns string) *corev1.Secret {
			create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "builder"}})
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "target", Annotations: map[string]string{corev1.ServiceAccountNameKey: "builder"}},
				Type: corev1.SecretTypeServiceAccountToken}
		}},
		{name: "Helm release", secret: func(*testing.T, string) *corev1.Secret {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "target", Labels: map[string]string{"owner": "helm", "name": "web"}},
				Type: engine.SecretTypeHelmRelease, Data: map[string][]byte{"release": []byte("H4sI")}}
		}},
		{name: "cert-manager TLS Secret", adoptable: true, secret: func(*testing.T, string) *corev1.Secret {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "target", Annotations: map[string]string{engine.AnnotationCertManagerCertificate: "web"}},
				Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}}
		}},
		{name: "Secret another controller controls", adoptable: true, secret: func(t *testing.T, ns string) *corev1.Secret {
			owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "owner"}}
			create(t, owner)
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "target", OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: owner.UID, Controller: ptr(true)}}},
				Data: map[string][]byte{"theirs": []byte("t")}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t)
			s := tc.secret(t, ns)
			s.Namespace = ns
			create(t, s)
			env.Apply(t, ns, fakeStore("store", "injected", "x"))
			env.Apply(t, ns, mergeInto("target", "merger", "injected"))
			env.WaitReady(t, ns, "merger", metav1.ConditionFalse, engine.ReasonMergeNotAllowed)
			assertWarningEvent(t, ns, "merger", engine.ReasonMergeNotAllowed)
			got := env.GetSecret(t, ns, "target")
			if got.ResourceVersion != s.ResourceVersion {
				t.Fatalf("the refused Secret was modified: keys %v", keys(got.Data))
			}
			if !tc.adoptable {
				return
			}
			// The Secret opts in: the refusal lifts without touching the
			// ExternalSecret, and only the merged key is added.
			if got.Annotations == nil {
				got.Annotations = map[string]string{}
			}
			got.Annotations[engine.AnnotationAdopt] = "ExternalSecret/merger"
			if err := env.Client.Update(context.Background(), got); err != nil {
				t.Fatal(err)
			}
			env.WaitReady(t, ns, "merger", metav1.ConditionTrue, "SecretSynced")
			after := env.WaitSecret(t, ns, "target", testenv.HasData(map[string]string{"injected": "x"}))
			if len(after.Data) != len(s.Data)+1 {
				t.Fatalf("keys %v, want the Secret's own plus injected", keys(after.Data))
			}
		})
	}
}

// Two ExternalSecrets merging into one Secret keep each other's keys: each
// removes only keys it wrote and no longer wants.
func TestTwoMergesKeepEachOthersKeys(t *testing.T) {
	ns := env.Namespace(t)
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shared"}, Data: map[string][]byte{"theirs": []byte("t")}})
	env.Apply(t, ns, fakeStore("store", "a1", "1", "a2", "2", "b1", "3"))
	env.Apply(t, ns, mergeInto("shared", "a", "a1", "a2"))
	env.WaitReady(t, ns, "a", metav1.ConditionTrue, "SecretSynced")
	env.Apply(t, ns, mergeInto("shared", "b", "b1"))
	env.WaitReady(t, ns, "b", metav1.ConditionTrue, "SecretSynced")
	want := map[string]string{"theirs": "t", "a1": "1", "a2": "2", "b1": "3"}
	env.WaitSecret(t, ns, "shared", testenv.HasData(want))

	// Each syncs again after the other: nothing of the other's goes.
	for _, name := range []string{"a", "b", "a"} {
		forceSyncAndWait(t, ns, name)
	}
	env.WaitSecret(t, ns, "shared", testenv.HasData(want))

	// a drops a2: only a2 goes.
	env.Apply(t, ns, mergeInto("shared", "a", "a1"))
	got := env.WaitSecret(t, ns, "shared", func(s *corev1.Secret) (bool, string) {
		_, has := s.Data["a2"]
		return !has, fmt.Sprintf("keys %v", keys(s.Data))
	})
	if ok, msg := testenv.HasData(map[string]string{"theirs": "t", "a1": "1", "b1": "3"})(got); !ok || len(got.Data) != 3 {
		t.Fatalf("keys %v: %s", keys(got.Data), msg)
	}
	if rec := got.Annotations[engine.AnnotationMergedKeysByWriter]; rec != `{"ExternalSecret/a":["a1"],"ExternalSecret/b":["b1"]}` {
		t.Fatalf("merged-keys record: %s", rec)
	}
}

// forceSyncAndWait asks for a sync and waits until it is done: the status
// reports the version that includes the force-sync annotation.
func forceSyncAndWait(t *testing.T, ns, name string) {
	t.Helper()
	env.ForceSync(t, ns, name)
	testenv.Eventually(t, "ExternalSecret "+name+" synced after force-sync", func(ctx context.Context) (bool, string) {
		var es esv1.ExternalSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &es); err != nil {
			return false, err.Error()
		}
		c := testenv.ReadyCondition(&es)
		return c != nil && c.Status == metav1.ConditionTrue && es.Status.SyncedResourceVersion == externalsecret.Version(&es), es.Status.SyncedResourceVersion
	})
}

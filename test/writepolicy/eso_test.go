package writepolicy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// esoOrphanedSecret is a Secret exactly as ESO v2.9.0 leaves it for the
// ExternalSecret "app" with creationPolicy Orphan: ESO's managed label and
// data-hash annotation, no ownerReference, written by ESO's field manager
// for that ExternalSecret.
func esoOrphanedSecret(t *testing.T, ns string, fieldManager string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: "app",
			Labels:      map[string]string{engine.LabelManaged: engine.LabelManagedValue},
			Annotations: map[string]string{engine.AnnotationDataHash: "6d2c8a3b1e0f4a5c9b7d"},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"k": []byte("v")},
	}
	create(t, s, client.FieldOwner(fieldManager))
	return s
}

const orphanES = `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  target: {creationPolicy: Orphan}
  data: [{secretKey: k, remoteRef: {key: k}}]
`

// After a switch from ESO, a Secret ESO created for the same ExternalSecret
// with creationPolicy Orphan keeps syncing without anyone annotating it, and
// is not rewritten while its data is unchanged.
func TestSecretESOOrphanedKeepsSyncing(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "k", "v"))
	s := esoOrphanedSecret(t, ns, engine.ESOFieldManager("app"))
	env.Apply(t, ns, orphanES)
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, "SecretSynced")
	if got := env.GetSecret(t, ns, "app"); got.ResourceVersion != s.ResourceVersion {
		t.Fatalf("the Secret ESO created was rewritten although nothing changed")
	}

	// A new remote value is written as to any Secret of keyferry's.
	env.Apply(t, ns, fakeStore("store", "k", "v2"))
	forceSyncAndWait(t, ns, "app")
	got := env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"k": "v2"}))
	if got.Annotations[engine.AnnotationOwner] != "ExternalSecret/app" {
		t.Errorf("after its first write keyferry does not mark the Secret as its own: %v", got.Annotations)
	}
}

// A Secret with ESO's marks that ESO did not write for this ExternalSecret,
// or a plain Secret of the same name, is still never taken over.
func TestSecretNotWrittenByESOForThisExternalSecretIsNotTakenOver(t *testing.T) {
	cases := []struct {
		name   string
		secret func(t *testing.T, ns string) *corev1.Secret
	}{
		{name: "plain Secret", secret: func(t *testing.T, ns string) *corev1.Secret {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Data: map[string][]byte{"k": []byte("mine")}}
			create(t, s)
			return s
		}},
		{name: "ESO's marks written by someone else", secret: func(t *testing.T, ns string) *corev1.Secret {
			return esoOrphanedSecret(t, ns, "kubectl-client-side-apply")
		}},
		{name: "written by ESO for another ExternalSecret", secret: func(t *testing.T, ns string) *corev1.Secret {
			return esoOrphanedSecret(t, ns, engine.ESOFieldManager("other"))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t)
			env.Apply(t, ns, fakeStore("store", "k", "new"))
			s := tc.secret(t, ns)
			env.Apply(t, ns, orphanES)
			env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonSecretNotOwned)
			if got := env.GetSecret(t, ns, "app"); got.ResourceVersion != s.ResourceVersion {
				t.Fatalf("the Secret was modified")
			}
		})
	}
}

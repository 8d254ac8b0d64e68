package providers

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// ESO's "Merging all secrets" example, applied as it is: every field of
// the secrets found is hoisted to the top level of the Secret. Then a third
// secret with a field of the same name makes the merge fail with
// conflictPolicy Error (the default): the Secret keeps its values and the
// condition names the field, not a value.
func TestRewriteMergeExampleHoistsEveryField(t *testing.T) {
	const dir = "path/to/secrets/"
	vaultSrv.PutKV(t, "secret", 2, dir+"object-storage-credentials", map[string]any{"ACCESS_KEY": "ak-" + canary, "SECRET_KEY": "sk-" + canary})
	vaultSrv.PutKV(t, "secret", 2, dir+"mongo-credentials", map[string]any{"USERNAME": "user-" + canary, "PASSWORD": "pw-" + canary})
	t.Cleanup(func() {
		for _, k := range []string{"object-storage-credentials", "mongo-credentials", "other-credentials"} {
			vaultSrv.Delete(t, "secret/metadata/"+dir+k)
		}
	})
	ns := env.Namespace(t)
	env.Apply(t, ns, "examples/rewrite-merge")
	env.WaitReady(t, ns, "merge-basic-example", metav1.ConditionTrue, synced)
	want := map[string]string{"ACCESS_KEY": "ak-" + canary, "SECRET_KEY": "sk-" + canary, "USERNAME": "user-" + canary, "PASSWORD": "pw-" + canary}
	s := env.WaitSecret(t, ns, "merge-basic-example", testenv.HasData(want))
	if len(s.Data) != len(want) {
		t.Fatalf("Secret has %d keys; want only the %d merged fields", len(s.Data), len(want))
	}

	vaultSrv.PutKV(t, "secret", 2, dir+"other-credentials", map[string]any{"USERNAME": "other-" + canary})
	var es esv1.ExternalSecret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "merge-basic-example"}, &es); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(es.DeepCopy())
	if es.Annotations == nil {
		es.Annotations = map[string]string{}
	}
	es.Annotations[esv1.AnnotationForceSync] = "conflict"
	if err := env.Client.Patch(context.Background(), &es, patch); err != nil {
		t.Fatal(err)
	}
	failed := env.WaitReady(t, ns, "merge-basic-example", metav1.ConditionFalse, engine.ReasonInvalidValue)
	if msg := testenv.ReadyCondition(failed).Message; !strings.Contains(msg, `more than one value has the field "USERNAME"`) {
		t.Fatalf("message %q does not name the conflicting field", msg)
	}
	env.WaitSecret(t, ns, "merge-basic-example", testenv.HasData(want))
	assertNoLeak(t, ns, "merge-basic-example")
}

//go:build linux

package drills

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// ESO's Password generator example (examples/generators/password.yaml) is
// synced, then the operator process is killed with SIGKILL and started
// again, twice; after each start a label on the ExternalSecret (not a spec
// change) makes the new process sync it. The password in the Secret is the
// same throughout and the Secret is never rewritten: a generated password
// never changes because the operator restarted.
func TestSIGKILLKeepsGeneratedPassword(t *testing.T) {
	ns := env.Namespace(t)
	p := startOperator(t, "keyferry-gen-0", ns)
	env.Apply(t, ns, "examples/generators/password.yaml")
	es := env.WaitReady(t, ns, "password", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	synced := es.Status.SyncedResourceVersion
	first := env.GetSecret(t, ns, "password-secret")
	pw := string(first.Data["password"])
	if len(pw) != 42 {
		t.Fatalf("password length %d, want 42 (ESO's example)", len(pw))
	}
	procs := []*operatorProc{p}
	for run := 1; run <= 2; run++ {
		p.kill(t)
		p = startOperator(t, "keyferry-gen-"+itoa(run), ns)
		procs = append(procs, p)
		es := &esv1.ExternalSecret{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "password"}, es); err != nil {
			t.Fatal(err)
		}
		before := es.DeepCopy()
		es.Labels = map[string]string{"run": itoa(run)}
		if err := env.Client.Patch(context.Background(), es, client.MergeFrom(before)); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "the restarted operator synced password", func(ctx context.Context) (bool, string) {
			es := &esv1.ExternalSecret{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "password"}, es); err != nil {
				return false, err.Error()
			}
			c := testenv.ReadyCondition(es)
			if c == nil || c.Status != metav1.ConditionTrue || es.Status.SyncedResourceVersion == synced {
				return false, "not synced at the new version yet"
			}
			synced = es.Status.SyncedResourceVersion
			return true, ""
		})
		s := env.GetSecret(t, ns, "password-secret")
		if string(s.Data["password"]) != pw {
			t.Fatalf("the password changed after SIGKILL %d", run)
		}
		if s.ResourceVersion != first.ResourceVersion {
			t.Fatalf("the Secret was rewritten after SIGKILL %d", run)
		}
		testenv.Eventually(t, "the restarted operator kept the generated values", func(context.Context) (bool, string) {
			return strings.Contains(p.logs(), `"reason":"GeneratedValuesKept"`), "no such log line yet"
		})
	}
	p.assertAlive(t)
	for _, q := range procs {
		if strings.Contains(q.logs(), pw) {
			t.Fatalf("the generated password appeared in the logs of %s", q.name)
		}
	}
	t.Logf("FIGURE generator-kill: the password of ESO's Password example and its Secret unchanged across %d SIGKILLs", len(procs)-1)
}

package writepolicy

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

const refusedLog = "sync refused; waiting for a change to the ExternalSecret or its Secret"

// attempts counts the operator's log lines about ns: refusals (one info
// line per sync attempt that was refused) and reconcile errors.
func attempts(ns string) (refused, errors int) {
	for _, line := range strings.Split(env.Logs(), "\n") {
		if !strings.Contains(line, `"`+ns+`"`) {
			continue
		}
		switch {
		case strings.Contains(line, refusedLog):
			refused++
		case strings.Contains(line, "Reconciler error"):
			errors++
		}
	}
	return refused, errors
}

// A refusal that only a person can lift is not retried: the ExternalSecret
// makes no further attempt until the Secret changes, and then syncs at once.
func TestRefusalWaitsForAChangeToTheSecret(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "k", "v"))
	env.WaitStoreReady(t, ns, "store")
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Data: map[string][]byte{"k": []byte("mine")}})
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data: [{secretKey: k, remoteRef: {key: k}}]
`)
	env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonSecretNotOwned)
	assertWarningEvent(t, ns, "app", engine.ReasonSecretNotOwned)
	var first int
	testenv.Eventually(t, "the refusal logged", func(context.Context) (bool, string) {
		first, _ = attempts(ns)
		return first > 0, "no refusal logged"
	})

	// Over a window in which the old code retried about a dozen times
	// (exponential backoff from 5ms), nothing is attempted again.
	window := 5 * time.Second
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		refused, errs := attempts(ns)
		if refused != first || errs != 0 {
			t.Fatalf("the refused ExternalSecret was retried: %d refusals (first %d), %d reconcile errors", refused, first, errs)
		}
		time.Sleep(100 * time.Millisecond) // sampling the window, not synchronising
	}
	t.Logf("%d refusal(s) logged, none more over %s", first, window)

	// A person opts the Secret in: it syncs within seconds, without
	// touching the ExternalSecret.
	s := env.GetSecret(t, ns, "app")
	s.Annotations = map[string]string{engine.AnnotationAdopt: "ExternalSecret/app"}
	if err := env.Client.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var es esv1.ExternalSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &es); err != nil {
			return false, nil
		}
		c := testenv.ReadyCondition(&es)
		return c != nil && c.Status == metav1.ConditionTrue, nil
	})
	if err != nil {
		t.Fatalf("not Ready 10s after the Secret was annotated for adoption")
	}
	t.Logf("Ready %s after the adopt annotation", time.Since(start).Round(time.Millisecond))
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"k": "v"}))
}

// A Merge that waits for its Secret to exist syncs as soon as someone
// creates it.
func TestMergeWaitingForItsSecretSyncsWhenItIsCreated(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "a", "1"))
	env.Apply(t, ns, mergeInto("later", "merger", "a"))
	env.WaitReady(t, ns, "merger", metav1.ConditionFalse, engine.ReasonSecretMissing)
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "later"}, Data: map[string][]byte{"theirs": []byte("t")}})
	env.WaitReady(t, ns, "merger", metav1.ConditionTrue, "SecretSynced")
	env.WaitSecret(t, ns, "later", testenv.HasData(map[string]string{"theirs": "t", "a": "1"}))
}

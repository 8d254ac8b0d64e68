// Package events tests the Event budget against the real API server: a
// mass first sync posts a bounded number of Normal Events, and failures
// always get their Warning Event.
package events

import (
	"context"
	"fmt"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

var env *testenv.Env

// burst is the whole budget: the refill is too slow to add an Event while
// the test runs.
const burst = 3

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{Operator: func(o *operator.Options) {
		o.NormalEventBurst = burst
		o.NormalEventsPerSecond = 0.0001
	}}, &env))
}

func TestMassFirstSyncPostsABoundedNumberOfNormalEventsAndEveryWarning(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: fake}
spec:
  provider:
    fake:
      data: [{key: a, value: "1"}]
`)
	const synced, failing = 10, 4
	for i := range synced {
		env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: ok-%d}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: fake}
  data: [{secretKey: a, remoteRef: {key: a}}]
`, i))
	}
	for i := range synced {
		env.WaitSecret(t, ns, fmt.Sprintf("ok-%d", i), testenv.HasData(map[string]string{"a": "1"}))
	}
	for i := range failing {
		env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: missing-%d}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: fake}
  data: [{secretKey: a, remoteRef: {key: no-such-key}}]
`, i))
	}
	warned := map[string]bool{}
	testenv.Eventually(t, "a Warning Event for every failing ExternalSecret", func(ctx context.Context) (bool, string) {
		evs := events(ctx, t, ns)
		for _, ev := range evs {
			if ev.Type == corev1.EventTypeWarning {
				warned[ev.Regarding.Name] = true
			}
		}
		return len(warned) == failing, fmt.Sprintf("%d of %d failing ExternalSecrets have a Warning Event", len(warned), failing)
	})
	normal := 0
	for _, ev := range events(context.Background(), t, ns) {
		// The SecretStore's own Event is not a sync's and is not budgeted.
		if ev.Type == corev1.EventTypeNormal && ev.Regarding.Kind == "ExternalSecret" {
			normal++
		}
	}
	// The budget is the process's: with -count > 1 later runs find it spent.
	if normal > burst {
		t.Fatalf("%d ExternalSecrets synced and posted %d Normal Events, more than the budget's %d", synced, normal, burst)
	}
}

func events(ctx context.Context, t *testing.T, ns string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

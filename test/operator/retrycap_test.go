package operator

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// TestObjectRetriesWhileTheStoreIsDownStayWithinTheProbeInterval: while an
// ExternalSecret's webhook store refuses connections, the ExternalSecret is
// retried at most a probe interval apart (here 2s, --store-probe-interval),
// not after controller-runtime's per-item backoff or the store's backoff,
// which grow to minutes; once the store listens again the ExternalSecret
// becomes Ready without any edit.
func TestObjectRetriesWhileTheStoreIsDownStayWithinTheProbeInterval(t *testing.T) {
	const probe = 2 * time.Second
	r := startOperator(t, func(o *operator.Options) { o.StoreProbeInterval = probe })
	ns := env.Namespace(t)
	addr := testenv.FreeAddr(t) // nothing listens there yet
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: down
spec:
  provider:
    webhook:
      url: http://%s/secrets/{{ .remoteRef.key }}
      result: {jsonPath: $.value}
`, addr))
	env.Apply(t, ns, externalSecret("waits", "SecretStore", "down", "db"))
	env.WaitReady(t, ns, "waits", metav1.ConditionFalse, engine.ReasonUnreachable)

	assertRetriesWithin(t, r, ns, "waits", probe)

	// The store comes back: the ExternalSecret syncs without an edit.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on the store's address: %v", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"value":"back"}`))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	back := time.Now()
	env.WaitReady(t, ns, "waits", metav1.ConditionTrue, "SecretSynced")
	t.Logf("Ready %s after the store listened again", time.Since(back).Round(10*time.Millisecond))
	env.WaitSecret(t, ns, "waits", testenv.HasData(map[string]string{"value": "back"}))
}

// TestThrottledStoreDoesNotHoldObjectsBackBeyondTheProbeInterval: a store
// that answers 429 with Retry-After: 120 is not called again before then
// (the fetch layer's backoff), but the ExternalSecret is still retried
// within the probe interval (each retry is answered from the backoff
// without a call), so it is not stuck for the whole Retry-After once the
// store is back and the fetch layer lets calls through.
func TestThrottledStoreDoesNotHoldObjectsBackBeyondTheProbeInterval(t *testing.T) {
	const probe = 2 * time.Second
	r := startOperator(t, func(o *operator.Options) { o.StoreProbeInterval = probe })
	ns := env.Namespace(t)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: throttled
spec:
  provider:
    webhook:
      url: %s/secrets/{{ .remoteRef.key }}
      result: {jsonPath: $.value}
`, srv.URL))
	env.Apply(t, ns, externalSecret("throttled", "SecretStore", "throttled", "db"))
	env.WaitReady(t, ns, "throttled", metav1.ConditionFalse, engine.ReasonThrottled)
	assertRetriesWithin(t, r, ns, "throttled", probe)
	t.Logf("calls to the throttled store (Retry-After: 120) during the retries: %d", calls.Load())
}

// assertRetriesWithin waits for 8 retries of the ExternalSecret ns/name
// after a transient failure (one log line each, stamped when the test first
// sees it, polling every 50ms) and fails when two came more than probe
// apart, plus 2s for the reconcile itself and a busy queue on a loaded
// two-core machine.
func assertRetriesWithin(t *testing.T, r *running, ns, name string, probe time.Duration) {
	t.Helper()
	const retries, slack = 8, 2 * time.Second
	parts := []string{"sync failed; retrying within the store probe interval", `"name":"` + name + `"`, `"namespace":"` + ns + `"`}
	var seen []time.Time
	testenv.Eventually(t, fmt.Sprintf("%d retries of ExternalSecret %s", retries, name), func(context.Context) (bool, string) {
		n := 0
		for _, line := range strings.Split(r.logs.String(), "\n") {
			if containsAll(line, parts) {
				n++
			}
		}
		for len(seen) < n {
			seen = append(seen, time.Now())
		}
		return len(seen) >= retries, fmt.Sprintf("%d retries logged", len(seen))
	})
	gaps := make([]string, 0, len(seen))
	for i := 1; i < len(seen); i++ {
		gap := seen[i].Sub(seen[i-1])
		gaps = append(gaps, gap.Round(10*time.Millisecond).String())
		if gap > probe+slack {
			t.Errorf("retry %d came %s after the previous one; the cap is the probe interval %s (+%s for the reconcile)", i, gap, probe, slack)
		}
	}
	t.Logf("gaps between retries of %s (probe interval %s): %s", name, probe, strings.Join(gaps, " "))
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

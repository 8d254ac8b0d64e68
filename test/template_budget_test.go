package test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// templateES returns an ExternalSecret whose Secret key "k" is rendered by
// tpl over the store's "user" and "pass".
func templateES(name, tpl string) string {
	return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %s
spec:
  secretStoreRef: {name: store}
  target:
    template:
      data:
        k: %q
  data:
    - {secretKey: user, remoteRef: {key: user}}
    - {secretKey: pass, remoteRef: {key: pass}}
`, name, tpl)
}

// heapPeak samples the operator's heap (it runs in this process) until
// stopped and returns the highest HeapAlloc seen.
func heapPeak(ctx context.Context) func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { <-done; return peak.Load() }
}

// TestTemplateOverItsBudgetFailsAloneAndOthersKeepSyncing: templates that
// would loop for minutes or allocate gigabytes get Ready=False with
// TemplateBudgetExceeded (by the step, list-length and time budgets), while
// the other ExternalSecrets sync promptly and the operator's memory stays
// bounded.
func TestTemplateOverItsBudgetFailsAloneAndOthersKeepSyncing(t *testing.T) {
	ns := env.Namespace(t)
	const canary = "budget-canary-3c9a"
	env.Apply(t, ns, fakeStore("store", "user", "alice", "pass", canary))

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	ctx, stop := context.WithCancel(context.Background())
	peak := heapPeak(ctx)

	var b strings.Builder
	b.WriteString(templateES("range-int", "{{ range 1000000000 }}x{{ end }}") + "---\n")
	b.WriteString(templateES("until", "{{ range until 100000000 }}{{ . }}{{ end }}") + "---\n")
	// Small values, few steps, but minutes of CPU: only the deadline stops it.
	b.WriteString(templateES("slow", `{{ $s := repeat 1000000 "a" }}{{ range 100000 }}{{ $h := sha256sum $s }}{{ end }}`) + "---\n")
	for i := range 5 {
		b.WriteString(templateES(fmt.Sprintf("normal-%d", i), "{{ .user }}:{{ .pass }}") + "---\n")
	}
	start := time.Now()
	env.Apply(t, ns, b.String())
	for i := range 5 {
		name := fmt.Sprintf("normal-%d", i)
		env.WaitReady(t, ns, name, metav1.ConditionTrue, "SecretSynced")
		env.WaitSecret(t, ns, name, testenv.HasData(map[string]string{"k": "alice:" + canary}))
	}
	normal := time.Since(start)
	t.Logf("5 normal ExternalSecrets synced %v after applying them beside 3 over-budget ones", normal)
	if normal > 30*time.Second {
		t.Errorf("normal ExternalSecrets took %v to sync beside over-budget templates", normal)
	}

	for _, name := range []string{"range-int", "until", "slow"} {
		es := env.WaitReady(t, ns, name, metav1.ConditionFalse, engine.ReasonTemplateBudgetExceeded)
		t.Logf("%s: %s", name, testenv.ReadyCondition(es).Message)
		assertNoLeakInObject(t, ns, name, canary)
	}

	// While the bad ones are failing, another ExternalSecret still syncs.
	start = time.Now()
	env.Apply(t, ns, templateES("late", "{{ .pass | upper }}"))
	env.WaitSecret(t, ns, "late", testenv.HasData(map[string]string{"k": strings.ToUpper(canary)}))
	t.Logf("an ExternalSecret created after the failures synced in %v", time.Since(start))

	stop()
	grew := int64(peak()) - int64(base)
	t.Logf("operator heap grew by at most %d MiB", grew>>20)
	if grew > 256<<20 {
		t.Errorf("operator heap grew by %d MiB rendering over-budget templates", grew>>20)
	}
	env.AssertNoLeak(t, canary)
}

// TestTemplateErrorsNeverQuoteValues: an execution error that text/template
// would word with the value ("range can't iterate over <value>") reaches
// the status, Events and logs as a location and a fixed description.
func TestTemplateErrorsNeverQuoteValues(t *testing.T) {
	ns := env.Namespace(t)
	const canary = "tpl-error-canary-51d0"
	env.Apply(t, ns, fakeStore("store", "user", "alice", "pass", canary))
	env.Apply(t, ns, templateES("range-value", "{{ range .pass }}{{ end }}")+"---\n"+templateES("compare-value", "{{ eq .pass (list 1) }}"))
	es := env.WaitReady(t, ns, "range-value", metav1.ConditionFalse, engine.ReasonTemplateFailed)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, "line 1, column 9: range over a value that cannot be iterated") {
		t.Errorf("message does not give the location and description: %s", msg)
	}
	env.WaitReady(t, ns, "compare-value", metav1.ConditionFalse, engine.ReasonTemplateFailed)
	testenv.Eventually(t, "a Warning Event for range-value", func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, ns, "range-value")
		if err != nil {
			return false, err.Error()
		}
		return len(evs) > 0, "no Event"
	})
	for _, name := range []string{"range-value", "compare-value"} {
		assertNoLeakInObject(t, ns, name, canary)
	}
	env.AssertNoLeak(t, canary)
}

func TestInvalidRenderedKeyIsNeverQuoted(t *testing.T) {
	ns := env.Namespace(t)
	const canary = "key-canary-7c3e"
	env.Apply(t, ns, fakeStore("store", "user", "alice", "pass", canary+" with spaces"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: value-as-key
spec:
  secretStoreRef: {name: store}
  target:
    template:
      templateFrom:
        - literal: '{{ .pass | quote }}: v'
  data:
    - {secretKey: pass, remoteRef: {key: pass}}
`)
	es := env.WaitReady(t, ns, "value-as-key", metav1.ConditionFalse, engine.ReasonInvalidSpec)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, "the template rendered a key that is not a valid Secret key") {
		t.Errorf("message does not say a rendered key is invalid: %s", msg)
	}
	assertNoLeakInObject(t, ns, "value-as-key", canary)
	env.AssertNoLeak(t, canary)
}

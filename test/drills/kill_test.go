//go:build linux

package drills

import (
	"testing"
	"time"
)

// killSyncTimeout bounds how long one run of the operator may take to reach
// its kill point (or, for the last run, to finish the sync).
const killSyncTimeout = 90 * time.Second

// The operator is killed with SIGKILL three times during its first sync of
// 100 ExternalSecrets (at 30 %, 70 % and 100 % of Secrets written) and
// started again each time: no Secret is ever observed with a missing, empty
// or wrong value, every Secret is right and every ExternalSecret Ready at
// the end, and the backend saw at most one call per distinct key per run.
func TestSIGKILLDuringFirstSync(t *testing.T) {
	const n, d, k = 100, 3, 50
	w := newWorkload(t, n, d, k, time.Hour)
	// Slow answers spread the sync over seconds, so the kills land mid-sync.
	w.be.setLatency(25 * time.Millisecond)
	o := w.observe(t)

	start := time.Now()
	killAt := []int{30, 70, 100} // percent of Secrets right
	runs := 0
	for _, pct := range killAt {
		p := startOperator(t, "keyferry-"+itoa(runs), w.ns, "--concurrent=4")
		runs++
		o.waitRight(t, n*pct/100, killSyncTimeout)
		p.kill(t)
		t.Logf("killed run %d at %d of %d Secrets right (%d backend calls so far, %.1fs)", runs, o.rightCount(), n, w.be.calls.Load(), time.Since(start).Seconds())
	}
	p := startOperator(t, "keyferry-"+itoa(runs), w.ns, "--concurrent=4")
	runs++
	o.waitRight(t, n, killSyncTimeout)
	w.waitAllReady(t)
	p.assertAlive(t)
	elapsed := time.Since(start)

	o.assertClean(t)
	calls := w.be.calls.Load()
	t.Logf("FIGURE kill: %d ExternalSecrets over %d keys, %d runs (3 SIGKILLs), all right and Ready after %.1fs, %d backend calls (cap %d)",
		n, k, runs, elapsed.Seconds(), calls, k*runs)
	if calls > int64(k*runs) {
		t.Errorf("%d backend calls over %d runs, want at most %d (one per distinct key per run)", calls, runs, k*runs)
	}
}

//go:build linux

package drills

import (
	"context"
	"strings"
	"testing"
	"time"
)

const (
	// apiServerDown is how long the API server stays stopped.
	apiServerDown = 20 * time.Second
	// apiRestartRefresh is the ExternalSecrets' refreshInterval.
	apiRestartRefresh = 10 * time.Second
	// apiRestartCap bounds the time from rotating the values (right after
	// the API server is back) until every Secret holds them: one refresh
	// interval plus its jitter (a tenth) and a margin for a loaded machine.
	apiRestartCap = apiRestartRefresh + apiRestartRefresh/10 + 10*time.Second
)

// The API server is stopped for 20 s and started again on the same etcd,
// port and certificates: the operator keeps running, reconnects by itself,
// and values rotated after the restart reach every Secret within one
// refresh; no Secret is ever observed wrong or deleted.
func TestAPIServerRestart(t *testing.T) {
	const n, d, k = 10, 1, 5
	w := newWorkload(t, n, d, k, apiRestartRefresh)
	o := w.observe(t)
	p := startOperator(t, "keyferry", w.ns)
	o.waitRight(t, n, killSyncTimeout)
	w.waitAllReady(t)

	ctx := context.Background()
	stopped := time.Now()
	if err := apiServer.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopTook := time.Since(stopped)
	waitFor(apiServerDown - stopTook)
	if err := apiServer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	down := time.Since(stopped)
	p.assertAlive(t)

	logBefore := len(p.logs())
	w.be.rotate(w.keys()...)
	rotated := time.Now()
	o.waitRight(t, n, apiRestartCap+30*time.Second)
	reached := time.Since(rotated)
	w.waitAllReady(t)
	ready := time.Since(rotated)
	p.assertAlive(t)
	conflicts := strings.Count(p.logs()[logBefore:], "Conflict (409)")

	o.assertClean(t)
	t.Logf("FIGURE apiserver: API server stopped in %.1fs (SIGTERM, SIGKILL after 5s), down %.1fs; a value rotated after the restart reached every Secret in %.1fs (refreshInterval %s, cap %s), every ExternalSecret Ready after %.1fs; %d log lines with a 409 Conflict after the restart",
		stopTook.Seconds(), down.Seconds(), reached.Seconds(), apiRestartRefresh, apiRestartCap, ready.Seconds(), conflicts)
	if reached > apiRestartCap {
		t.Errorf("the rotated value took %.1fs to reach every Secret, cap %s", reached.Seconds(), apiRestartCap)
	}
}

//go:build linux

package drills

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

const (
	// leaseDuration, renewDeadline and retryPeriod are controller-runtime's
	// leader election defaults, which `keyferry controller` uses.
	leaseDuration = 15 * time.Second
	retryPeriod   = 2 * time.Second
	// takeoverCap bounds the time from SIGKILL of the leader until the
	// standby holds the lease: the lease must expire, then the standby's
	// next try (the retry period with client-go's jitter of 1.2), plus a
	// margin for a loaded machine.
	takeoverCap = leaseDuration + retryPeriod*12/10 + 8*time.Second
	// leaseName is the operator's leader election lease.
	leaseName = "keyferry.io"
)

// Two replicas run with --leader-elect: only the leader starts its
// controllers; when it is killed with SIGKILL the standby takes over within
// the lease duration (plus its retry period and a margin), keeps the
// Secrets right (a value rotated after the takeover reaches every Secret)
// and makes no burst of backend calls.
func TestLeaderFailover(t *testing.T) {
	const n, d, k = 20, 1, 10
	w := newWorkload(t, n, d, k, 10*time.Second)
	o := w.observe(t)
	flags := []string{"--leader-elect", "--leader-election-namespace=" + w.ns}
	a := startOperator(t, "replica-a", w.ns, flags...)
	holderA := waitLeaseHolder(t, w.ns, "")
	b := startOperator(t, "replica-b", w.ns, flags...)
	o.waitRight(t, n, killSyncTimeout)
	w.waitAllReady(t)
	waitLogged(t, b, "Attempting to acquire leader lease")

	if started(b) {
		t.Fatalf("the standby started its controllers while the leader ran")
	}
	if strings.Contains(b.logs(), externalsecret.HeadStartLog) {
		t.Fatalf("the standby ran the head start while the leader ran")
	}
	if !started(a) || !strings.Contains(a.logs(), externalsecret.HeadStartLog) {
		t.Fatalf("the leader logged no started controllers or no head start")
	}
	callsBefore := w.be.calls.Load()
	killed := time.Now()
	a.kill(t)
	holderB := waitLeaseHolder(t, w.ns, holderA)
	takeover := time.Since(killed)
	waitLogged(t, b, "Starting workers")

	w.be.rotate(w.keys()...)
	o.waitRight(t, n, killSyncTimeout)
	w.waitAllReady(t)
	b.assertAlive(t)
	calls := w.be.calls.Load() - callsBefore

	o.assertClean(t)
	t.Logf("FIGURE failover: leader %s killed, %s took over after %.1fs (lease %s, cap %s); %d backend calls from the kill until a rotation of all %d keys reached every Secret (cap %d)",
		holderA, holderB, takeover.Seconds(), leaseDuration, takeoverCap, calls, k, 2*k)
	if takeover > takeoverCap {
		t.Errorf("takeover took %.1fs, cap %s", takeover.Seconds(), takeoverCap)
	}
	if calls > int64(2*k) {
		t.Errorf("%d backend calls after the takeover, want at most %d (one per key before and after the rotation)", calls, 2*k)
	}
}

// waitLeaseHolder waits until the lease has a holder other than not, and
// returns it.
func waitLeaseHolder(t *testing.T, ns, not string) string {
	t.Helper()
	var holder string
	testenv.Eventually(t, "a new leader", func(ctx context.Context) (bool, string) {
		var l coordinationv1.Lease
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, &l); err != nil {
			return false, err.Error()
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || *l.Spec.HolderIdentity == not {
			return false, "holder unchanged"
		}
		holder = *l.Spec.HolderIdentity
		return true, ""
	})
	return holder
}

// started says whether the process logged that a controller started its
// workers.
func started(p *operatorProc) bool {
	return strings.Contains(p.logs(), "Starting workers")
}

// waitLogged waits until the process's log contains s.
func waitLogged(t *testing.T, p *operatorProc, s string) {
	t.Helper()
	testenv.Eventually(t, p.name+" logging "+s, func(context.Context) (bool, string) {
		return strings.Contains(p.logs(), s), "not logged yet"
	})
}

// handoverCap bounds the time from SIGTERM of the leader until the standby
// holds the lease: the leader releases it as it stops, so the standby's
// next try takes it (the retry period with client-go's jitter), far sooner
// than the lease would expire; plus a margin for a loaded machine.
const handoverCap = retryPeriod*12/10 + 5*time.Second

// shutdownCap bounds how long the leader takes to exit after SIGTERM:
// controller-runtime's graceful shutdown waits at most 30 s for running
// syncs.
const shutdownCap = 30 * time.Second

// On SIGTERM (a rolling update, a drained node) the leader finishes, hands
// the lease over and exits 0; the standby takes over at once rather than
// after the lease expires, and keeps the Secrets right.
func TestLeaderHandsOverOnSIGTERM(t *testing.T) {
	const n, d, k = 10, 1, 5
	w := newWorkload(t, n, d, k, 10*time.Second)
	o := w.observe(t)
	flags := []string{"--leader-elect", "--leader-election-namespace=" + w.ns}
	a := startOperator(t, "replica-a", w.ns, flags...)
	holderA := waitLeaseHolder(t, w.ns, "")
	b := startOperator(t, "replica-b", w.ns, flags...)
	o.waitRight(t, n, killSyncTimeout)
	w.waitAllReady(t)
	waitLogged(t, b, "Attempting to acquire leader lease")

	stopped := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	holderB := waitLeaseHolder(t, w.ns, holderA)
	handover := time.Since(stopped)
	select {
	case <-a.done:
	case <-time.After(shutdownCap):
		t.Fatalf("the leader had not exited %s after SIGTERM", shutdownCap)
	}
	exited := time.Since(stopped)
	if code := a.state.ExitCode(); code != 0 {
		a.logTail(t, 15)
		t.Errorf("the leader exited with code %d after SIGTERM, want 0", code)
	}
	waitLogged(t, b, "Starting workers")

	w.be.rotate(w.keys()...)
	o.waitRight(t, n, killSyncTimeout)
	w.waitAllReady(t)
	b.assertAlive(t)
	o.assertClean(t)
	t.Logf("FIGURE handover: leader %s got SIGTERM, exited after %.1fs (cap %s); %s held the lease after %.1fs (cap %s; lease %s)",
		holderA, exited.Seconds(), shutdownCap, holderB, handover.Seconds(), handoverCap, leaseDuration)
	if handover > handoverCap {
		t.Errorf("handover took %.1fs, cap %s: the leader did not release its lease", handover.Seconds(), handoverCap)
	}
}

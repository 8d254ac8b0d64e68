package refresh

import (
	"errors"
	"math/rand/v2"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/fetch"
)

// DefaultProbeInterval is the longest an object waits before it retries a
// sync that failed because its store is unreachable, throttled or backed
// off: the fetch layer's probe interval, so that object requeues never grow
// beyond the interval at which a failing store is probed.
const DefaultProbeInterval = fetch.DefaultProbeInterval

// Requeue schedules a routine check d from now at low priority, so first
// syncs and user edits are served before it. d <= 0 means one second.
func Requeue(d time.Duration) reconcile.Result {
	if d <= 0 {
		d = time.Second
	}
	p := handler.LowPriority
	return reconcile.Result{RequeueAfter: d, Priority: &p}
}

// Periodic schedules the next periodic check an interval (with Jitter)
// from now.
func Periodic(interval time.Duration) reconcile.Result {
	return Requeue(Jitter(interval))
}

// Jitter spreads d by up to +10%, so that the checks of objects created
// together do not fire together.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + rand.N(d/10+1)
}

// Transient says whether a failed sync may succeed by itself soon because
// its store recovers: the store is unreachable, throttled, or backed off
// after recent failures. Other failures (an invalid spec, a refused write,
// a missing remote value, a template over its budget) are not.
func Transient(err error) bool {
	var be *fetch.BackoffError
	if errors.As(err, &be) {
		return true
	}
	var ee *engine.Error
	return errors.As(err, &ee) && (ee.Reason == engine.ReasonUnreachable || ee.Reason == engine.ReasonThrottled)
}

// RetryDelay is when to retry after a transient failure: at most the probe
// interval (DefaultProbeInterval when probe is 0) and at most the refresh
// interval (when not 0), spread downwards by up to 10%; sooner when the
// store asked to wait less (retryAfter).
func RetryDelay(interval, probe, retryAfter time.Duration) time.Duration {
	limit := probe
	if limit <= 0 {
		limit = DefaultProbeInterval
	}
	if interval > 0 {
		limit = min(limit, interval)
	}
	base := limit * 9 / 10
	if retryAfter > 0 && retryAfter < base {
		base = retryAfter
	}
	return min(Jitter(base), limit)
}

// Retry returns the requeue for a sync that failed with err, and true,
// when the failure says when to retry:
//   - a Transient failure is retried after RetryDelay, never more than a
//     probe interval later (a retry while the store backs off is answered
//     without calling it, and the fetch layer also wakes the object the
//     moment the store answers again);
//   - a failure for which the engine asked to wait (engine.Error.RetryAfter:
//     a template over its budget, a write that would blank the Secret) is
//     retried after that wait.
//
// Otherwise it returns false and the controller keeps its own handling: an
// error for controller-runtime's per-item backoff, or waiting for a change.
func Retry(err error, interval, probe time.Duration) (reconcile.Result, bool) {
	var ee *engine.Error
	hasEE := errors.As(err, &ee)
	if Transient(err) {
		var retryAfter time.Duration
		var be *fetch.BackoffError
		switch {
		case hasEE && ee.RetryAfter > 0:
			retryAfter = ee.RetryAfter
		case errors.As(err, &be):
			retryAfter = time.Until(be.Until)
		}
		return reconcile.Result{RequeueAfter: max(RetryDelay(interval, probe, retryAfter), minRetry)}, true
	}
	if hasEE && ee.RetryAfter > 0 {
		return reconcile.Result{RequeueAfter: ee.RetryAfter}, true
	}
	return reconcile.Result{}, false
}

// minRetry is the shortest retry of a transient failure.
const minRetry = 100 * time.Millisecond

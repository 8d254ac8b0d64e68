// Package refresh is the one scheduler of keyferry's front-end controllers:
// it decides whether an object (an ExternalSecret, a SecretSync) is synced
// now or when it is looked at again, remembers what this process knows of
// each object's last sync, and computes every requeue.
//
// The decision is a chain of small named checks, in the style of
// cert-manager's certificate policies: each check looks at an Input the
// controller gathered (status, the target Secret, this process's Record)
// and either passes or decides, with a stable reason and a human message
// that the controller logs. Decide runs a chain and the first check that
// decides wins. Each front-end picks its chain (ExternalSecretChecks,
// SecretSyncChecks) from the same checks, so a rule such as "someone edited
// the Secret: restore it" or "after a restart, spread the first checks" is
// written once.
//
// The helpers in requeue.go compute the controllers' requeues: Requeue (a
// routine check, at low priority), Periodic and Jitter (spread by up to
// +10%), and Retry (a transient store failure is retried at most a probe
// interval later instead of going to controller-runtime's per-item
// exponential backoff, which climbs to many minutes while a store is down;
// a failure for which the engine said when to retry waits that long).
package refresh

import (
	"fmt"
	"math/rand/v2"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Policy is when an object is refreshed, as ESO's spec.refreshPolicy.
type Policy int

const (
	// PolicyPeriodic refreshes every Input.Interval (ESO's Periodic, the
	// default).
	PolicyPeriodic Policy = iota
	// PolicyOnChange syncs only when the object changes (or its Secret must be
	// restored).
	PolicyOnChange
	// PolicyCreatedOnce syncs until the Secret exists, then never again.
	PolicyCreatedOnce
)

// Input is what the checks look at. The controller gathers it; the checks
// are pure functions of it.
type Input struct {
	// Now is the time of the decision.
	Now time.Time
	// Interval is the refresh interval; 0 means no periodic refresh.
	Interval time.Duration
	// Policy is the refresh policy (PolicyPeriodic when the kind has none).
	Policy Policy
	// StartupSpread bounds how far after a restart the first check of an
	// object synced before is spread.
	StartupSpread time.Duration
	// RetryMaxAge bounds the age of cached values a retry of a failed sync
	// of the same configuration accepts (NotSyncedSinceAttempt).
	RetryMaxAge time.Duration

	// StatusBehind says the object as read is the very version this
	// process last wrote a status over: the cache has not caught up with
	// that write yet, so what the status says is stale.
	StatusBehind bool
	// Synced says the object's status reports a successful sync of its
	// current spec.
	Synced bool
	// LastSync is when the status says the object last synced.
	LastSync time.Time
	// Config identifies what the object is synced from now: the
	// ExternalSecret's force-sync annotation, the fingerprint of a
	// SecretSync and its SecretProviderClass.
	Config string
	// Record is what this process remembers of the object's last sync; nil
	// for an object this process has not synced or looked at yet.
	Record *Record
	// Woken says the object was woken for a refresh (a change
	// notification): a periodic refresh is then due at once.
	Woken bool

	// SecretExists says the target Secret exists (or none is wanted).
	SecretExists bool
	// SecretRV is the target Secret's resourceVersion.
	SecretRV string
	// SecretSource is what the target Secret records it was written from,
	// and Source what it would be written from now; both are empty for a
	// kind that records nothing on its Secrets.
	SecretSource, Source string
}

// Decision is the outcome of a chain.
type Decision struct {
	// Sync says whether to sync now.
	Sync bool
	// Reason names the check that decided (CamelCase, stable); Message
	// says why, for logs.
	Reason, Message string
	// MaxAge is the age of cached values the sync accepts; 0 fetches
	// fresh.
	MaxAge time.Duration
	// Restore says the sync only puts the Secret back (it was edited or
	// deleted); it is not a check of the store.
	Restore bool
	// Wait is how long until the next check when not syncing now.
	Wait time.Duration
	// Idle says there is no periodic check: the object waits for an event
	// (its own change, its Secret's, a change notification).
	Idle bool
	// Remember, when set, is the record the controller stores for the
	// object (Memory.Put) before acting on the decision.
	Remember *Record
}

// Result is the reconcile result of a decision not to sync now.
func (d Decision) Result() reconcile.Result {
	if d.Idle {
		return reconcile.Result{}
	}
	return Requeue(d.Wait)
}

// Check is one named rule: it decides (true) or passes to the next (false).
type Check func(in *Input) (Decision, bool)

// ExternalSecretChecks decide whether an ExternalSecret syncs now. Every
// wake-up of a synced ExternalSecret is a refresh (the controller sets
// Input.Woken): values fetched within the interval are reused, so an early
// wake-up costs no call to the store.
var ExternalSecretChecks = []Check{
	StatusCaughtUp,
	NotSynced,
	SecretMissing,
	CreatedOnceExists,
	SecretChanged,
	NoPeriodicRefresh,
	FirstLookSinceStart,
	RefreshDue,
}

// SecretSyncChecks decide whether a SecretSync syncs now: the vault is
// checked once per rotation poll interval, or when another object saw a
// value change (Input.Woken).
var SecretSyncChecks = []Check{
	NotSyncedSinceAttempt,
	ConfigChanged,
	SecretMissing,
	SourceChangedSinceStart,
	FirstLookSinceStart,
	SecretChanged,
	RefreshDue,
	NotDue,
}

// Reasons of the checks' decisions.
const (
	ReasonStatusBehind   = "StatusNotCaughtUp"
	ReasonNotSynced      = "NotSynced"
	ReasonFreshFetch     = "FreshFetchRequested"
	ReasonConfigChanged  = "ConfigurationChanged"
	ReasonSecretMissing  = "SecretMissing"
	ReasonCreatedOnce    = "CreatedOnce"
	ReasonSecretChanged  = "SecretChanged"
	ReasonNoPeriodic     = "NoPeriodicRefresh"
	ReasonSourceChanged  = "SourceChanged"
	ReasonStartupSpread  = "FirstLookSinceStart"
	ReasonRefreshDue     = "RefreshDue"
	ReasonWoken          = "ChangeNotified"
	ReasonNotDue         = "NotDue"
	ReasonNoCheckDecided = "NoCheckDecided"
)

// Decide runs checks in order; the first that decides wins. When none
// decides, the object syncs with values fetched within the interval.
func Decide(in Input, checks []Check) Decision {
	for _, check := range checks {
		if d, ok := check(&in); ok {
			return d
		}
	}
	return Decision{Sync: true, MaxAge: in.Interval, Reason: ReasonNoCheckDecided, Message: "no check decided; syncing with values fetched within the refresh interval"}
}

// configChanged says the record is of another configuration than now.
func (in *Input) configChanged() bool {
	return in.Record != nil && in.Record.Config != in.Config
}

// statusBehindWait is how soon an object whose cached status is behind
// this process's own write is looked at again: status-only updates do not
// wake the controller, so it asks to.
const statusBehindWait = time.Second

// StatusCaughtUp: the object as read predates this process's own status
// write (the cache lags), so its status cannot say whether it is synced; it
// is looked at again shortly rather than synced twice (which, with
// refreshPolicy CreatedOnce, would update the Secret it created).
func StatusCaughtUp(in *Input) (Decision, bool) {
	if !in.StatusBehind {
		return Decision{}, false
	}
	return Decision{Wait: statusBehindWait, Reason: ReasonStatusBehind, Message: "the cached object predates this process's last status write"}, true
}

// NotSynced: the status does not show the current spec synced (a new
// object, a spec or metadata edit, or the last sync failed). Values fetched
// within the interval are good enough, except when the configuration
// changed since this process's record (a force-sync, or a fresh fetch that
// failed), which asks for fresh ones.
func NotSynced(in *Input) (Decision, bool) {
	if in.Synced {
		return Decision{}, false
	}
	if in.configChanged() {
		return Decision{Sync: true, Reason: ReasonFreshFetch, Message: "a fresh fetch was requested (force-sync) and has not succeeded yet"}, true
	}
	return Decision{Sync: true, MaxAge: in.Interval, Reason: ReasonNotSynced, Message: "the status does not show the current spec synced"}, true
}

// NotSyncedSinceAttempt: the status does not show the current
// configuration synced. A retry of the configuration this process already
// tried accepts values fetched since that first attempt and within
// RetryMaxAge (so a missing object is looked for at most once per
// RetryMaxAge, and a forced sync is never answered with values from before
// it); anything else fetches fresh.
func NotSyncedSinceAttempt(in *Input) (Decision, bool) {
	if in.Synced {
		return Decision{}, false
	}
	if rec := in.Record; rec != nil && rec.Config == in.Config && !rec.Since.IsZero() {
		age := max(min(in.Now.Sub(rec.Since), in.Interval, in.RetryMaxAge), 0)
		return Decision{Sync: true, MaxAge: age, Reason: ReasonNotSynced, Message: "retrying the configuration last attempted"}, true
	}
	return Decision{Sync: true, Reason: ReasonNotSynced, Message: "the status does not show the current configuration synced"}, true
}

// ConfigChanged: the configuration changed since this process's record (a
// forced sync, a spec change, a change of what the object reads from):
// values are fetched fresh.
func ConfigChanged(in *Input) (Decision, bool) {
	if !in.configChanged() {
		return Decision{}, false
	}
	return Decision{Sync: true, Reason: ReasonConfigChanged, Message: "the configuration changed since the last sync"}, true
}

// SecretMissing: the target Secret was deleted or is not visible yet; it is
// restored from values fetched within the interval.
func SecretMissing(in *Input) (Decision, bool) {
	if in.SecretExists {
		return Decision{}, false
	}
	return Decision{Sync: true, MaxAge: in.Interval, Restore: true, Reason: ReasonSecretMissing, Message: "the target Secret does not exist"}, true
}

// CreatedOnceExists: refreshPolicy CreatedOnce and the Secret exists:
// nothing is synced again.
func CreatedOnceExists(in *Input) (Decision, bool) {
	if in.Policy != PolicyCreatedOnce {
		return Decision{}, false
	}
	return Decision{Idle: true, Reason: ReasonCreatedOnce, Message: "refreshPolicy CreatedOnce and the Secret exists"}, true
}

// SecretChanged: someone else changed the Secret since this process's last
// sync; it is restored from values fetched within the interval.
func SecretChanged(in *Input) (Decision, bool) {
	if in.Record == nil || in.SecretRV == in.Record.SecretRV {
		return Decision{}, false
	}
	return Decision{Sync: true, MaxAge: in.Interval, Restore: true, Reason: ReasonSecretChanged, Message: "the Secret changed since the last sync"}, true
}

// NoPeriodicRefresh: refreshPolicy OnChange or a zero interval: no
// periodic refresh. An object seen for the first time is remembered, so a
// later edit of its Secret is noticed.
func NoPeriodicRefresh(in *Input) (Decision, bool) {
	if in.Policy != PolicyOnChange && in.Interval != 0 {
		return Decision{}, false
	}
	d := Decision{Idle: true, Reason: ReasonNoPeriodic, Message: "no periodic refresh (refreshPolicy OnChange or a zero interval)"}
	if in.Record == nil {
		d.Remember = &Record{Config: in.Config, SecretRV: in.SecretRV}
	}
	return d, true
}

// SourceChangedSinceStart: first look since this process started, and the
// Secret was written from another source than the object reads now (its
// SecretProviderClass changed meanwhile): values are fetched fresh.
func SourceChangedSinceStart(in *Input) (Decision, bool) {
	if in.Record != nil || in.SecretSource == in.Source {
		return Decision{}, false
	}
	return Decision{Sync: true, Reason: ReasonSourceChanged, Message: "the Secret was written from another configuration before this process started"}, true
}

// FirstLookSinceStart: first look since this process started at an object
// synced before. Its check keeps the schedule the status implies (last sync
// plus the interval); overdue checks are spread over
// min(interval, StartupSpread) so that a restart does not fetch everything
// at once.
func FirstLookSinceStart(in *Input) (Decision, bool) {
	if in.Record != nil {
		return Decision{}, false
	}
	var next time.Time
	if !in.LastSync.IsZero() {
		next = in.LastSync.Add(in.Interval)
	}
	if !next.After(in.Now) {
		next = in.Now.Add(rand.N(min(in.Interval, in.StartupSpread) + 1))
	}
	wait := next.Sub(in.Now)
	return Decision{
		Wait: wait, Reason: ReasonStartupSpread,
		Message:  fmt.Sprintf("first look since start at an object synced before; next check in %s", wait.Round(time.Second)),
		Remember: &Record{Config: in.Config, SecretRV: in.SecretRV, Next: next},
	}, true
}

// RefreshDue: the scheduled check is due, or the object was woken for a
// refresh. Values fetched within the interval are reused, so the store is
// asked once per interval however many objects read it.
func RefreshDue(in *Input) (Decision, bool) {
	switch {
	case in.Record == nil:
		return Decision{}, false
	case in.Woken:
		return Decision{Sync: true, MaxAge: in.Interval, Reason: ReasonWoken, Message: "woken for a refresh"}, true
	case !in.Now.Before(in.Record.Next):
		return Decision{Sync: true, MaxAge: in.Interval, Reason: ReasonRefreshDue, Message: "the periodic refresh is due"}, true
	}
	return Decision{}, false
}

// NotDue: nothing to do until the scheduled check.
func NotDue(in *Input) (Decision, bool) {
	if in.Record == nil {
		return Decision{}, false
	}
	wait := in.Record.Next.Sub(in.Now)
	return Decision{Wait: wait, Reason: ReasonNotDue, Message: fmt.Sprintf("next check in %s", wait.Round(time.Second))}, true
}

package refresh

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// synced is the Input of an ExternalSecret synced by this process a
// moment ago whose Secret is as it left it.
func synced() Input {
	return Input{
		Now: t0, Interval: time.Hour, StartupSpread: 5 * time.Minute, RetryMaxAge: time.Minute,
		Synced: true, LastSync: t0.Add(-time.Minute), Config: "c1",
		Record:       &Record{Config: "c1", SecretRV: "7", Next: t0.Add(59 * time.Minute)},
		SecretExists: true, SecretRV: "7",
	}
}

func TestChecks(t *testing.T) {
	tests := []struct {
		name   string
		check  Check
		tweak  func(*Input)
		passes bool
		want   Decision // compared on Sync, Reason, MaxAge, Restore, Idle, Wait
	}{
		{name: "StatusCaughtUp passes an object whose cache is current", check: StatusCaughtUp, passes: true},
		{name: "StatusCaughtUp waits for the cache to show this process's status write", check: StatusCaughtUp, tweak: func(in *Input) { in.StatusBehind = true },
			want: Decision{Reason: ReasonStatusBehind, Wait: time.Second}},
		{name: "NotSynced passes a synced object", check: NotSynced, passes: true},
		{name: "NotSynced accepts values within the interval", check: NotSynced, tweak: func(in *Input) { in.Synced = false },
			want: Decision{Sync: true, Reason: ReasonNotSynced, MaxAge: time.Hour}},
		{name: "NotSynced of an unknown object accepts values within the interval", check: NotSynced, tweak: func(in *Input) { in.Synced, in.Record = false, nil },
			want: Decision{Sync: true, Reason: ReasonNotSynced, MaxAge: time.Hour}},
		{name: "NotSynced after a force-sync fetches fresh", check: NotSynced, tweak: func(in *Input) { in.Synced, in.Config = false, "c2" },
			want: Decision{Sync: true, Reason: ReasonFreshFetch}},

		{name: "NotSyncedSinceAttempt passes a synced object", check: NotSyncedSinceAttempt, passes: true},
		{name: "NotSyncedSinceAttempt of a new configuration fetches fresh", check: NotSyncedSinceAttempt, tweak: func(in *Input) { in.Synced = false },
			want: Decision{Sync: true, Reason: ReasonNotSynced}},
		{name: "NotSyncedSinceAttempt retry accepts values since the attempt", check: NotSyncedSinceAttempt,
			tweak: func(in *Input) { in.Synced, in.Record.Since = false, t0.Add(-20*time.Second) },
			want:  Decision{Sync: true, Reason: ReasonNotSynced, MaxAge: 20 * time.Second}},
		{name: "NotSyncedSinceAttempt retry accepts at most RetryMaxAge", check: NotSyncedSinceAttempt,
			tweak: func(in *Input) { in.Synced, in.Record.Since = false, t0.Add(-time.Hour) },
			want:  Decision{Sync: true, Reason: ReasonNotSynced, MaxAge: time.Minute}},
		{name: "NotSyncedSinceAttempt retry accepts at most the interval", check: NotSyncedSinceAttempt,
			tweak: func(in *Input) { in.Synced, in.Interval, in.Record.Since = false, 10*time.Second, t0.Add(-time.Hour) },
			want:  Decision{Sync: true, Reason: ReasonNotSynced, MaxAge: 10 * time.Second}},
		{name: "NotSyncedSinceAttempt of a changed configuration fetches fresh", check: NotSyncedSinceAttempt,
			tweak: func(in *Input) { in.Synced, in.Config, in.Record.Since = false, "c2", t0.Add(-20*time.Second) },
			want:  Decision{Sync: true, Reason: ReasonNotSynced}},

		{name: "ConfigChanged passes the same configuration", check: ConfigChanged, passes: true},
		{name: "ConfigChanged passes an unknown object", check: ConfigChanged, tweak: func(in *Input) { in.Record, in.Config = nil, "c2" }, passes: true},
		{name: "ConfigChanged fetches fresh", check: ConfigChanged, tweak: func(in *Input) { in.Config = "c2" },
			want: Decision{Sync: true, Reason: ReasonConfigChanged}},

		{name: "SecretMissing passes an existing Secret", check: SecretMissing, passes: true},
		{name: "SecretMissing restores from values within the interval", check: SecretMissing, tweak: func(in *Input) { in.SecretExists = false },
			want: Decision{Sync: true, Restore: true, Reason: ReasonSecretMissing, MaxAge: time.Hour}},

		{name: "CreatedOnceExists passes Periodic", check: CreatedOnceExists, passes: true},
		{name: "CreatedOnceExists waits for nothing", check: CreatedOnceExists, tweak: func(in *Input) { in.Policy = PolicyCreatedOnce },
			want: Decision{Idle: true, Reason: ReasonCreatedOnce}},

		{name: "SecretChanged passes an unchanged Secret", check: SecretChanged, passes: true},
		{name: "SecretChanged passes an unknown object", check: SecretChanged, tweak: func(in *Input) { in.Record, in.SecretRV = nil, "8" }, passes: true},
		{name: "SecretChanged restores", check: SecretChanged, tweak: func(in *Input) { in.SecretRV = "8" },
			want: Decision{Sync: true, Restore: true, Reason: ReasonSecretChanged, MaxAge: time.Hour}},

		{name: "NoPeriodicRefresh passes Periodic with an interval", check: NoPeriodicRefresh, passes: true},
		{name: "NoPeriodicRefresh for OnChange", check: NoPeriodicRefresh, tweak: func(in *Input) { in.Policy = PolicyOnChange },
			want: Decision{Idle: true, Reason: ReasonNoPeriodic}},
		{name: "NoPeriodicRefresh for a zero interval", check: NoPeriodicRefresh, tweak: func(in *Input) { in.Interval = 0 },
			want: Decision{Idle: true, Reason: ReasonNoPeriodic}},

		{name: "SourceChangedSinceStart passes a known object", check: SourceChangedSinceStart, tweak: func(in *Input) { in.SecretSource, in.Source = "a", "b" }, passes: true},
		{name: "SourceChangedSinceStart passes the same source", check: SourceChangedSinceStart, tweak: func(in *Input) { in.Record = nil }, passes: true},
		{name: "SourceChangedSinceStart fetches fresh", check: SourceChangedSinceStart, tweak: func(in *Input) { in.Record, in.SecretSource, in.Source = nil, "a", "b" },
			want: Decision{Sync: true, Reason: ReasonSourceChanged}},

		{name: "FirstLookSinceStart passes a known object", check: FirstLookSinceStart, passes: true},
		{name: "FirstLookSinceStart keeps the schedule of the status", check: FirstLookSinceStart, tweak: func(in *Input) { in.Record = nil },
			want: Decision{Reason: ReasonStartupSpread, Wait: 59 * time.Minute}},

		{name: "RefreshDue passes before the scheduled check", check: RefreshDue, passes: true},
		{name: "RefreshDue passes an unknown object", check: RefreshDue, tweak: func(in *Input) { in.Record, in.Woken = nil, true }, passes: true},
		{name: "RefreshDue when woken", check: RefreshDue, tweak: func(in *Input) { in.Woken = true },
			want: Decision{Sync: true, Reason: ReasonWoken, MaxAge: time.Hour}},
		{name: "RefreshDue at the scheduled check", check: RefreshDue, tweak: func(in *Input) { in.Record.Next = t0 },
			want: Decision{Sync: true, Reason: ReasonRefreshDue, MaxAge: time.Hour}},
		{name: "RefreshDue when nothing is scheduled", check: RefreshDue, tweak: func(in *Input) { in.Record.Next = time.Time{} },
			want: Decision{Sync: true, Reason: ReasonRefreshDue, MaxAge: time.Hour}},

		{name: "NotDue waits for the scheduled check", check: NotDue, want: Decision{Reason: ReasonNotDue, Wait: 59 * time.Minute}},
		{name: "NotDue passes an unknown object", check: NotDue, tweak: func(in *Input) { in.Record = nil }, passes: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := synced()
			if tt.tweak != nil {
				tt.tweak(&in)
			}
			got, decided := tt.check(&in)
			if decided == tt.passes {
				t.Fatalf("decided = %v; want %v (%+v)", decided, !tt.passes, got)
			}
			if tt.passes {
				return
			}
			assertDecision(t, got, tt.want)
			if got.Message == "" {
				t.Error("a decision without a message")
			}
		})
	}
}

func assertDecision(t *testing.T, got, want Decision) {
	t.Helper()
	if got.Sync != want.Sync || got.Reason != want.Reason || got.MaxAge != want.MaxAge || got.Restore != want.Restore || got.Idle != want.Idle || got.Wait != want.Wait {
		t.Errorf("got {Sync:%v Reason:%s MaxAge:%s Restore:%v Idle:%v Wait:%s}; want {Sync:%v Reason:%s MaxAge:%s Restore:%v Idle:%v Wait:%s}",
			got.Sync, got.Reason, got.MaxAge, got.Restore, got.Idle, got.Wait, want.Sync, want.Reason, want.MaxAge, want.Restore, want.Idle, want.Wait)
	}
}

// TestFirstLookSinceStartSpreadsOverdueChecks: an object whose check is
// overdue after a restart is looked at within min(interval, StartupSpread),
// and the decision remembers it with that schedule.
func TestFirstLookSinceStartSpreadsOverdueChecks(t *testing.T) {
	for _, tt := range []struct {
		name     string
		lastSync time.Time
		interval time.Duration
		bound    time.Duration
	}{
		{name: "overdue", lastSync: t0.Add(-2 * time.Hour), interval: time.Hour, bound: 5 * time.Minute},
		{name: "never synced", interval: time.Hour, bound: 5 * time.Minute},
		{name: "interval shorter than the spread", lastSync: t0.Add(-time.Hour), interval: 10 * time.Second, bound: 10 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := synced()
			in.Record, in.LastSync, in.Interval = nil, tt.lastSync, tt.interval
			for range 200 {
				d, ok := FirstLookSinceStart(&in)
				if !ok || d.Sync || d.Wait < 0 || d.Wait > tt.bound {
					t.Fatalf("decision %+v; want a wait within [0, %s]", d, tt.bound)
				}
				if d.Remember == nil || d.Remember.Next != t0.Add(d.Wait) || d.Remember.Config != "c1" || d.Remember.SecretRV != "7" {
					t.Fatalf("remembers %+v", d.Remember)
				}
			}
		})
	}
}

// TestExternalSecretChecks runs the ExternalSecret chain: the first check
// that decides wins.
func TestExternalSecretChecks(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(*Input)
		want  Decision
	}{
		{name: "a wake-up of a synced object refreshes", want: Decision{Sync: true, Reason: ReasonWoken, MaxAge: time.Hour}},
		{name: "a stale cached status is not read as unsynced: CreatedOnce does not sync twice",
			tweak: func(in *Input) { in.StatusBehind, in.Synced, in.Policy = true, false, PolicyCreatedOnce },
			want:  Decision{Reason: ReasonStatusBehind, Wait: time.Second}},
		{name: "a spec edit syncs before a missing Secret is restored", tweak: func(in *Input) { in.Synced, in.SecretExists = false, false },
			want: Decision{Sync: true, Reason: ReasonNotSynced, MaxAge: time.Hour}},
		{name: "a missing Secret is restored even with CreatedOnce", tweak: func(in *Input) { in.SecretExists, in.Policy = false, PolicyCreatedOnce },
			want: Decision{Sync: true, Restore: true, Reason: ReasonSecretMissing, MaxAge: time.Hour}},
		{name: "CreatedOnce does not restore an edited Secret", tweak: func(in *Input) { in.SecretRV, in.Policy = "8", PolicyCreatedOnce },
			want: Decision{Idle: true, Reason: ReasonCreatedOnce}},
		{name: "OnChange restores an edited Secret", tweak: func(in *Input) { in.SecretRV, in.Policy = "8", PolicyOnChange },
			want: Decision{Sync: true, Restore: true, Reason: ReasonSecretChanged, MaxAge: time.Hour}},
		{name: "OnChange does not refresh", tweak: func(in *Input) { in.Policy = PolicyOnChange }, want: Decision{Idle: true, Reason: ReasonNoPeriodic}},
		{name: "first look after a restart", tweak: func(in *Input) { in.Record = nil }, want: Decision{Reason: ReasonStartupSpread, Wait: 59 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := synced()
			in.Woken = true // the ExternalSecret controller treats every wake-up as a refresh
			if tt.tweak != nil {
				tt.tweak(&in)
			}
			assertDecision(t, Decide(in, ExternalSecretChecks), tt.want)
		})
	}
}

// TestSecretSyncChecks runs the SecretSync chain.
func TestSecretSyncChecks(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(*Input)
		want  Decision
	}{
		{name: "before the rotation poll nothing happens", want: Decision{Reason: ReasonNotDue, Wait: 59 * time.Minute}},
		{name: "the rotation poll", tweak: func(in *Input) { in.Now = in.Record.Next }, want: Decision{Sync: true, Reason: ReasonRefreshDue, MaxAge: time.Hour}},
		{name: "a change notification", tweak: func(in *Input) { in.Woken = true }, want: Decision{Sync: true, Reason: ReasonWoken, MaxAge: time.Hour}},
		{name: "forceSynchronization fetches fresh before restoring", tweak: func(in *Input) { in.Config, in.SecretExists = "c2", false },
			want: Decision{Sync: true, Reason: ReasonConfigChanged}},
		{name: "a deleted Secret is restored", tweak: func(in *Input) { in.SecretExists = false },
			want: Decision{Sync: true, Restore: true, Reason: ReasonSecretMissing, MaxAge: time.Hour}},
		{name: "an edited Secret is restored", tweak: func(in *Input) { in.SecretRV = "8" },
			want: Decision{Sync: true, Restore: true, Reason: ReasonSecretChanged, MaxAge: time.Hour}},
		{name: "a SecretProviderClass changed while stopped", tweak: func(in *Input) { in.Record, in.SecretSource, in.Source = nil, "spc1", "spc2" },
			want: Decision{Sync: true, Reason: ReasonSourceChanged}},
		{name: "first look after a restart", tweak: func(in *Input) { in.Record, in.SecretSource, in.Source = nil, "spc1", "spc1" },
			want: Decision{Reason: ReasonStartupSpread, Wait: 59 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := synced()
			if tt.tweak != nil {
				tt.tweak(&in)
			}
			assertDecision(t, Decide(in, SecretSyncChecks), tt.want)
		})
	}
}

func TestDecideWithoutADecidingCheckSyncs(t *testing.T) {
	assertDecision(t, Decide(synced(), nil), Decision{Sync: true, Reason: ReasonNoCheckDecided, MaxAge: time.Hour})
}

func TestDecisionResult(t *testing.T) {
	if got := (Decision{Idle: true}).Result(); got.RequeueAfter != 0 {
		t.Errorf("an idle decision requeues after %s", got.RequeueAfter)
	}
	if got := (Decision{Wait: time.Minute}).Result(); got.RequeueAfter != time.Minute || got.Priority == nil {
		t.Errorf("a wait of 1m: %+v", got)
	}
	if got := (Decision{}).Result(); got.RequeueAfter != time.Second {
		t.Errorf("an overdue wait requeues after %s; want 1s", got.RequeueAfter)
	}
}

package refresh

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestMemory(t *testing.T) {
	var m Memory // the zero value is ready
	key := types.NamespacedName{Namespace: "ns", Name: "a"}
	if m.Get(key) != nil || m.TakeWoken(key) {
		t.Fatal("an empty memory knows something")
	}
	if w := m.Wait(key, t0, time.Hour); w < time.Hour || w > 66*time.Minute {
		t.Errorf("wait without a record: %s; want the interval with up to 10%% jitter", w)
	}

	m.Attempted(key, "c1", t0)
	m.Attempted(key, "c1", t0.Add(time.Minute)) // a retry keeps the first attempt
	if rec := m.Get(key); rec.Config != "c1" || !rec.Since.Equal(t0) {
		t.Fatalf("after attempts: %+v", rec)
	}
	m.Synced(key, "c1", "7", t0, time.Hour)
	rec := m.Get(key)
	if rec.SecretRV != "7" || rec.Next.Before(t0.Add(time.Hour)) || rec.Next.After(t0.Add(66*time.Minute)) || !rec.Since.Equal(t0) {
		t.Fatalf("after a sync: %+v", rec)
	}
	// A restore before the check is due keeps the schedule.
	m.Synced(key, "c1", "8", t0.Add(time.Minute), time.Hour)
	if got := m.Get(key); !got.Next.Equal(rec.Next) || got.SecretRV != "8" {
		t.Fatalf("a restore moved the schedule: %+v", got)
	}
	if w := m.Wait(key, t0, time.Hour); w != rec.Next.Sub(t0) {
		t.Errorf("wait %s; want %s", w, rec.Next.Sub(t0))
	}
	// A new configuration reschedules: an interval (with jitter) after its
	// sync, whatever the old schedule was.
	at := t0.Add(2 * time.Minute)
	m.Synced(key, "c2", "9", at, time.Hour)
	if got := m.Get(key); got.Next.Before(at.Add(time.Hour)) || got.Next.After(at.Add(66*time.Minute)) || got.Config != "c2" {
		t.Fatalf("a new configuration kept the schedule: %+v", got)
	}
	// Get returns a copy.
	m.Get(key).SecretRV = "x"
	if m.Get(key).SecretRV != "9" {
		t.Fatal("Get returned the stored record")
	}

	m.Wake(key)
	if !m.TakeWoken(key) || m.TakeWoken(key) {
		t.Fatal("a wake-up is taken exactly once")
	}
	m.Drop(key)
	if m.Get(key) != nil {
		t.Fatal("Drop kept the record")
	}
	m.Put(key, Record{Config: "c3"})
	m.Wake(key)
	m.Forget(key)
	if m.Get(key) != nil || m.TakeWoken(key) {
		t.Fatal("Forget kept something")
	}
}

// A record comes back as it was put, zero times included, though Memory
// keeps times as Unix nanoseconds.
func TestMemoryKeepsRecordsExactly(t *testing.T) {
	var m Memory
	key := types.NamespacedName{Namespace: "n", Name: "o"}
	at := time.Date(2026, 12, 5, 17, 0, 0, 123456789, time.UTC)
	for _, rec := range []Record{
		{Config: "c"},
		{Config: "c", SecretRV: "7", StatusOver: "6", Next: at, Since: at.Add(-time.Minute)},
	} {
		m.Put(key, rec)
		got := m.Get(key)
		if got.Config != rec.Config || got.SecretRV != rec.SecretRV || got.StatusOver != rec.StatusOver ||
			!got.Next.Equal(rec.Next) || !got.Since.Equal(rec.Since) || got.Next.IsZero() != rec.Next.IsZero() || got.Since.IsZero() != rec.Since.IsZero() {
			t.Errorf("Get after Put(%+v) = %+v", rec, got)
		}
	}
}

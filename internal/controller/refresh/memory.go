package refresh

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Record is what this process knows of an object's last sync.
type Record struct {
	// Config is the configuration synced (Input.Config).
	Config string
	// SecretRV is the target Secret's resourceVersion after the sync; a
	// different one means someone else changed it.
	SecretRV string
	// Next is when the store is next checked; zero: at the next wake-up.
	Next time.Time
	// Since is when a sync of Config was first attempted: values fetched
	// before it predate the configuration.
	Since time.Time
	// StatusOver is the object's resourceVersion that this process's last
	// status write replaced ("" when the last sync wrote no status): while
	// the cache still shows that version, its status is stale
	// (Input.StatusBehind).
	StatusOver string
}

// Memory holds the Records of a controller's objects and which objects were
// woken for a refresh. The zero value is ready to use; it is safe for
// concurrent reconciles.
type Memory struct {
	mu      sync.Mutex
	records map[types.NamespacedName]stored
	woken   map[types.NamespacedName]bool
}

// stored is a Record as Memory keeps it, with its times as Unix
// nanoseconds (0: the zero time): 32 bytes less than two time.Time in
// each entry of a map that holds every object.
type stored struct {
	config, secretRV, statusOver string
	next, since                  int64
}

func storedOf(r Record) stored {
	return stored{config: r.Config, secretRV: r.SecretRV, statusOver: r.StatusOver, next: unixNano(r.Next), since: unixNano(r.Since)}
}

func (s stored) record() Record {
	return Record{Config: s.config, SecretRV: s.secretRV, StatusOver: s.statusOver, Next: fromUnixNano(s.next), Since: fromUnixNano(s.since)}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Get returns a copy of the object's record, or nil.
func (m *Memory) Get(key types.NamespacedName) *Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.records[key]
	if !ok {
		return nil
	}
	rec := st.record()
	return &rec
}

// Put stores the object's record.
func (m *Memory) Put(key types.NamespacedName, rec Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = map[types.NamespacedName]stored{}
	}
	m.records[key] = storedOf(rec)
}

// Drop forgets the object's record: its next reconcile is a first look.
func (m *Memory) Drop(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, key)
}

// Forget drops everything remembered of the object (it is gone).
func (m *Memory) Forget(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, key)
	delete(m.woken, key)
}

// Synced records a successful sync of config that left the Secret at
// secretRV, and schedules the next check an interval (with Jitter) later
// unless one is already scheduled for this configuration.
func (m *Memory) Synced(key types.NamespacedName, config, secretRV string, now time.Time, interval time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = map[types.NamespacedName]stored{}
	}
	st, known := m.records[key]
	rec := st.record()
	if !known || rec.Config != config || !now.Before(rec.Next) {
		rec.Next = now.Add(Jitter(interval))
	}
	rec.Config, rec.SecretRV = config, secretRV
	m.records[key] = storedOf(rec)
}

// Attempted records that a sync of config is attempted, so that a retry
// after a failure knows it retries the same configuration (Record.Since).
func (m *Memory) Attempted(key types.NamespacedName, config string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = map[types.NamespacedName]stored{}
	}
	rec := m.records[key].record()
	if rec.Config != config || rec.Since.IsZero() {
		rec.Config, rec.Since = config, now
	}
	m.records[key] = storedOf(rec)
}

// Wait is how long until the object's next scheduled check; an object
// without a record is checked an interval (with Jitter) from now.
func (m *Memory) Wait(key types.NamespacedName, now time.Time, interval time.Duration) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st, ok := m.records[key]; ok {
		return fromUnixNano(st.next).Sub(now)
	}
	return Jitter(interval)
}

// Wake marks the object as woken for a refresh (a change notification).
func (m *Memory) Wake(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.woken == nil {
		m.woken = map[types.NamespacedName]bool{}
	}
	m.woken[key] = true
}

// TakeWoken says whether the object was woken since the last call, and
// clears the mark.
func (m *Memory) TakeWoken(key types.NamespacedName) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	woken := m.woken[key]
	delete(m.woken, key)
	return woken
}

// SetStatusOver records that this process's status write replaced the
// object's resourceVersion rv (Record.StatusOver).
func (m *Memory) SetStatusOver(key types.NamespacedName, rv string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = map[types.NamespacedName]stored{}
	}
	st := m.records[key]
	st.statusOver = rv
	m.records[key] = st
}

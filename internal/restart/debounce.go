package restart

import (
	"slices"
	"sync"
	"time"
)

// DefaultWindow is how long a workload waits after the last change of a
// Secret it restarts for before it restarts.
const DefaultWindow = 2 * time.Second

// Pending is what a workload waits to restart for.
type Pending struct {
	// First and Last are when the first and the last change arrived.
	First, Last time.Time
	// Secrets are the names of the changed Secrets, sorted, each once.
	Secrets []string
}

// Debouncer merges the Secret changes that restart a workload into one
// restart. A workload is due Window after the last change it waits for (a
// trailing debounce, so a rotation that updates many Secrets one after the
// other restarts it once), but never later than MaxWait after the first, so
// a stream of changes cannot hold a restart back forever. Safe for
// concurrent use; the zero value is not: use NewDebouncer.
type Debouncer[K comparable] struct {
	window, maxWait time.Duration

	mu      sync.Mutex
	pending map[K]*Pending
}

// NewDebouncer returns a Debouncer. window <= 0 means DefaultWindow;
// maxWait < window means 5 windows.
func NewDebouncer[K comparable](window, maxWait time.Duration) *Debouncer[K] {
	if window <= 0 {
		window = DefaultWindow
	}
	if maxWait < window {
		maxWait = 5 * window
	}
	return &Debouncer[K]{window: window, maxWait: maxWait, pending: map[K]*Pending{}}
}

// Add records that secrets changed for k at now and returns how long until k
// is due.
func (d *Debouncer[K]) Add(k K, secrets []string, now time.Time) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.pending[k]
	if !ok {
		p = &Pending{First: now}
		d.pending[k] = p
	}
	if now.After(p.Last) {
		p.Last = now
	}
	for _, s := range secrets {
		if i, found := slices.BinarySearch(p.Secrets, s); !found {
			p.Secrets = slices.Insert(p.Secrets, i, s)
		}
	}
	return d.due(p).Sub(now)
}

// Take returns what k waits for and forgets it when k is due at now. When
// k is not due yet it returns how long until it is; when nothing is pending
// for k it returns ok false and a zero wait.
func (d *Debouncer[K]) Take(k K, now time.Time) (p Pending, wait time.Duration, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, found := d.pending[k]
	if !found {
		return Pending{}, 0, false
	}
	if due := d.due(cur); now.Before(due) {
		return Pending{}, due.Sub(now), false
	}
	delete(d.pending, k)
	return *cur, 0, true
}

// Len is the number of workloads waiting.
func (d *Debouncer[K]) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

func (d *Debouncer[K]) due(p *Pending) time.Time {
	due := p.Last.Add(d.window)
	if limit := p.First.Add(d.maxWait); limit.Before(due) {
		return limit
	}
	return due
}

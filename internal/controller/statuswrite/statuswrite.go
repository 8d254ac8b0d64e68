// Package statuswrite writes objects' statuses behind the syncs that
// decide them, so that while many objects sync at once the API server
// spends its time on the Secrets users wait for and the statuses follow.
//
// A controller hands each status it decides to a Writer (Set) instead of
// patching it in the reconcile. The Writer keeps the newest status of each
// object until it is written (a status decided again before it was written
// replaces the pending one: one write), and the controller reads a pending
// status back (Pending) as the object's status, since its cache cannot show
// it yet. While syncs run (Busy), one writer works and rests between writes
// (BusyPause), so statuses keep coming without starving the syncs; once no
// sync runs, every writer works. A write that fails is retried with
// backoff; on shutdown the Writer writes what is pending, within a grace
// period.
package statuswrite

import (
	"context"
	"errors"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Defaults of Options.
const (
	DefaultConcurrency = 16
	DefaultBusyPause   = 20 * time.Millisecond
	DefaultGrace       = 5 * time.Second
)

// MaxRetryDelay bounds the backoff of a failed write: nothing tells the
// writer that the API server is back, so a status is written at most this
// long after it is (or at once, when another status is decided for the
// object).
const MaxRetryDelay = 10 * time.Second

// Options configure a Writer.
type Options[S any] struct {
	// Name names the writer in logs.
	Name string
	// Write writes one object's status. An error the API server returns
	// as NotFound drops the status (the object is gone); any other error
	// is retried with backoff.
	Write func(ctx context.Context, key types.NamespacedName, status S) error
	// Concurrency is the number of writers once no sync runs
	// (DefaultConcurrency).
	Concurrency int
	// BusyPause is how long the one writer rests between writes while
	// syncs run (DefaultBusyPause: at most about 50 statuses a second).
	BusyPause time.Duration
	// Grace bounds how long pending statuses are still written after the
	// Writer is stopped (DefaultGrace).
	Grace time.Duration
	// OnPending, when set, is told how many statuses are not yet written
	// each time that number changes (a metric).
	OnPending func(n int)
}

// Writer writes statuses behind syncs. Create it with New and run it with
// Start (a manager.Runnable); Set, Pending, Forget and Busy may be called
// before it starts.
type Writer[S any] struct {
	opts  Options[S]
	queue workqueue.TypedRateLimitingInterface[types.NamespacedName]

	mu      sync.Mutex
	idle    *sync.Cond // signalled when syncs drops to zero
	syncs   int
	waiting int // writers waiting for the syncs to end
	pending map[types.NamespacedName]entry[S]
	gen     uint64
}

// entry is a status waiting to be written; gen tells a status set again
// during its write from the one written.
type entry[S any] struct {
	status S
	gen    uint64
}

// New returns a Writer.
func New[S any](opts Options[S]) *Writer[S] {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.BusyPause <= 0 {
		opts.BusyPause = DefaultBusyPause
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	w := &Writer[S]{
		opts: opts,
		// The queue has no name, so it keeps no workqueue metrics: they
		// would hold a timestamp per queued object in maps that keep the
		// room a first sync of thousands grew them to. Options.OnPending
		// reports what is left to write.
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](100*time.Millisecond, MaxRetryDelay),
			workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{}),
		pending: map[types.NamespacedName]entry[S]{},
	}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// Set makes status the object's status to write, replacing any status of
// it still pending.
func (w *Writer[S]) Set(key types.NamespacedName, status S) {
	w.mu.Lock()
	w.gen++
	w.pending[key] = entry[S]{status: status, gen: w.gen}
	n := len(w.pending)
	w.mu.Unlock()
	w.report(n)
	w.queue.Add(key)
}

// report tells Options.OnPending the number of statuses not yet written.
func (w *Writer[S]) report(n int) {
	if w.opts.OnPending != nil {
		w.opts.OnPending(n)
	}
}

// Pending returns the object's status not yet written, if any.
func (w *Writer[S]) Pending(key types.NamespacedName) (S, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.pending[key]
	return e.status, ok
}

// Forget drops the object's pending status (the object is gone).
func (w *Writer[S]) Forget(key types.NamespacedName) {
	w.mu.Lock()
	delete(w.pending, key)
	n := len(w.pending)
	w.mu.Unlock()
	w.report(n)
}

// Busy marks a sync as running until the returned func is called (once).
func (w *Writer[S]) Busy() (done func()) {
	w.mu.Lock()
	w.syncs++
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		w.syncs--
		if w.syncs == 0 {
			w.idle.Broadcast()
		}
		w.mu.Unlock()
	}
}

// Start runs the writers until ctx is done, then writes what is pending
// within Options.Grace.
func (w *Writer[S]) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := range w.opts.Concurrency {
		wg.Go(func() { w.work(ctx, i == 0) })
	}
	<-ctx.Done()
	// Wake the writers waiting for a turn or for the queue.
	w.mu.Lock()
	w.idle.Broadcast()
	w.mu.Unlock()
	w.queue.ShutDown()
	wg.Wait()
	w.flush()
	return nil
}

// work writes statuses until ctx is done. The first writer works while
// syncs run, resting BusyPause between writes; the others, holding the
// object they took, wait until no sync runs.
func (w *Writer[S]) work(ctx context.Context, first bool) {
	for ctx.Err() == nil {
		key, shutdown := w.queue.Get()
		if shutdown {
			return
		}
		busy := w.waitTurn(ctx, first)
		if ctx.Err() != nil {
			// Stopping: the status stays pending for flush.
			w.queue.Done(key)
			return
		}
		w.writeOne(ctx, key)
		if busy {
			select {
			case <-ctx.Done():
			case <-time.After(w.opts.BusyPause):
			}
		}
	}
}

// waitTurn waits until this writer may write (at once for the first one)
// and says whether syncs run.
func (w *Writer[S]) waitTurn(ctx context.Context, first bool) (busy bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for !first && w.syncs > 0 && ctx.Err() == nil {
		w.waiting++
		w.idle.Wait()
		w.waiting--
	}
	return w.syncs > 0
}

// writeOne writes key's pending status, and queues it again with backoff
// when the write fails.
func (w *Writer[S]) writeOne(ctx context.Context, key types.NamespacedName) {
	defer w.queue.Done(key)
	if err := w.writePending(ctx, key); err != nil {
		if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
			log.FromContext(ctx).Error(err, "writing a status; retrying", "writer", w.opts.Name, "object", key.String())
		}
		w.queue.AddRateLimited(key)
		return
	}
	w.queue.Forget(key)
}

// writePending writes key's pending status, if any. Once it is written, or
// the object is gone (NotFound), the status is no longer pending, unless a
// newer one was set meanwhile. Once nothing is pending, the map is
// replaced: a map never gives back the room it grew to, and after a first
// sync of thousands of objects that room would stay unused.
func (w *Writer[S]) writePending(ctx context.Context, key types.NamespacedName) error {
	w.mu.Lock()
	e, ok := w.pending[key]
	w.mu.Unlock()
	if !ok {
		return nil
	}
	if err := w.opts.Write(ctx, key, e.status); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	w.mu.Lock()
	if cur, ok := w.pending[key]; ok && cur.gen == e.gen {
		delete(w.pending, key)
	}
	if len(w.pending) == 0 {
		w.pending = map[types.NamespacedName]entry[S]{}
	}
	n := len(w.pending)
	w.mu.Unlock()
	w.report(n)
	return nil
}

// flush writes every pending status once, with every writer, within
// Options.Grace, after the queue has stopped.
func (w *Writer[S]) flush() {
	w.mu.Lock()
	keys := make([]types.NamespacedName, 0, len(w.pending))
	for k := range w.pending {
		keys = append(keys, k)
	}
	w.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.Grace)
	defer cancel()
	next := make(chan types.NamespacedName)
	var wg sync.WaitGroup
	for range min(w.opts.Concurrency, len(keys)) {
		wg.Go(func() {
			for key := range next {
				// A failure here is not retried: the process is stopping,
				// and the next start syncs the object again.
				_ = w.writePending(ctx, key)
			}
		})
	}
	for _, k := range keys {
		select {
		case next <- k:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
}

// Len is the number of statuses not yet written.
func (w *Writer[S]) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

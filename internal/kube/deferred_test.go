package kube

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// fakeWatch is a SyncingSource that records its starts and syncs when told.
type fakeWatch struct {
	mu     sync.Mutex
	starts int
	queue  Queue
	sync   chan struct{}
	// failStarts is how many Starts fail before one succeeds.
	failStarts int
}

func newFakeWatch() *fakeWatch { return &fakeWatch{sync: make(chan struct{})} }

func (f *fakeWatch) Start(_ context.Context, q Queue) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failStarts > 0 {
		f.failStarts--
		return errors.New("no informer for this kind")
	}
	f.starts++
	f.queue = q
	return nil
}

func (f *fakeWatch) WaitForSync(ctx context.Context) error {
	select {
	case <-f.sync:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeWatch) started() (int, Queue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts, f.queue
}

func newQueue(t *testing.T) Queue {
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	t.Cleanup(q.ShutDown)
	return q
}

func TestDeferredSourceStartsItsWatchOnlyWhenActivated(t *testing.T) {
	inner := newFakeWatch()
	calledWith := make(chan Queue, 1)
	d := NewDeferredSource(inner, func(_ context.Context, q Queue) { calledWith <- q })
	q := newQueue(t)
	if err := d.Start(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	if n, _ := inner.started(); n != 0 {
		t.Fatalf("before Activate: watch started %d times; want 0", n)
	}
	for i := range 3 {
		activated, err := d.Activate()
		if err != nil {
			t.Fatal(err)
		}
		if activated != (i == 0) {
			t.Fatalf("call %d of Activate reported activated=%v; want it for the first call only", i+1, activated)
		}
	}
	if n, got := inner.started(); n != 1 || got != q {
		t.Fatalf("after Activate: watch started %d times (want 1), with the controller's queue: %v", n, got == q)
	}
	select {
	case <-calledWith:
		t.Fatal("OnSynced was called before the watch synced")
	default:
	}
	close(inner.sync)
	select {
	case got := <-calledWith:
		if got != q {
			t.Fatal("OnSynced was not given the controller's queue")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnSynced was not called within 10s of the watch's sync")
	}
}

func TestDeferredSourceActivatedBeforeTheControllerStartsStartsWithIt(t *testing.T) {
	inner := newFakeWatch()
	synced := make(chan struct{})
	d := NewDeferredSource(inner, func(context.Context, Queue) { close(synced) })
	if activated, err := d.Activate(); err != nil || !activated {
		t.Fatalf("Activate: activated %v, error %v", activated, err)
	}
	if n, _ := inner.started(); n != 0 {
		t.Fatalf("watch started %d times before the controller started it; want 0 (there is no queue yet)", n)
	}
	q := newQueue(t)
	if err := d.Start(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	if n, got := inner.started(); n != 1 || got != q {
		t.Fatalf("watch started %d times (want 1), with the controller's queue: %v", n, got == q)
	}
	close(inner.sync)
	select {
	case <-synced:
	case <-time.After(10 * time.Second):
		t.Fatal("OnSynced was not called within 10s of the watch's sync")
	}
}

func TestDeferredSourceRefusesASecondStart(t *testing.T) {
	d := NewDeferredSource(newFakeWatch(), nil)
	if err := d.Start(t.Context(), newQueue(t)); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context(), newQueue(t)); err == nil {
		t.Fatal("a second Start was accepted")
	}
}

// A watch that fails to start is tried again by the next Activate (the
// reconcile's retry), not left off for good.
func TestDeferredSourceRetriesAWatchThatFailedToStart(t *testing.T) {
	inner := newFakeWatch()
	inner.failStarts = 1
	d := NewDeferredSource(inner, nil)
	if err := d.Start(t.Context(), newQueue(t)); err != nil {
		t.Fatal(err)
	}
	if activated, err := d.Activate(); err == nil || activated {
		t.Fatalf("first Activate: activated %v, error %v; want the start's error", activated, err)
	}
	if activated, err := d.Activate(); err != nil || !activated {
		t.Fatalf("second Activate: activated %v, error %v; want the watch started", activated, err)
	}
	if n, _ := inner.started(); n != 1 {
		t.Fatalf("watch started %d times; want 1", n)
	}
}

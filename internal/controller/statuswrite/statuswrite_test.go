package statuswrite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// recorder is a Write func that records what it wrote, can hold writes
// until released, and fails a key's writes on demand.
type recorder struct {
	mu       sync.Mutex
	written  map[types.NamespacedName][]string
	inFlight int
	maxIn    int
	hold     chan struct{} // nil: writes do not wait
	fail     map[types.NamespacedName]error
}

func newRecorder() *recorder {
	return &recorder{written: map[types.NamespacedName][]string{}, fail: map[types.NamespacedName]error{}}
}

func (r *recorder) write(ctx context.Context, key types.NamespacedName, status string) error {
	r.mu.Lock()
	r.inFlight++
	r.maxIn = max(r.maxIn, r.inFlight)
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
	if err, ok := r.fail[key]; ok {
		delete(r.fail, key)
		return err
	}
	r.written[key] = append(r.written[key], status)
	return nil
}

func (r *recorder) get(key types.NamespacedName) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.written[key]...)
}

func (r *recorder) state() (inFlight, maxIn int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight, r.maxIn
}

// eventually polls cond every few milliseconds until it holds, or fails
// the test after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func key(i int) types.NamespacedName {
	return types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("es-%d", i)}
}

// start runs w until the test ends, and returns a func that stops it and
// waits for Start to return.
func start[S any](t *testing.T, w *Writer[S]) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Start(ctx); err != nil {
			t.Errorf("Start: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitersAt says whether n writers wait for the syncs to end.
func (w *Writer[S]) waitersAt(n int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.waiting == n
}

func TestWritesEachStatusAndForgetsIt(t *testing.T) {
	rec := newRecorder()
	w := New(Options[string]{Name: "test", Write: rec.write, Concurrency: 4})
	start(t, w)
	for i := range 20 {
		w.Set(key(i), "ready")
	}
	for i := range 20 {
		eventually(t, "every status is written", func() bool { return len(rec.get(key(i))) == 1 })
	}
	eventually(t, "nothing is pending", func() bool { return w.Len() == 0 })
	if _, ok := w.Pending(key(0)); ok {
		t.Fatal("a written status is still pending")
	}
}

func TestPendingIsTheNewestStatusAndOneWriteCarriesIt(t *testing.T) {
	rec := newRecorder()
	w := New(Options[string]{Name: "test", Write: rec.write, Concurrency: 2})
	// Set before the writer runs: the statuses wait, and the newest wins.
	w.Set(key(1), "first")
	w.Set(key(1), "second")
	if got, ok := w.Pending(key(1)); !ok || got != "second" {
		t.Fatalf("Pending = %q, %v; want the newest status", got, ok)
	}
	start(t, w)
	eventually(t, "the status is written", func() bool { return w.Len() == 0 })
	if got := rec.get(key(1)); len(got) != 1 || got[0] != "second" {
		t.Fatalf("written %q; want one write of the newest status", got)
	}
}

func TestAStatusSetDuringItsWriteIsWrittenNext(t *testing.T) {
	rec := newRecorder()
	rec.hold = make(chan struct{})
	w := New(Options[string]{Name: "test", Write: rec.write, Concurrency: 2})
	start(t, w)
	w.Set(key(1), "old")
	eventually(t, "the first write starts", func() bool { in, _ := rec.state(); return in == 1 })
	w.Set(key(1), "new")
	close(rec.hold)
	eventually(t, "both statuses are written", func() bool { return len(rec.get(key(1))) == 2 })
	if got := rec.get(key(1)); got[0] != "old" || got[1] != "new" {
		t.Fatalf("written %q; want old, then new", got)
	}
	eventually(t, "nothing is pending", func() bool { return w.Len() == 0 })
}

func TestWhileSyncsRunOneWriterWorks(t *testing.T) {
	rec := newRecorder()
	rec.hold = make(chan struct{})
	w := New(Options[string]{Name: "test", Write: rec.write, Concurrency: 4, BusyPause: time.Millisecond})
	start(t, w)
	done := w.Busy()
	for i := range 10 {
		w.Set(key(i), "ready")
	}
	// Three writers wait for the syncs to end; the first writes one status.
	eventually(t, "three writers wait and one writes", func() bool {
		in, _ := rec.state()
		return w.waitersAt(3) && in == 1
	})
	if _, maxIn := rec.state(); maxIn != 1 {
		t.Fatalf("%d writes ran at once while a sync ran; want 1", maxIn)
	}
	close(rec.hold)
	done()
	for i := range 10 {
		eventually(t, "every status is written once the syncs end", func() bool { return len(rec.get(key(i))) == 1 })
	}
}

func TestOnceSyncsEndEveryWriterWorks(t *testing.T) {
	rec := newRecorder()
	rec.hold = make(chan struct{})
	w := New(Options[string]{Name: "test", Write: rec.write, Concurrency: 4})
	start(t, w)
	for i := range 4 {
		w.Set(key(i), "ready")
	}
	eventually(t, "four writes run at once", func() bool { in, _ := rec.state(); return in == 4 })
	close(rec.hold)
	eventually(t, "nothing is pending", func() bool { return w.Len() == 0 })
}

func TestAFailedWriteIsRetriedAndGoneObjectsAreDropped(t *testing.T) {
	rec := newRecorder()
	rec.fail[key(1)] = errors.New("the API server is unavailable")
	rec.fail[key(2)] = apierrors.NewNotFound(schema.GroupResource{Group: "external-secrets.io", Resource: "externalsecrets"}, "es-2")
	w := New(Options[string]{Name: "test", Write: rec.write, Concurrency: 2})
	start(t, w)
	w.Set(key(1), "ready")
	w.Set(key(2), "ready")
	eventually(t, "the failed write is retried", func() bool { return len(rec.get(key(1))) == 1 })
	eventually(t, "nothing is pending", func() bool { return w.Len() == 0 })
	if got := rec.get(key(2)); len(got) != 0 {
		t.Fatalf("the status of a gone object was written %d times after NotFound; want 0", len(got))
	}
}

func TestForgetDropsAPendingStatus(t *testing.T) {
	rec := newRecorder()
	w := New(Options[string]{Name: "test", Write: rec.write})
	w.Set(key(1), "ready")
	w.Forget(key(1))
	if _, ok := w.Pending(key(1)); ok {
		t.Fatal("a forgotten status is pending")
	}
	start(t, w)
	w.Set(key(2), "ready")
	eventually(t, "the other status is written", func() bool { return len(rec.get(key(2))) == 1 })
	if got := rec.get(key(1)); len(got) != 0 {
		t.Fatalf("a forgotten status was written: %q", got)
	}
}

func TestStopWritesWhatIsPending(t *testing.T) {
	rec := newRecorder()
	// While a sync runs the one writer rests an hour between writes, so
	// only the stop can write the rest.
	w := New(Options[string]{Name: "test", Write: rec.write, Concurrency: 4, BusyPause: time.Hour})
	stop := start(t, w)
	defer w.Busy()()
	for i := range 10 {
		w.Set(key(i), "ready")
	}
	eventually(t, "one status is written", func() bool { return w.Len() == 9 })
	stop()
	if n := w.Len(); n != 0 {
		t.Fatalf("%d statuses pending after the writer stopped; want 0", n)
	}
	for i := range 10 {
		if got := rec.get(key(i)); len(got) != 1 {
			t.Fatalf("status %d written %d times; want once", i, len(got))
		}
	}
}

func TestOnPendingFollowsTheStatusesNotYetWritten(t *testing.T) {
	rec := newRecorder()
	var (
		mu   sync.Mutex
		seen []int
	)
	w := New(Options[string]{Name: "test", Write: rec.write, Concurrency: 2, OnPending: func(n int) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, n)
	}})
	last := func() int {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return -1
		}
		return seen[len(seen)-1]
	}
	w.Set(key(1), "ready")
	w.Set(key(2), "ready")
	w.Set(key(3), "ready")
	w.Forget(key(3))
	if n := last(); n != 2 {
		t.Fatalf("OnPending last told %d; want 2 (three set, one forgotten)", n)
	}
	start(t, w)
	eventually(t, "OnPending is told that nothing is pending", func() bool { return last() == 0 })
}

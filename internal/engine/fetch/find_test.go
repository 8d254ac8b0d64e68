package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyferry/keyferry/internal/provider"
)

// Find takes Get's path through the cache: these tests are Get's, for finds.

func TestConcurrentIdenticalFindsCoalesce(t *testing.T) {
	p := &countingProvider{values: map[string]string{"app/a": "1", "app/b": "2", "other": "3"}}
	l, _ := newLayer(t, p, nil)
	results := concurrently(t, p, 50, func(i int) string {
		found, err := l.Find(context.Background(), req(fmt.Sprint("es", i), time.Minute), provider.Find{Path: "app/"})
		if err != nil {
			return err.Error()
		}
		return fmt.Sprint(len(found), string(found["app/a"]), string(found["app/b"]))
	})
	for _, r := range results {
		if r != "212" {
			t.Fatalf("a find got %q, want app/a and app/b", r)
		}
	}
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("50 concurrent identical finds made %d calls, want 1", n)
	}
}

func TestFindsAreReusedWithinTheWindowOnly(t *testing.T) {
	p := &countingProvider{values: map[string]string{"app/a": "1"}}
	l, clk := newLayer(t, p, nil)
	find := func(f provider.Find, maxAge time.Duration) {
		t.Helper()
		if found, err := l.Find(context.Background(), req("es", maxAge), f); err != nil || len(found) != 1 {
			t.Fatalf("found %d values, err %v", len(found), err)
		}
	}
	find(provider.Find{Path: "app/"}, time.Minute)
	find(provider.Find{Path: "app/"}, time.Minute)
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("second find within the window made a call (%d calls)", n)
	}
	find(provider.Find{Path: "app/a"}, time.Minute)
	if n := p.calls.Load(); n != 2 {
		t.Fatalf("a different find was answered from another's cache (%d calls)", n)
	}
	clk.Add(61 * time.Second)
	find(provider.Find{Path: "app/"}, time.Minute)
	if n := p.calls.Load(); n != 3 {
		t.Fatalf("find after the window did not call (%d calls)", n)
	}
	find(provider.Find{Path: "app/"}, 0)
	if n := p.calls.Load(); n != 4 {
		t.Fatalf("MaxAge 0 did not call (%d calls)", n)
	}
}

func TestAChangedFindNotifiesTheOtherSubscribers(t *testing.T) {
	p := &countingProvider{values: map[string]string{"app/a": "1"}}
	var mu sync.Mutex
	var notified []string
	l, _ := newLayer(t, p, func(s []string) { mu.Lock(); notified = append(notified, s...); mu.Unlock() })
	f := provider.Find{Path: "app/"}
	for _, sub := range []string{"a", "b", "c"} {
		if _, err := l.Find(context.Background(), req(sub, time.Minute), f); err != nil {
			t.Fatal(err)
		}
	}
	// unchanged refresh: nobody is told
	if _, err := l.Find(context.Background(), req("a", 0), f); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(notified) != 0 {
		t.Fatalf("notified %v of an unchanged find", notified)
	}
	mu.Unlock()
	// a new value selected is a change
	p.mu.Lock()
	p.values["app/new"] = "2"
	p.mu.Unlock()
	if found, err := l.Find(context.Background(), req("a", 0), f); err != nil || len(found) != 2 {
		t.Fatalf("found %d values, err %v", len(found), err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notified) != 2 || (notified[0] != "b" && notified[1] != "b") {
		t.Fatalf("notified %v, want b and c", notified)
	}
}

func TestAFailedFindIsNotCached(t *testing.T) {
	// Get caches a not-found answer for the window; a find that fails is
	// asked again.
	p := &countingProvider{err: fmt.Errorf("%w: no such path", provider.ErrNotFound)}
	l, _ := newLayer(t, p, nil)
	for i := 0; i < 2; i++ {
		if _, err := l.Find(context.Background(), req("es", time.Minute), provider.Find{Path: "app/"}); !errors.Is(err, provider.ErrNotFound) {
			t.Fatalf("find %d: error %v, want not found", i, err)
		}
	}
	if n := p.calls.Load(); n != 2 {
		t.Fatalf("2 finds after a failed one made %d calls, want 2", n)
	}
}

func TestFindOnAFailingStoreIsBackedOff(t *testing.T) {
	p := &countingProvider{err: fmt.Errorf("%w: connection refused", provider.ErrUnreachable)}
	l, clk := newLayer(t, p, nil)
	f := provider.Find{Path: "app/"}
	if _, err := l.Find(context.Background(), req("es", time.Minute), f); !errors.Is(err, provider.ErrUnreachable) {
		t.Fatalf("error %v does not say the store is unreachable", err)
	}
	var be *BackoffError
	if _, err := l.Find(context.Background(), req("es", time.Minute), f); !errors.As(err, &be) || p.calls.Load() != 1 {
		t.Fatalf("find during backoff: %d calls, error %v", p.calls.Load(), err)
	}
	// A Get to the same store is backed off too: one backoff per store.
	if _, errs := l.Get(context.Background(), req("es", time.Minute), []provider.Ref{{Key: "k"}}); !errors.As(errs[provider.Ref{Key: "k"}], &be) || p.calls.Load() != 1 {
		t.Fatalf("get during a find's backoff: %d calls, errors %v", p.calls.Load(), errs)
	}
	clk.Add(1100 * time.Millisecond)
	l.Find(context.Background(), req("es", time.Minute), f)
	if n := p.calls.Load(); n != 2 {
		t.Fatalf("after the backoff: %d calls, want 2", n)
	}
}

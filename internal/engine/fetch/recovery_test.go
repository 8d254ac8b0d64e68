package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keyferry/keyferry/internal/metrics"
	"github.com/keyferry/keyferry/internal/provider"
)

// flakyProvider is a provider whose backend can be switched off (every call
// fails with down) and whose clients read a credential when they are
// built: a client built while cred differs from valid is refused with
// ErrUnauthenticated, as a store refuses a wrong password. It records when
// each call started.
type flakyProvider struct {
	mu     sync.Mutex
	down   error
	cred   string
	valid  string
	values map[string]string
	starts []time.Time
	builds atomic.Int64
}

func (p *flakyProvider) ValidateSpec(provider.Store) error { return nil }
func (p *flakyProvider) NewClient(context.Context, provider.Options) (provider.Client, error) {
	p.builds.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	return &flakyClient{p: p, cred: p.cred}, nil
}

func (p *flakyProvider) set(down error) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

func (p *flakyProvider) calls() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.starts...)
}

type flakyClient struct {
	p    *flakyProvider
	cred string
}

func (c *flakyClient) GetSecret(_ context.Context, r provider.Ref) (provider.Value, error) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.p.starts = append(c.p.starts, time.Now())
	switch {
	case c.p.down != nil:
		return provider.Value{}, c.p.down
	case c.cred != c.p.valid:
		return provider.Value{}, fmt.Errorf("%w: wrong password", provider.ErrUnauthenticated)
	}
	v, ok := c.p.values[r.Key]
	if !ok {
		return provider.Value{}, fmt.Errorf("%w: %s", provider.ErrNotFound, r.Key)
	}
	return provider.Value{Data: []byte(v)}, nil
}
func (c *flakyClient) Validate(context.Context) error { return nil }
func (c *flakyClient) Close(context.Context) error    { return nil }

// notifications records what OnChange was told, and when.
type notifications struct {
	mu   sync.Mutex
	subs map[string]time.Time
}

func (n *notifications) onChange(subs []string) {
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subs == nil {
		n.subs = map[string]time.Time{}
	}
	for _, s := range subs {
		if _, ok := n.subs[s]; !ok {
			n.subs[s] = now
		}
	}
}

func (n *notifications) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.subs)
}

// last returns when the last of the subscribers was told.
func (n *notifications) last() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	var t time.Time
	for _, at := range n.subs {
		t = later(t, at)
	}
	return t
}

var errDown = fmt.Errorf("%w: connection refused", provider.ErrUnreachable)

// newRecoveryLayer returns a Layer over p on the real clock, telling n of
// changes and recoveries, and the metrics it counts into.
func newRecoveryLayer(t *testing.T, p provider.Provider, n *notifications, opts Options) (*Layer, *metrics.Metrics, context.CancelFunc) {
	t.Helper()
	reg := provider.NewRegistry()
	reg.Register("fake", p)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := metrics.New(nil)
	opts.Registry, opts.QPS, opts.Burst, opts.Metrics = reg, 1e6, 1e6, m
	if n != nil {
		opts.OnChange = n.onChange
	}
	return New(ctx, opts), m, cancel
}

// theStore returns the Layer's only store state.
func theStore(t *testing.T, l *Layer) *backend {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.backends {
		return s
	}
	t.Fatal("the layer has no store")
	return nil
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func getK(l *Layer, sub string, maxAge time.Duration) error {
	_, errs := l.Get(context.Background(), req(sub, maxAge), []provider.Ref{{Key: "k"}})
	return errs[provider.Ref{Key: "k"}]
}

func TestBackoffNeverExceedsTheProbeInterval(t *testing.T) {
	for _, tt := range []struct {
		name   string
		sub    string
		maxAge time.Duration
		want   time.Duration
	}{
		{"capped by ProbeInterval", "", time.Hour, 10 * time.Second},
		{"capped by the waiters' refresh interval", "es", 3 * time.Second, 3 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &countingProvider{err: errDown}
			l, clk := newLayerWith(t, p, Options{ProbeInterval: 10 * time.Second, MaxBackoff: time.Hour})
			var longest time.Duration
			for i := 0; i < 25; i++ { // 1s doubled 24 times would be months
				getK(l, tt.sub, tt.maxAge)
				s := theStore(t, l)
				var d time.Duration
				// With a waiter the probe may be trying the store: read
				// the backoff its outcome set.
				eventually(t, 5*time.Second, "no call in flight", func() bool {
					s.mu.Lock()
					defer s.mu.Unlock()
					d = s.backoffUntil.Sub(clk.Now())
					return !s.trial
				})
				if d <= 0 || d > tt.want {
					t.Fatalf("failure %d: backed off for %s, want (0, %s]", i+1, d, tt.want)
				}
				longest = max(longest, d)
				clk.Add(d)
			}
			t.Logf("longest backoff after 25 failures in a row: %s (cap %s)", longest, tt.want)
		})
	}
}

func TestOneCallPerProbeIntervalDuringAnOutage(t *testing.T) {
	const interval = 300 * time.Millisecond
	p := &flakyProvider{values: map[string]string{"k": "v"}}
	n := &notifications{}
	l, _, _ := newRecoveryLayer(t, p, n, Options{ProbeInterval: interval, BaseBackoff: interval})
	p.set(errDown)

	// 20 objects keep asking for 3s while the store is down.
	var requests atomic.Int64
	ctx, stop := context.WithTimeout(context.Background(), 3*time.Second)
	defer stop()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				requests.Add(1)
				if err := getK(l, fmt.Sprint("es", i), time.Minute); err == nil {
					t.Errorf("request %d succeeded while the store is down", i)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	starts := p.calls()
	for i := 1; i < len(starts); i++ {
		// Each wait is the interval less at most a fifth of jitter.
		if gap := starts[i].Sub(starts[i-1]); gap < interval*4/5 {
			t.Errorf("calls %d and %d were %s apart, under the probe interval %s less jitter", i, i+1, gap, interval)
		}
	}
	if max := int(3*time.Second/(interval*4/5)) + 1; len(starts) > max {
		t.Errorf("%d calls in a 3s outage, want at most %d", len(starts), max)
	}
	t.Logf("3s outage, probe interval %s: %d requests from 20 objects, %d backend calls", interval, requests.Load(), len(starts))
}

func TestWaitersAreToldWhenTheFirstProbeSucceeds(t *testing.T) {
	const interval = 500 * time.Millisecond
	p := &flakyProvider{values: map[string]string{"k": "v"}}
	n := &notifications{}
	l, m, _ := newRecoveryLayer(t, p, n, Options{ProbeInterval: interval})
	p.set(errDown)
	for i := 0; i < 50; i++ {
		if err := getK(l, fmt.Sprint("es", i), time.Minute); err == nil {
			t.Fatal("a request succeeded while the store is down")
		}
	}
	before := len(p.calls())

	restored := time.Now()
	p.set(nil)
	eventually(t, interval+5*time.Second, "all 50 waiters told", func() bool { return n.count() == 50 })
	starts := p.calls()
	if len(starts) != before+1 {
		t.Fatalf("%d calls after the store came back, want 1 (the probe)", len(starts)-before)
	}
	probe := starts[before]
	latency := n.last().Sub(probe)
	t.Logf("store back → successful probe: %s; probe → last of 50 waiters told: %s; store back → all told: %s",
		probe.Sub(restored), latency, n.last().Sub(restored))
	if latency > 2*time.Second {
		t.Errorf("waiters told %s after the successful probe, want within 2s", latency)
	}
	if got := testutil.ToFloat64(m.StoreProbes.WithLabelValues("fake", "recovered")); got != 1 {
		t.Errorf("recovered probes counted: %v, want 1", got)
	}
	// The store is healthy again: requests call it at once.
	if err := getK(l, "es0", time.Minute); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestProbingHonoursRetryAfter(t *testing.T) {
	const retryAfter = 1500 * time.Millisecond
	p := &flakyProvider{values: map[string]string{"k": "v"}}
	n := &notifications{}
	l, _, _ := newRecoveryLayer(t, p, n, Options{ProbeInterval: 100 * time.Millisecond})
	p.set(&provider.ThrottledError{RetryAfter: retryAfter, Err: errors.New("429 Too Many Requests")})
	if err := getK(l, "es", time.Minute); err == nil {
		t.Fatal("a throttled request succeeded")
	}
	p.set(nil)
	eventually(t, retryAfter+5*time.Second, "the waiter told", func() bool { return n.count() == 1 })
	starts := p.calls()
	if len(starts) != 2 {
		t.Fatalf("%d calls, want 2 (the throttled one and one probe)", len(starts))
	}
	if wait := starts[1].Sub(starts[0]); wait < retryAfter {
		t.Fatalf("probed %s after a Retry-After of %s", wait, retryAfter)
	}
	t.Logf("Retry-After %s, probe interval 100ms: probed after %s", retryAfter, starts[1].Sub(starts[0]))
}

func TestAFixedCredentialIsReadOnTheProbe(t *testing.T) {
	p := &flakyProvider{values: map[string]string{"k": "v"}, cred: "old", valid: "new"}
	n := &notifications{}
	l, _, _ := newRecoveryLayer(t, p, n, Options{ProbeInterval: 200 * time.Millisecond})
	if err := getK(l, "es", time.Minute); !errors.Is(err, provider.ErrUnauthenticated) {
		t.Fatalf("error %v, want an authentication failure", err)
	}
	// Someone fixes the credential (edits the Secret the client reads).
	p.mu.Lock()
	p.cred = "new"
	p.mu.Unlock()
	eventually(t, 5*time.Second, "the waiter told", func() bool { return n.count() == 1 })
	if b := p.builds.Load(); b != 2 {
		t.Fatalf("client built %d times, want 2 (once more for the probe)", b)
	}
	if err := getK(l, "es", time.Minute); err != nil {
		t.Fatalf("after the credential was fixed: %v", err)
	}
}

func TestAStoreNoOneWaitsForIsNotProbed(t *testing.T) {
	const interval = 100 * time.Millisecond
	p := &flakyProvider{values: map[string]string{"k": "v"}}
	l, m, _ := newRecoveryLayer(t, p, &notifications{}, Options{ProbeInterval: interval, BaseBackoff: interval})
	p.set(errDown)

	t.Run("no subscriber", func(t *testing.T) {
		getK(l, "", time.Minute)
		s := theStore(t, l)
		s.mu.Lock()
		probing := s.probing
		s.mu.Unlock()
		if probing {
			t.Fatal("a store no one waits for is probed")
		}
	})
	t.Run("the only waiter unsubscribed", func(t *testing.T) {
		getK(l, "es", time.Minute)
		s := theStore(t, l)
		isProbing := func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.probing }
		if !isProbing() {
			t.Fatal("a store an object waits for is not probed")
		}
		l.Unsubscribe("es")
		eventually(t, 5*time.Second, "probe ends", func() bool { return !isProbing() })
	})
	// Watch for ten probe intervals: no call is made.
	calls := len(p.calls())
	watch := time.NewTimer(10 * interval)
	<-watch.C
	if n := len(p.calls()) - calls; n != 0 {
		t.Fatalf("%d calls to a store no one waits for", n)
	}
	if got := testutil.ToFloat64(m.StoreProbes.WithLabelValues("fake", "failed")); got > 1 {
		t.Fatalf("%v failed probes counted, want at most 1 (before the waiter left)", got)
	}
}

func TestClosingTheLayerStopsTheProbe(t *testing.T) {
	p := &flakyProvider{values: map[string]string{"k": "v"}}
	l, _, cancel := newRecoveryLayer(t, p, &notifications{}, Options{ProbeInterval: time.Hour})
	p.set(errDown)
	getK(l, "es", time.Minute)
	s := theStore(t, l)
	isProbing := func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.probing }
	if !isProbing() {
		t.Fatal("a store an object waits for is not probed")
	}
	cancel()
	eventually(t, 5*time.Second, "probe ends with the layer's context", func() bool { return !isProbing() })
}

func TestRequestsOnAFailingStoreFailFastAndWait(t *testing.T) {
	p := &flakyProvider{values: map[string]string{"k": "v"}}
	l, _, _ := newRecoveryLayer(t, p, &notifications{}, Options{ProbeInterval: time.Hour})
	p.set(errDown)
	getK(l, "es0", time.Minute)
	for i := 1; i < 10; i++ {
		var be *BackoffError
		if err := getK(l, fmt.Sprint("es", i), time.Minute); !errors.As(err, &be) {
			t.Fatalf("request %d: error %v, want a BackoffError", i, err)
		}
	}
	if n := len(p.calls()); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
	s := theStore(t, l)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiters) != 10 {
		t.Fatalf("%d waiters, want 10", len(s.waiters))
	}
}

func TestAFailedFindIsProbedByListing(t *testing.T) {
	p := &countingProvider{values: map[string]string{"app/a": "1"}}
	p.err = errDown
	n := &notifications{}
	l, m, _ := newRecoveryLayer(t, p, n, Options{ProbeInterval: 200 * time.Millisecond})
	if _, err := l.Find(context.Background(), req("es", time.Minute), provider.Find{Path: "app/"}); !errors.Is(err, provider.ErrUnreachable) {
		t.Fatalf("error %v, want the store unreachable", err)
	}
	// Another object asks while the store backs off: it waits too.
	if _, err := l.Find(context.Background(), req("es2", time.Minute), provider.Find{Path: "app/"}); err == nil {
		t.Fatal("a find succeeded while the store is down")
	}
	p.mu.Lock()
	p.err = nil
	p.mu.Unlock()
	eventually(t, 5*time.Second, "both waiters told", func() bool { return n.count() == 2 })
	if got := testutil.ToFloat64(m.StoreProbes.WithLabelValues("fake", "recovered")); got != 1 {
		t.Fatalf("recovered probes counted: %v, want 1", got)
	}
	found, err := l.Find(context.Background(), req("es", time.Minute), provider.Find{Path: "app/"})
	if err != nil || string(found["app/a"]) != "1" {
		t.Fatalf("after recovery: %v, %v", found, err)
	}
}

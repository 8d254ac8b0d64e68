package fetch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/poll"
)

// countingProvider is a provider whose client serves an in-memory map and
// counts its calls; gate, when set, holds every call until closed.
type countingProvider struct {
	mu      sync.Mutex
	values  map[string]string
	err     error
	calls   atomic.Int64
	batches atomic.Int64
	gate    chan struct{}
	started chan struct{}
	once    sync.Once
	batch   bool
	// readBeforeGate makes GetSecret read the value before it waits at
	// the gate: a read that is in flight while the value changes.
	readBeforeGate bool
}

func (p *countingProvider) ValidateSpec(provider.Store) error { return nil }
func (p *countingProvider) NewClient(context.Context, provider.Options) (provider.Client, error) {
	if p.batch {
		return batchClient{countingClient{p}}, nil
	}
	return countingClient{p}, nil
}

type countingClient struct{ p *countingProvider }

// enter counts a call, says the first has started and waits for the gate.
func (p *countingProvider) enter() {
	p.calls.Add(1)
	if p.started != nil {
		p.once.Do(func() { close(p.started) })
	}
	if p.gate != nil {
		<-p.gate
	}
}

func (c countingClient) GetSecret(ctx context.Context, r provider.Ref) (provider.Value, error) {
	if c.p.readBeforeGate {
		v, err := c.read(r)
		c.p.enter()
		return v, err
	}
	c.p.enter()
	return c.read(r)
}

func (c countingClient) read(r provider.Ref) (provider.Value, error) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if c.p.err != nil {
		return provider.Value{}, c.p.err
	}
	v, ok := c.p.values[r.Key]
	if !ok {
		return provider.Value{}, fmt.Errorf("%w: %s", provider.ErrNotFound, r.Key)
	}
	if r.Metadata {
		return provider.Value{Data: []byte(`{"metadata-of":"` + r.Key + `"}`)}, nil
	}
	return provider.Value{Data: []byte(v)}, nil
}

// ListSecrets lists, in one call, the values whose keys start with
// list.Path, with their values.
func (c countingClient) ListSecrets(_ context.Context, list provider.List) provider.ListPager {
	return provider.SinglePage(func(context.Context) ([]provider.Listed, error) {
		c.p.enter()
		c.p.mu.Lock()
		defer c.p.mu.Unlock()
		if c.p.err != nil {
			return nil, c.p.err
		}
		var found []provider.Listed
		for k, v := range c.p.values {
			if strings.HasPrefix(k, list.Path) {
				found = append(found, provider.Listed{Name: k, Ref: provider.Ref{Key: k}, Value: &provider.Value{Data: []byte(v)}})
			}
		}
		return found, nil
	})
}
func (c countingClient) Validate(context.Context) error { return nil }
func (c countingClient) Close(context.Context) error    { return nil }

type batchClient struct{ countingClient }

func (b batchClient) GetSecrets(ctx context.Context, refs []provider.Ref) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	b.p.batches.Add(1)
	vals, errs := map[provider.Ref]provider.Value{}, map[provider.Ref]error{}
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	for _, r := range refs {
		if v, ok := b.p.values[r.Key]; ok {
			vals[r] = provider.Value{Data: []byte(v)}
		} else {
			errs[r] = provider.ErrNotFound
		}
	}
	return vals, errs
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newLayer(t *testing.T, p *countingProvider, onChange func([]string)) (*Layer, *clock) {
	t.Helper()
	return newLayerWith(t, p, Options{OnChange: onChange})
}

func newLayerWith(t *testing.T, p *countingProvider, opts Options) (*Layer, *clock) {
	t.Helper()
	reg := provider.NewRegistry()
	reg.Register("fake", p)
	clk := &clock{now: time.Unix(1_000_000, 0)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts.Registry, opts.Now, opts.QPS, opts.Burst = reg, clk.Now, 1e6, 1e6
	return New(ctx, opts), clk
}

func req(sub string, maxAge time.Duration) Request {
	return Request{
		Store:     provider.Store{Kind: "SecretStore", Namespace: "ns", Name: "s", Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Fake: &esv1.FakeProvider{}}}},
		Namespace: "ns", Subscriber: sub, MaxAge: maxAge,
	}
}

// concurrently runs request(0..n-1) at once, holding the provider's first
// call until it is in flight so that requests arriving meanwhile wait on it
// (later ones find the value cached), and returns what each request got.
func concurrently(t *testing.T, p *countingProvider, n int, request func(i int) string) []string {
	t.Helper()
	p.gate, p.started = make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	results := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = request(i)
		}(i)
	}
	select {
	case <-p.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no call reached the provider")
	}
	close(p.gate)
	wg.Wait()
	return results
}

func TestConcurrentIdenticalRequestsCoalesce(t *testing.T) {
	p := &countingProvider{values: map[string]string{"k": "v"}}
	l, _ := newLayer(t, p, nil)
	results := concurrently(t, p, 50, func(i int) string {
		vals, errs := l.Get(context.Background(), req(fmt.Sprint("es", i), time.Minute), []provider.Ref{{Key: "k"}})
		if len(errs) > 0 {
			return fmt.Sprint(errs)
		}
		return string(vals[provider.Ref{Key: "k"}].Data)
	})
	for _, r := range results {
		if r != "v" {
			t.Fatalf("a request got %q", r)
		}
	}
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("50 concurrent requests made %d calls, want 1", n)
	}
}

// A key's value and its metadata are two remote values: a request for one
// never waits on (and is never answered by) a call in flight for the other.
func TestAValueAndItsMetadataAreFetchedApart(t *testing.T) {
	p := &countingProvider{values: map[string]string{"k": "v"}}
	p.gate, p.started = make(chan struct{}), make(chan struct{})
	l, _ := newLayer(t, p, nil)
	get := func(ref provider.Ref, out *string, done *sync.WaitGroup) {
		defer done.Done()
		vals, errs := l.Get(context.Background(), req("es-"+ref.String(), time.Minute), []provider.Ref{ref})
		if len(errs) > 0 {
			*out = fmt.Sprint(errs)
			return
		}
		*out = string(vals[ref].Data)
	}
	var value, metadata string
	var wg sync.WaitGroup
	wg.Add(2)
	go get(provider.Ref{Key: "k"}, &value, &wg)
	select {
	case <-p.started: // the value's call is in flight, held by the gate
	case <-time.After(10 * time.Second):
		t.Fatal("no call reached the provider")
	}
	release := sync.OnceFunc(func() { close(p.gate) })
	t.Cleanup(release) // a failure below must not leave the reads held
	go get(provider.Ref{Key: "k", Metadata: true}, &metadata, &wg)
	poll.Until(t, "the metadata request's own call", func(context.Context) (bool, string) {
		n := p.calls.Load()
		return n >= 2, fmt.Sprintf("%d call(s): the metadata request joined the value's", n)
	})
	release()
	wg.Wait()
	if value != "v" || metadata != `{"metadata-of":"k"}` {
		t.Fatalf("value %q, metadata %q", value, metadata)
	}
}

// A value invalidated while a read of it is in flight (a push wrote it) is
// not cached as fresh when that read answers with what it read before: the
// next request reads again and gets the new value, and the subscribers are
// told to read again.
func TestAnInvalidationOutlivesTheReadInFlight(t *testing.T) {
	p := &countingProvider{values: map[string]string{"k": "old"}, readBeforeGate: true}
	p.gate, p.started = make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var told []string
	l, _ := newLayer(t, p, func(subs []string) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, subs...)
	})
	ref := provider.Ref{Key: "k"}
	got := make(chan string, 1)
	go func() {
		vals, errs := l.Get(context.Background(), req("reader", time.Hour), []provider.Ref{ref})
		if len(errs) > 0 {
			got <- fmt.Sprint(errs)
			return
		}
		got <- string(vals[ref].Data)
	}()
	select {
	case <-p.started: // the read is in flight with the old value, held by the gate
	case <-time.After(10 * time.Second):
		t.Fatal("no call reached the provider")
	}
	s, err := l.backendFor(context.Background(), req("", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.values["k"] = "new" // the push's write, which the read in flight missed
	p.mu.Unlock()
	s.mu.Lock()
	s.invalidate([]string{"k"})
	s.mu.Unlock()
	close(p.gate)
	if v := <-got; v != "old" {
		t.Fatalf("the read in flight answered %q", v)
	}
	vals, errs := l.Get(context.Background(), req("reader", time.Hour), []provider.Ref{ref})
	if v := string(vals[ref].Data); v != "new" || len(errs) > 0 {
		t.Fatalf("the next read got %q, %v; want the new value", v, errs)
	}
	if n := p.calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2: the next read must not be answered from the cache", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(told, "reader") {
		t.Errorf("subscribers told %v; want the reader told to read again", told)
	}
}

func TestValuesAreReusedWithinTheWindowOnly(t *testing.T) {
	p := &countingProvider{values: map[string]string{"k": "v"}}
	l, clk := newLayer(t, p, nil)
	get := func(maxAge time.Duration) {
		if _, errs := l.Get(context.Background(), req("es", maxAge), []provider.Ref{{Key: "k"}}); len(errs) > 0 {
			t.Fatal(errs)
		}
	}
	get(time.Minute)
	get(time.Minute)
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("second request within the window made a call (%d calls)", n)
	}
	clk.Add(61 * time.Second)
	get(time.Minute)
	if n := p.calls.Load(); n != 2 {
		t.Fatalf("request after the window did not fetch (%d calls)", n)
	}
	get(0)
	if n := p.calls.Load(); n != 3 {
		t.Fatalf("MaxAge 0 did not fetch (%d calls)", n)
	}
}

func TestBatchingClientGetsOneCallPerRequest(t *testing.T) {
	p := &countingProvider{values: map[string]string{"a": "1", "b": "2", "c": "3"}, batch: true}
	l, _ := newLayer(t, p, nil)
	vals, errs := l.Get(context.Background(), req("es", time.Minute), []provider.Ref{{Key: "a"}, {Key: "b"}, {Key: "c"}, {Key: "missing"}})
	if len(vals) != 3 || !errors.Is(errs[provider.Ref{Key: "missing"}], provider.ErrNotFound) {
		t.Fatalf("vals %v errs %v", vals, errs)
	}
	if b, c := p.batches.Load(), p.calls.Load(); b != 1 || c != 0 {
		t.Fatalf("%d batch calls and %d single calls, want 1 and 0", b, c)
	}
}

func TestBatchingSpansConcurrentRequests(t *testing.T) {
	p := &countingProvider{values: map[string]string{}, batch: true}
	for i := 0; i < 30; i++ {
		p.values[fmt.Sprint("k", i)] = "v"
	}
	// A batch delay far longer than it takes to start ten goroutines, so
	// all their refs are pending when the batch is flushed.
	l, _ := newLayerWith(t, p, Options{BatchDelay: 2 * time.Second})
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			refs := []provider.Ref{{Key: fmt.Sprint("k", 3*i)}, {Key: fmt.Sprint("k", 3*i+1)}, {Key: fmt.Sprint("k", 3*i+2)}}
			if vals, errs := l.Get(context.Background(), req(fmt.Sprint("es", i), time.Minute), refs); len(vals) != 3 || len(errs) != 0 {
				t.Errorf("request %d: %d values, errors %v", i, len(vals), errs)
			}
		}(i)
	}
	wg.Wait()
	if b, c := p.batches.Load(), p.calls.Load(); b != 1 || c != 0 {
		t.Fatalf("10 concurrent requests for 30 keys made %d batch and %d single calls, want 1 and 0", b, c)
	}
}

func TestBatchCallsAreToppedUpWithValuesDueSoon(t *testing.T) {
	p := &countingProvider{values: map[string]string{}, batch: true}
	for i := 0; i < 30; i++ {
		p.values[fmt.Sprint("k", i)] = "v"
	}
	l, clk := newLayerWith(t, p, Options{BatchDelay: time.Millisecond})
	get := func(i int) {
		t.Helper()
		refs := []provider.Ref{{Key: fmt.Sprint("k", 3*i)}, {Key: fmt.Sprint("k", 3*i+1)}, {Key: fmt.Sprint("k", 3*i+2)}}
		if vals, errs := l.Get(context.Background(), req(fmt.Sprint("es", i), time.Minute), refs); len(vals) != 3 || len(errs) != 0 {
			t.Fatalf("request %d: %d values, errors %v", i, len(vals), errs)
		}
	}
	for i := 0; i < 10; i++ { // first syncs, one after another
		get(i)
	}
	first := p.batches.Load()
	// One window later the ten objects refresh one after another, spread
	// by jitter: the first refresh's batch call is topped up to 20 refs, so
	// the refreshes cost 2 batch calls, not 10.
	clk.Add(61 * time.Second)
	for i := 0; i < 10; i++ {
		get(i)
		clk.Add(100 * time.Millisecond)
	}
	if b := p.batches.Load() - first; b != 2 {
		t.Fatalf("a refresh window of 10 objects × 3 of 30 keys made %d batch calls, want 2", b)
	}
}

func TestFailingStoreIsBackedOffNotHammered(t *testing.T) {
	p := &countingProvider{err: fmt.Errorf("%w: connection refused", provider.ErrUnreachable)}
	l, clk := newLayer(t, p, nil)
	for i := 0; i < 100; i++ {
		_, errs := l.Get(context.Background(), req(fmt.Sprint("es", i), time.Minute), []provider.Ref{{Key: "k"}})
		if !errors.Is(errs[provider.Ref{Key: "k"}], provider.ErrUnreachable) {
			t.Fatalf("error %v does not say the store is unreachable", errs)
		}
	}
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("100 requests to a failing store made %d calls, want 1", n)
	}
	// After the backoff (1s) one more call is allowed; it fails again and
	// the next wait doubles.
	clk.Add(1100 * time.Millisecond)
	l.Get(context.Background(), req("es", time.Minute), []provider.Ref{{Key: "k"}})
	l.Get(context.Background(), req("es", time.Minute), []provider.Ref{{Key: "k"}})
	if n := p.calls.Load(); n != 2 {
		t.Fatalf("after the first backoff: %d calls, want 2", n)
	}
	clk.Add(1100 * time.Millisecond)
	l.Get(context.Background(), req("es", time.Minute), []provider.Ref{{Key: "k"}})
	if n := p.calls.Load(); n != 2 {
		t.Fatalf("the second backoff did not double: %d calls", n)
	}
}

func TestThrottledStoreWaitsAsAsked(t *testing.T) {
	p := &countingProvider{err: &provider.ThrottledError{RetryAfter: 30 * time.Second, Err: errors.New("429")}}
	l, clk := newLayer(t, p, nil)
	l.Get(context.Background(), req("es", time.Minute), []provider.Ref{{Key: "k"}})
	clk.Add(20 * time.Second)
	_, errs := l.Get(context.Background(), req("es", time.Minute), []provider.Ref{{Key: "k"}})
	var be *BackoffError
	if !errors.As(errs[provider.Ref{Key: "k"}], &be) || p.calls.Load() != 1 {
		t.Fatalf("store called again before Retry-After: %d calls, err %v", p.calls.Load(), errs)
	}
	clk.Add(11 * time.Second)
	l.Get(context.Background(), req("es", time.Minute), []provider.Ref{{Key: "k"}})
	if p.calls.Load() != 2 {
		t.Fatalf("store not called after Retry-After")
	}
}

func TestAChangedValueNotifiesTheOtherSubscribers(t *testing.T) {
	p := &countingProvider{values: map[string]string{"k": "v1"}}
	var mu sync.Mutex
	var notified []string
	l, _ := newLayer(t, p, func(s []string) { mu.Lock(); notified = append(notified, s...); mu.Unlock() })
	for _, sub := range []string{"a", "b", "c"} {
		l.Get(context.Background(), req(sub, time.Minute), []provider.Ref{{Key: "k"}})
	}
	// unchanged refresh: nobody is told
	l.Get(context.Background(), req("a", 0), []provider.Ref{{Key: "k"}})
	if len(notified) != 0 {
		t.Fatalf("notified %v of an unchanged value", notified)
	}
	p.mu.Lock()
	p.values["k"] = "v2"
	p.mu.Unlock()
	l.Get(context.Background(), req("a", 0), []provider.Ref{{Key: "k"}})
	mu.Lock()
	defer mu.Unlock()
	if len(notified) != 2 || (notified[0] != "b" && notified[1] != "b") {
		t.Fatalf("notified %v, want b and c", notified)
	}
	l.Unsubscribe("b")
}

func TestNeedsNamespace(t *testing.T) {
	ns := "creds"
	tests := []struct {
		name string
		p    esv1.SecretStoreProvider
		want bool
	}{
		{"fake has no references", esv1.SecretStoreProvider{Fake: &esv1.FakeProvider{}}, false},
		{"reference with namespace", esv1.SecretStoreProvider{Vault: &esv1.VaultProvider{Auth: &esv1.VaultAuth{TokenSecretRef: &esv1.SecretKeySelector{Name: "t", Key: "k", Namespace: &ns}}}}, false},
		{"reference without namespace", esv1.SecretStoreProvider{Vault: &esv1.VaultProvider{Auth: &esv1.VaultAuth{TokenSecretRef: &esv1.SecretKeySelector{Name: "t", Key: "k"}}}}, true},
		{"service account without namespace", esv1.SecretStoreProvider{AzureKV: &esv1.AzureKVProvider{ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "sa"}}}, true},
		{"configmap without namespace", esv1.SecretStoreProvider{GCPSM: &esv1.GCPSMProvider{Auth: esv1.GCPSMAuth{WorkloadIdentityFederation: &esv1.GCPWorkloadIdentityFederation{CredConfig: &esv1.ConfigMapReference{Name: "cfg", Key: "k"}}}}}, true},
		{"configmap with namespace", esv1.SecretStoreProvider{GCPSM: &esv1.GCPSMProvider{Auth: esv1.GCPSMAuth{WorkloadIdentityFederation: &esv1.GCPWorkloadIdentityFederation{CredConfig: &esv1.ConfigMapReference{Name: "cfg", Key: "k", Namespace: ns}}}}}, false},
		{"kubernetes service account without namespace", esv1.SecretStoreProvider{Kubernetes: &esv1.KubernetesProvider{Auth: &esv1.KubernetesAuth{ServiceAccount: &esv1.ServiceAccountSelector{Name: "reader"}}}}, true},
		{"webhook secrets without namespace", esv1.SecretStoreProvider{Webhook: &esv1.WebhookProvider{Secrets: []esv1.WebhookSecret{{Name: "a", SecretRef: esv1.SecretKeySelector{Name: "s"}}}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NeedsNamespace(&esv1.SecretStoreSpec{Provider: &tt.p}); got != tt.want {
				t.Fatalf("NeedsNamespace = %v, want %v", got, tt.want)
			}
		})
	}
}

package fetch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/fake"
)

// A find costs what the provider's API needs and no more: the listing's
// pages, then the reads the listing did not answer, batched when the
// client batches, each admitted through the store's rate limiter.

// listingProvider is an in-process secret store with a paginated listing,
// counting every call its clients make by kind.
type listingProvider struct {
	values   map[string]string
	pageSize int
	// withValues: the listing returns the values (like a Kubernetes Secret
	// list); batch > 0: the client reads up to batch values per call.
	withValues bool
	batch      int

	lists, gets, batches atomic.Int64
}

func (p *listingProvider) calls() int64 { return p.lists.Load() + p.gets.Load() + p.batches.Load() }

func (p *listingProvider) ValidateSpec(provider.Store) error { return nil }
func (p *listingProvider) NewClient(context.Context, provider.Options) (provider.Client, error) {
	if p.batch > 0 {
		return batchingLister{listingClient{p}}, nil
	}
	return listingClient{p}, nil
}

type listingClient struct{ p *listingProvider }

func (c listingClient) GetSecret(_ context.Context, r provider.Ref) (provider.Value, error) {
	c.p.gets.Add(1)
	return c.p.value(r)
}

func (p *listingProvider) value(r provider.Ref) (provider.Value, error) {
	v, ok := p.values[r.Key]
	if !ok {
		return provider.Value{}, fmt.Errorf("%w: %s", provider.ErrNotFound, r.Key)
	}
	return provider.Value{Data: []byte(v)}, nil
}

func (c listingClient) ListSecrets(_ context.Context, list provider.List) provider.ListPager {
	var names []string
	for k := range c.p.values {
		if strings.HasPrefix(k, list.Path) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return &listingPages{p: c.p, names: names}
}

func (listingClient) Validate(context.Context) error { return nil }
func (listingClient) Close(context.Context) error    { return nil }

// listingPages returns pageSize names a call.
type listingPages struct {
	p     *listingProvider
	names []string
	done  bool
}

func (l *listingPages) More() bool { return !l.done }

func (l *listingPages) NextPage(context.Context) ([]provider.Listed, error) {
	l.p.lists.Add(1)
	n := min(l.p.pageSize, len(l.names))
	page := make([]provider.Listed, 0, n)
	for _, k := range l.names[:n] {
		x := provider.Listed{Name: k, Ref: provider.Ref{Key: k}}
		if l.p.withValues {
			x.Value = &provider.Value{Data: []byte(l.p.values[k])}
		}
		page = append(page, x)
	}
	l.names = l.names[n:]
	l.done = len(l.names) == 0
	return page, nil
}

type batchingLister struct{ listingClient }

func (b batchingLister) BatchSize() int { return b.p.batch }

func (b batchingLister) GetSecrets(_ context.Context, refs []provider.Ref) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	b.p.batches.Add(1)
	if len(refs) > b.p.batch {
		panic(fmt.Sprintf("a batch call got %d refs, more than its %d", len(refs), b.p.batch))
	}
	vals, errs := map[provider.Ref]provider.Value{}, map[provider.Ref]error{}
	for _, r := range refs {
		if v, err := b.p.value(r); err != nil {
			errs[r] = err
		} else {
			vals[r] = v
		}
	}
	return vals, errs
}

// findCostStore holds 25 values the find selects, 10 under its path that
// its name expression does not, and 5 outside its path.
func findCostStore() map[string]string {
	values := map[string]string{}
	for i := range 25 {
		values[fmt.Sprintf("app/key-%02d", i)] = fmt.Sprint("v", i)
	}
	for i := range 10 {
		values[fmt.Sprintf("app/skip-%02d", i)] = "s"
	}
	for i := range 5 {
		values[fmt.Sprintf("other/key-%02d", i)] = "o"
	}
	return values
}

func TestFindCostsWhatTheProviderAPINeeds(t *testing.T) {
	const selected, listedUnderPath, pageSize = 25, 35, 10
	pages := int64((listedUnderPath + pageSize - 1) / pageSize) // 4
	for _, tc := range []struct {
		name string
		p    *listingProvider
		want int64
	}{
		{"get by name: the pages and one get per selected value", &listingProvider{}, pages + selected},
		{"batching: the pages and one batch call per 10 selected values", &listingProvider{batch: 10}, pages + 3},
		{"the listing returns the values: the pages only", &listingProvider{withValues: true}, pages},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			p.values, p.pageSize = findCostStore(), pageSize
			l := newCostLayer(t, p, Options{})
			f := provider.Find{Path: "app/", Name: "key-"}
			r := req("es", time.Minute)

			found, err := l.Find(context.Background(), r, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != selected || string(found["app/key-07"]) != "v7" || found["app/skip-01"] != nil {
				t.Fatalf("found %d values (app/key-07=%q), want the %d app/key-*", len(found), found["app/key-07"], selected)
			}
			if n := p.calls(); n != tc.want {
				t.Fatalf("the find made %d calls (%d lists, %d gets, %d batches), want %d",
					n, p.lists.Load(), p.gets.Load(), p.batches.Load(), tc.want)
			}
			if n := l.Calls(r.Store.Kind, r.Store.Namespace, r.Store.Name); n != p.calls() {
				t.Fatalf("%d calls went through the rate limiter, the store got %d", n, p.calls())
			}

			if _, err := l.Find(context.Background(), req("other", time.Minute), f); err != nil {
				t.Fatal(err)
			}
			if n := p.calls(); n != tc.want {
				t.Fatalf("a second find within the window made %d calls", n-tc.want)
			}
			vals, errs := l.Get(context.Background(), req("get", time.Minute), []provider.Ref{{Key: "app/key-03"}, {Key: "app/key-24"}})
			if len(errs) != 0 || string(vals[provider.Ref{Key: "app/key-24"}].Data) != "v24" {
				t.Fatalf("get after the find: %v, errors %v", vals, errs)
			}
			if n := p.calls(); n != tc.want {
				t.Fatalf("a get of listed keys after the find made %d calls", n-tc.want)
			}
		})
	}
}

func TestFindOverTheFakeProviderIsOneListing(t *testing.T) {
	reg := provider.NewRegistry()
	reg.Register("fake", fake.New())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := New(ctx, Options{Registry: reg})
	r := req("es", time.Minute)
	r.Store.Spec = &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Fake: &esv1.FakeProvider{}}}
	for i := range 30 {
		r.Store.Spec.Provider.Fake.Data = append(r.Store.Spec.Provider.Fake.Data, esv1.FakeProviderData{Key: fmt.Sprintf("db-%02d", i), Value: fmt.Sprint(i)})
	}
	found, err := l.Find(context.Background(), r, provider.Find{Name: "^db-1"})
	if err != nil || len(found) != 10 || string(found["db-12"]) != "12" {
		t.Fatalf("found %d values (db-12=%q), err %v; want db-10..db-19", len(found), found["db-12"], err)
	}
	if n := l.Calls(r.Store.Kind, r.Store.Namespace, r.Store.Name); n != 1 {
		t.Fatalf("a find over the fake provider made %d calls, want 1", n)
	}
	if _, errs := l.Get(context.Background(), r, []provider.Ref{{Key: "db-15"}}); len(errs) != 0 {
		t.Fatal(errs)
	}
	if n := l.Calls(r.Store.Kind, r.Store.Namespace, r.Store.Name); n != 1 {
		t.Fatalf("a get of a listed key after the find called the store (%d calls)", n)
	}
}

// TestEveryCallOfAFindIsRateLimited: with one call admitted every 10ms
// and no burst, a find of 4 pages and 25 gets (29 calls) waits for the
// limiter at least 28 times.
func TestEveryCallOfAFindIsRateLimited(t *testing.T) {
	p := &listingProvider{values: findCostStore(), pageSize: 10}
	const qps = 100
	l := newCostLayer(t, p, Options{QPS: qps, Burst: 1})
	start := time.Now()
	if found, err := l.Find(context.Background(), req("es", time.Minute), provider.Find{Path: "app/", Name: "key-"}); err != nil || len(found) != 25 {
		t.Fatalf("found %d values, err %v", len(found), err)
	}
	elapsed := time.Since(start)
	if n := p.calls(); n != 29 {
		t.Fatalf("%d calls, want 29", n)
	}
	if want := 28 * time.Second / qps; elapsed < want*9/10 {
		t.Fatalf("29 calls at %d per second took %s, want at least %s: some skipped the rate limiter", qps, elapsed, want)
	}
}

// TestFindSharesGetsInFlight: values a find selects that a Get is reading
// right now are not read twice.
func TestFindSharesGetsInFlight(t *testing.T) {
	p := &gatedLister{listingProvider: listingProvider{values: findCostStore(), pageSize: 100}, gate: make(chan struct{}), started: make(chan struct{})}
	l := newCostLayer(t, p, Options{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.Get(context.Background(), req("get", time.Minute), []provider.Ref{{Key: "app/key-01"}})
	}()
	<-p.started // the get of app/key-01 is in flight
	done := make(chan error, 1)
	go func() {
		_, err := l.Find(context.Background(), req("es", time.Minute), provider.Find{Path: "app/", Name: "key-"})
		done <- err
	}()
	// The find joins the get in flight; release it once the find's 24
	// other reads are made.
	eventually(t, 5*time.Second, "the find making its 24 other reads", func() bool { return p.gets.Load() >= 24 })
	close(p.gate)
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := p.gets.Load(); n != 25 {
		t.Fatalf("25 values read with %d gets", n)
	}
}

type gatedLister struct {
	listingProvider
	gate, started chan struct{}
	once          sync.Once
}

func (g *gatedLister) NewClient(context.Context, provider.Options) (provider.Client, error) {
	return gatedClient{listingClient{&g.listingProvider}, g}, nil
}

type gatedClient struct {
	listingClient
	g *gatedLister
}

// GetSecret holds the read of app/key-01 until the gate opens.
func (c gatedClient) GetSecret(ctx context.Context, r provider.Ref) (provider.Value, error) {
	if r.Key == "app/key-01" {
		c.g.once.Do(func() { close(c.g.started) })
		<-c.g.gate
	}
	return c.listingClient.GetSecret(ctx, r)
}

func newCostLayer(t *testing.T, p provider.Provider, opts Options) *Layer {
	t.Helper()
	reg := provider.NewRegistry()
	reg.Register("fake", p) // req's stores name the fake provider
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts.Registry = reg
	if opts.QPS == 0 {
		opts.QPS, opts.Burst = 1e6, 1e6
	}
	return New(ctx, opts)
}

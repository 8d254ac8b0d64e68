// Package fake is ESO's fake provider: a store whose values are listed inline
// in its spec (spec.provider.fake.data). It is for tests, demos and the
// quickstart; it never leaves the process.
package fake

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/keyferry/keyferry/internal/provider"
)

// Provider builds fake clients.
type Provider struct{}

// New returns the fake provider.
func New() provider.Provider { return Provider{} }

// ValidateSpec checks that every entry has a key.
func (Provider) ValidateSpec(store provider.Store) error {
	f := store.Spec.Provider.Fake
	if f == nil {
		return fmt.Errorf("spec.provider.fake is not set")
	}
	for i, d := range f.Data {
		if d.Key == "" {
			return fmt.Errorf("spec.provider.fake.data[%d].key is empty", i)
		}
	}
	return nil
}

// Shareable: never. A fake store's values are its spec's and what was
// pushed to it (PushSecret), so two stores with the same spec, in two
// namespaces, must not share a client: one tenant would read what the
// other pushed.
func (Provider) Shareable(provider.Store) bool { return false }

// NewClient returns a client over a copy of the store's data.
func (p Provider) NewClient(_ context.Context, opts provider.Options) (provider.Client, error) {
	if err := p.ValidateSpec(opts.Store); err != nil {
		return nil, fmt.Errorf("%w: %v", provider.ErrInvalidConfig, err)
	}
	c := &client{values: map[provider.Ref][]byte{}, pushed: map[string]int{}}
	for _, d := range opts.Store.Spec.Provider.Fake.Data {
		c.values[provider.Ref{Key: d.Key, Version: d.Version}] = []byte(d.Value)
		if d.Version == "" {
			c.order = append(c.order, d.Key)
		}
	}
	return c, nil
}

var _ provider.Lister = (*client)(nil)

type client struct {
	// mu guards values, order and pushed: pushes write them (push.go).
	mu     sync.RWMutex
	values map[provider.Ref][]byte
	order  []string
	// pushed holds the keys keyferry pushed (its managed-by mark) and the
	// version of each, for check-and-set.
	pushed map[string]int
}

func (c *client) GetSecret(_ context.Context, ref provider.Ref) (provider.Value, error) {
	if ref.Metadata {
		return provider.Value{}, provider.RefuseMetadata(ref, "the fake provider has no metadata")
	}
	c.mu.RLock()
	v, ok := c.values[ref]
	c.mu.RUnlock()
	if !ok {
		return provider.Value{}, fmt.Errorf("%w: key %q version %q", provider.ErrNotFound, ref.Key, ref.Version)
	}
	return provider.Value{Data: v, Version: ref.Version}, nil
}

// ListSecrets lists the unversioned entries whose key starts with
// list.Path, with their values: the whole store is in memory.
func (c *client) ListSecrets(_ context.Context, list provider.List) provider.ListPager {
	if len(list.Tags) > 0 {
		return provider.FailedPages(fmt.Errorf("%w: the fake provider has no tags", provider.ErrNotSupported))
	}
	var out []provider.Listed
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, k := range c.order {
		if strings.HasPrefix(k, list.Path) {
			ref := provider.Ref{Key: k}
			out = append(out, provider.Listed{Name: k, Ref: ref, Value: &provider.Value{Data: c.values[ref]}})
		}
	}
	return provider.OnePage(out)
}

func (c *client) Validate(context.Context) error { return nil }
func (c *client) Close(context.Context) error    { return nil }

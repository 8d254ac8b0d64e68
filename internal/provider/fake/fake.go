// Package fake is ESO's fake provider: a store whose values are listed inline
// in its spec (spec.provider.fake.data). It is for tests, demos and the
// quickstart; it never leaves the process.
package fake

import (
	"context"
	"fmt"
	"regexp"
	"strings"

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

// Shareable: a fake store's values depend only on its spec.
func (Provider) Shareable(provider.Store) bool { return true }

// NewClient returns a client over a copy of the store's data.
func (p Provider) NewClient(_ context.Context, opts provider.Options) (provider.Client, error) {
	if err := p.ValidateSpec(opts.Store); err != nil {
		return nil, fmt.Errorf("%w: %v", provider.ErrInvalidConfig, err)
	}
	c := &client{values: map[provider.Ref][]byte{}}
	for _, d := range opts.Store.Spec.Provider.Fake.Data {
		c.values[provider.Ref{Key: d.Key, Version: d.Version}] = []byte(d.Value)
		if d.Version == "" {
			c.order = append(c.order, d.Key)
		}
	}
	return c, nil
}

type client struct {
	values map[provider.Ref][]byte
	order  []string
}

func (c *client) GetSecret(_ context.Context, ref provider.Ref) (provider.Value, error) {
	v, ok := c.values[ref]
	if !ok {
		return provider.Value{}, fmt.Errorf("%w: key %q version %q", provider.ErrNotFound, ref.Key, ref.Version)
	}
	return provider.Value{Data: v, Version: ref.Version}, nil
}

func (c *client) Find(_ context.Context, f provider.Find) (map[string][]byte, error) {
	if len(f.Tags) > 0 {
		return nil, fmt.Errorf("%w: the fake provider has no tags", provider.ErrNotSupported)
	}
	re, err := regexp.Compile(f.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: name regexp: %v", provider.ErrInvalidConfig, err)
	}
	out := map[string][]byte{}
	for _, k := range c.order {
		if strings.HasPrefix(k, f.Path) && re.MatchString(k) {
			out[k] = c.values[provider.Ref{Key: k}]
		}
	}
	return out, nil
}

func (c *client) Validate(context.Context) error { return nil }
func (c *client) Close(context.Context) error    { return nil }

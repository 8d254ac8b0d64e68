// This file holds the one path from a generator to its provider: the same
// admission as every store's client (provider.Admit), and nothing of a
// backend (no cache, no coalescing, no shared client), because generated
// values are new at each run and belong to one requester.

package fetch

import (
	"context"
	"fmt"

	"github.com/keyferry/keyferry/internal/provider"
)

// Generate makes the values of gen through the provider of req.Store (an
// in-memory store built from the generator's spec). The store passes
// provider.Admit as a store's client does; the values are returned to the
// caller only: they are never cached, coalesced with another request or
// shared. Each call reads the credentials anew.
func (l *Layer) Generate(ctx context.Context, req Request, gen provider.GenerateRequest) (map[string][]byte, error) {
	name, p, err := l.opts.Registry.ProviderFor(req.Store)
	if err != nil {
		return nil, err
	}
	g, ok := p.(provider.Generator)
	if !ok {
		return nil, fmt.Errorf("%w: the %s provider makes no %s values", provider.ErrNotSupported, name, gen.Kind)
	}
	ns := req.Store.Namespace
	if req.Store.IsCluster() {
		ns = req.Namespace
	}
	popts, err := provider.Admit(p, provider.Options{
		Store: req.Store, Namespace: ns, Kube: l.opts.Kube, Tokens: l.opts.Tokens, Policy: l.opts.Policy,
		Log: l.opts.Log.WithValues("generator", req.Store.Kind+"/"+req.Store.Name, "namespace", ns),
	})
	if err != nil {
		// The caller names the generator.
		return nil, err
	}
	return g.Generate(ctx, popts, gen)
}

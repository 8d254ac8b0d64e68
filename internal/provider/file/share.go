package file

import "github.com/keyferry/keyferry/internal/provider"

// Shareable: a file store reads the operator's own files, so stores with the
// same root share one client, one cache and one filesystem watch.
func (p *Provider) Shareable(provider.Store) bool { return true }

package file

import (
	"path/filepath"

	"github.com/keyferry/keyferry/internal/provider"
)

// Options adjust the file provider. They exist for tests only: the operator
// always uses New, and no CRD field sets them.
type Options struct {
	// MapRoot maps a store's spec.path (cleaned) to the directory actually
	// read, so end-to-end tests can apply manifests that name /mnt/secrets
	// as they are while the files live in a temporary directory. Test-only.
	MapRoot func(path string) string
}

// NewWithOptions returns the file provider with opts. Test-only; see
// Options.
func NewWithOptions(opts Options) provider.Provider { return &Provider{opts: opts} }

// root returns the directory a store with spec.path path reads.
func (p *Provider) root(path string) string {
	dir := filepath.Clean(path)
	if p.opts.MapRoot != nil {
		dir = filepath.Clean(p.opts.MapRoot(dir))
	}
	return dir
}

package webhook

import (
	"context"
	"net"
	"net/http"
	"time"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// Options adjust the webhook provider. They exist for tests only: the
// operator always uses New, and no CRD field sets them.
type Options struct {
	// MapAddr maps the host:port keyferry would connect to (from the
	// store's url) to the address actually dialled. The request itself is
	// unchanged (URL, Host header, TLS server name), so end-to-end tests
	// can apply manifests naming in-cluster services as they are while the
	// service listens on a local port. Test-only.
	MapAddr func(addr string) string
	// MapPath maps each spiffe.files path to the file actually read.
	// Test-only.
	MapPath func(path string) string
}

// NewWithOptions returns the webhook provider with opts. Test-only; see
// Options.
func NewWithOptions(opts Options) provider.Provider { return &Provider{opts: opts} }

// mapSpec returns spec with spiffe.files mapped by MapPath.
func (p *Provider) mapSpec(spec *esv1.WebhookProvider) *esv1.WebhookProvider {
	if p.opts.MapPath == nil || spec.SPIFFE == nil || spec.SPIFFE.Files == nil {
		return spec
	}
	spec = spec.DeepCopy()
	f := spec.SPIFFE.Files
	f.CertPath, f.KeyPath, f.BundlePath = p.opts.MapPath(f.CertPath), p.opts.MapPath(f.KeyPath), p.opts.MapPath(f.BundlePath)
	return spec
}

// mapDial makes transport dial the addresses MapAddr gives.
func (p *Provider) mapDial(transport *http.Transport) {
	if p.opts.MapAddr == nil {
		return
	}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, p.opts.MapAddr(addr))
	}
}

// dialAddr is the address Validate connects to for addr.
func (c *Client) dialAddr(addr string) string {
	if c.mapAddr == nil {
		return addr
	}
	return c.mapAddr(addr)
}

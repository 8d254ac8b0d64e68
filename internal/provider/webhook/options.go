package webhook

import (
	"context"
	"net"
	"net/http"
	"time"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// Options adjust the webhook provider. AllowLinkLocal comes from an
// operator flag; MapAddr and MapPath exist for tests only. No CRD field
// sets any of them.
type Options struct {
	// AllowLinkLocal lets stores reach link-local and cloud metadata
	// addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254), which are
	// refused by default (--webhook-allow-link-local).
	AllowLinkLocal bool
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

// NewWithOptions returns the webhook provider with opts.
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

// setDial makes transport dial through the provider's dialer (which
// refuses link-local addresses), at the addresses MapAddr gives in tests.
func (p *Provider) setDial(transport *http.Transport) {
	d := p.dialer()
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if p.opts.MapAddr != nil {
			addr = p.opts.MapAddr(addr)
		}
		return d.DialContext(ctx, network, addr)
	}
}

// dialer is the dialer of every connection the provider makes.
func (p *Provider) dialer() *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: p.dialControl}
}

// dialAddr is the address Validate connects to for addr.
func (c *Client) dialAddr(addr string) string {
	if c.mapAddr == nil {
		return addr
	}
	return c.mapAddr(addr)
}

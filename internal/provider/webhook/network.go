package webhook

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// Network rules of the webhook provider. A store's URL is chosen by whoever
// may create the store, so the provider must not become a way into what
// only the operator's pod can reach:
//   - link-local addresses (169.254.0.0/16, fe80::/10: the cloud metadata
//     services at 169.254.169.254 and fd00:ec2::254 that hand out the node's
//     credentials) are refused when dialling, on the resolved address, so a
//     DNS name pointing there is refused too; Options.AllowLinkLocal (the
//     operator flag --webhook-allow-link-local) lifts this;
//   - a redirect is followed only to the same scheme, host and port, since
//     the request's headers (credentials) go with it;
//   - credentials go over plain http:// only to loopback addresses, unless
//     the operator allows it (--allow-insecure-http).

// LinkLocalError is the error of a dial to a link-local or metadata address.
type LinkLocalError struct {
	Addr netip.Addr
}

func (e *LinkLocalError) Error() string {
	return fmt.Sprintf("the webhook's address %s is link-local (where cloud metadata services hand out the node's credentials); keyferry refuses it unless the operator runs with --webhook-allow-link-local", e.Addr)
}

// metadataAddrs are cloud metadata addresses outside the link-local ranges.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"), // AWS IMDS over IPv6
}

// nat64 is the well-known NAT64 prefix: 64:ff9b::a9fe:a9fe reaches
// 169.254.169.254 through a NAT64 gateway.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// deniedAddr says whether dialling ip is refused by default.
func deniedAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.Is6() && nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	if ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() {
		return true
	}
	for _, m := range metadataAddrs {
		if ip == m {
			return true
		}
	}
	return false
}

// dialControl is the net.Dialer Control function of the provider's
// connections: it runs after name resolution, on the address about to be
// dialled, before any packet is sent.
func (p *Provider) dialControl(_, address string, _ syscall.RawConn) error {
	if p.opts.AllowLinkLocal {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = address
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		// Control always sees an IP address; anything else is refused
		// rather than guessed at.
		return fmt.Errorf("refusing to dial %q: not an IP address", address)
	}
	if deniedAddr(ip.WithZone("")) {
		return &LinkLocalError{Addr: ip.WithZone("")}
	}
	return nil
}

// RedirectError is the error of a redirect keyferry did not follow.
type RedirectError struct {
	// From and To are the origins (scheme://host:port) of the request and of
	// the redirect's target; never paths or queries, which may hold
	// credentials.
	From, To string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("the webhook redirected from %s to %s; keyferry follows redirects only within the same scheme, host and port, because the request's headers (credentials) would go with it", e.From, e.To)
}

// maxRedirects bounds same-origin redirects, as Go's default does.
const maxRedirects = 10

// checkRedirect is the http.Client's CheckRedirect: same origin only.
func checkRedirect(req *http.Request, via []*http.Request) error {
	from, to := origin(via[0].URL), origin(req.URL)
	if from != to {
		return &RedirectError{From: from, To: to}
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}

// origin is scheme://host:port of u, with the scheme's default port made
// explicit and the host lower-cased.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// sendsCredentials says whether the store's requests carry credentials:
// values of Secrets (secrets), a client certificate (clientTLS, spiffe), or
// an Authorization, Proxy-Authorization or Cookie header written into the
// store itself.
func sendsCredentials(spec *esv1.WebhookProvider) bool {
	if len(spec.Secrets) > 0 || spec.ClientTLS != nil || spec.SPIFFE != nil {
		return true
	}
	for name := range spec.Headers {
		for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
			if strings.EqualFold(name, h) {
				return true
			}
		}
	}
	return false
}

// staticURL renders the url template without a remote reference; ok is
// false when it does not render to a URL with a host (it may need a key).
func (c *Client) staticURL() (*url.URL, bool) {
	u, err := execute(c.tpls.url, templateData(provider.Ref{}, c.namespace, c.secrets, true))
	if err != nil {
		return nil, false
	}
	target, err := url.Parse(strings.TrimSpace(string(u)))
	if err != nil || target.Hostname() == "" {
		return nil, false
	}
	return target, true
}

// checkScheme refuses a plain http:// target for a store whose requests
// carry credentials, unless the target is a loopback address or the
// operator allows it. Only the scheme and host reach the message: the rest
// of a rendered URL may hold credentials.
func (c *Client) checkScheme(target *url.URL) error {
	if c.checkHTTP == nil {
		return nil
	}
	return c.redactor.wrap(c.checkHTTP(&url.URL{Scheme: target.Scheme, Host: target.Host}))
}

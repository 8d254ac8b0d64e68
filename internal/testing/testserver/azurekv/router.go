package azurekv

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Router is an HTTP transport (an azcore policy.Transporter) for a provider
// under test: requests to any *.vault.azure.net host go to the server's
// vault (the Host header keeps the vault's name), requests to the server's
// own addresses pass, and anything else is refused, so no test ever
// reaches Azure. It counts the requests for each vault host.
type Router struct {
	vaultHost string
	allowed   map[string]bool
	client    *http.Client

	mu    sync.Mutex
	hosts map[string]int
}

// Router returns a new Router to s.
func (s *Server) Router() *Router {
	r := &Router{allowed: map[string]bool{}, client: s.HTTPClient(), hosts: map[string]int{}}
	for _, raw := range []string{s.VaultURL(), s.AuthorityHost()} {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		r.allowed[u.Host] = true
		if raw == s.VaultURL() {
			r.vaultHost = u.Host
		}
	}
	return r
}

// Do implements policy.Transporter.
func (r *Router) Do(req *http.Request) (*http.Response, error) {
	host := req.URL.Hostname()
	switch {
	case strings.HasSuffix(host, ".vault.azure.net"):
		r.mu.Lock()
		r.hosts[host]++
		r.mu.Unlock()
		req = req.Clone(req.Context())
		req.Host = req.URL.Host
		req.URL.Host = r.vaultHost
	case r.allowed[req.URL.Host]:
	default:
		return nil, fmt.Errorf("test transport: %s is neither a *.vault.azure.net vault nor a test server", req.URL.Host)
	}
	return r.client.Do(req)
}

// RequestsTo counts the requests sent to a vault host, such as
// zaldre.vault.azure.net.
func (r *Router) RequestsTo(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hosts[host]
}

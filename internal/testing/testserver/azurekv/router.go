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
// vault (the Host header keeps the vault's name), requests to any
// *.azurecr.io (.us, .cn) registry to its registry token service (the Host
// header keeps the registry's name), requests to the server's
// own addresses pass, and anything else is refused, so no test ever
// reaches Azure. It counts the requests for each vault host.
type Router struct {
	vaultHost    string
	registryHost string
	allowed      map[string]bool
	client       *http.Client

	mu    sync.Mutex
	hosts map[string]int
}

// Router returns a new Router to s.
func (s *Server) Router() *Router {
	r := &Router{allowed: map[string]bool{}, client: s.HTTPClient(), hosts: map[string]int{}}
	if u, err := url.Parse(s.registry.URL); err == nil {
		r.registryHost = u.Host
	}
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
	case isRegistryHost(host):
		// A container registry (*.azurecr.io): the server's registry token
		// service, which tells registries apart by Host.
		r.mu.Lock()
		r.hosts[host]++
		r.mu.Unlock()
		req = req.Clone(req.Context())
		req.Host = req.URL.Host
		req.URL.Host = r.registryHost
	case r.allowed[req.URL.Host]:
	default:
		return nil, fmt.Errorf("test transport: %s is neither a *.vault.azure.net vault, a *.azurecr.io registry nor a test server", req.URL.Host)
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

package azurekv

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"
)

// maxCachedClients bounds the client cache; past it the oldest entry goes.
const maxCachedClients = 256

// clientCache keeps one client per configuration, so that a configuration
// seen again (the engine rebuilds clients as stores and references come and
// go) reuses the credential's token cache and the vault's authentication
// challenge instead of asking Entra ID again.
type clientCache struct {
	mu    sync.Mutex
	max   int
	byKey map[string]*Client
	order []string
}

func newClientCache(limit int) *clientCache {
	return &clientCache{max: limit, byKey: map[string]*Client{}}
}

func (c *clientCache) getOrCreate(key string, create func() (*Client, error)) (*Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.byKey[key]; ok {
		return cl, nil
	}
	cl, err := create()
	if err != nil {
		return nil, err
	}
	c.byKey[key] = cl
	c.order = append(c.order, key)
	for len(c.order) > c.max {
		delete(c.byKey, c.order[0])
		c.order = c.order[1:]
	}
	return cl, nil
}

// cacheKey identifies a configuration. Credential material enters only as
// part of a SHA-256 digest; the key is never logged.
func (cfg clientConfig) cacheKey() string {
	digest := func(b []byte) string {
		if b == nil {
			return ""
		}
		h := sha256.Sum256(b)
		return hex.EncodeToString(h[:])
	}
	k, _ := json.Marshal([]any{
		cfg.vaultURL, cfg.cloud.config.ActiveDirectoryAuthorityHost, cfg.cloud.disableInstanceDiscovery, cfg.cloud.vaultResource,
		cfg.auth, cfg.tenantID, cfg.clientID, digest(cfg.clientSecret), digest(cfg.clientCertificate), cfg.identityID,
		cfg.saNamespace, cfg.saName, cfg.audiences, cfg.tokenFile,
	})
	h := sha256.Sum256(k)
	return hex.EncodeToString(h[:])
}

// clientFor returns the cached client of cfg, building it if needed.
func (p *Provider) clientFor(cfg clientConfig) (*Client, error) {
	return p.cache.getOrCreate(cfg.cacheKey(), func() (*Client, error) { return p.newClient(cfg) })
}

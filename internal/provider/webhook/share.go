package webhook

import "github.com/keyferry/keyferry/internal/provider"

// Shareable says whether stores with this configuration can share one client
// and cache across namespaces: only when the configuration reads nothing
// from the store's namespace (no secrets, caProvider or clientTLS).
func (p *Provider) Shareable(store provider.Store) bool {
	w := store.Spec.Provider.Webhook
	return w != nil && len(w.Secrets) == 0 && w.CAProvider == nil && w.ClientTLS == nil && (w.Auth == nil || w.Auth.NTLM == nil)
}

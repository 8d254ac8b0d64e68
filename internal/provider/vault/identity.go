package vault

import (
	"fmt"
	"net/url"

	"github.com/keyferry/keyferry/internal/provider"
)

// OperatorIdentities implements provider.IdentityUser: auth.kubernetes
// without serviceAccountRef or secretRef logs in with keyferry's own
// ServiceAccount token.
func (p vaultProvider) OperatorIdentities(store provider.Store) []provider.IdentityUse {
	if store.Class != nil {
		return p.classOperatorIdentities(store)
	}
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.Vault == nil {
		return nil
	}
	a := store.Spec.Provider.Vault.Auth
	if authMethod(a) != "kubernetes" || a.Kubernetes.ServiceAccountRef != nil || a.Kubernetes.SecretRef != nil {
		return nil
	}
	return []provider.IdentityUse{{
		Identity: provider.IdentityKubernetes,
		Field:    "spec.provider.vault.auth.kubernetes",
		Why:      "names neither serviceAccountRef nor secretRef, so keyferry would send its own ServiceAccount token to vault.server",
	}}
}

// transportAllowed refuses to log in over plain http:// unless the policy
// allows it (see provider.Options.CheckInsecureHTTP). A store without auth
// sends no credential and may use any scheme.
func transportAllowed(opts provider.Options, server, method string) error {
	if method == "none" {
		return nil
	}
	u, err := url.Parse(server)
	if err != nil {
		return fmt.Errorf("%w: vault.server %q is not a URL", provider.ErrInvalidConfig, server)
	}
	return opts.CheckInsecureHTTP("vault.server", u)
}

package provider

import "context"

// Generator is implemented by providers that make the values of ESO
// generators whose values come from the provider's API with a store's
// credentials (ECRAuthorizationToken and STSSessionToken through aws,
// VaultDynamicSecret through vault, ...).
//
// The engine turns the generator's credential fields into an in-memory
// store (Options.Store: a namespaced store in the generator's namespace, or
// for a ClusterGenerator a cluster store used from the requester's
// namespace), so the credentials pass exactly the rules of any store's
// client (Admit: references stay in the namespace, no operator identity
// for a namespaced store unless the Policy grants it, tokens only through
// the restricted requester). The fetch layer admits opts before Generate
// is called and never caches, shares or logs what it returns.
type Generator interface {
	// Generate makes new values for req with the credentials of
	// opts.Store. The error wraps ErrInvalidConfig for a spec that cannot
	// work, and the other sentinels as a client's would; it never holds a
	// generated value or a credential.
	Generate(ctx context.Context, opts Options, req GenerateRequest) (map[string][]byte, error)
}

// GenerateRequest is what a generator asks of its provider.
type GenerateRequest struct {
	// Kind is the generator's kind, such as ECRAuthorizationToken.
	Kind string
	// Spec is the generator's typed spec, such as
	// *v1alpha1.ECRAuthorizationTokenSpec of apis/generators; a provider
	// refuses a type it does not serve with an error wrapping
	// ErrNotSupported.
	Spec any
}

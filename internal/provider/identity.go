package provider

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Identity names one of keyferry's own credentials: something that belongs to
// the operator's pod (its ServiceAccount token, its cloud identity, its
// SPIFFE SVID), or that keyferry mints and sends where a store says. Only
// ClusterSecretStores, which the platform team creates, may use them; a
// namespaced store, which any tenant can create, may use one only when the
// operator's Policy grants it.
type Identity string

// The identities a store's configuration can make keyferry use. Their names
// are the values of the --allow-ambient-identity flag.
const (
	// IdentityKubernetes is keyferry's own ServiceAccount token, such as
	// vault auth.kubernetes without serviceAccountRef or secretRef sends.
	IdentityKubernetes Identity = "kubernetes"
	// IdentityAWS is the AWS default credential chain of the operator's pod
	// (environment, IRSA / pod identity, instance profile).
	IdentityAWS Identity = "aws"
	// IdentityAzure is the operator pod's Azure managed identity or
	// workload identity.
	IdentityAzure Identity = "azure"
	// IdentityAzureAuthority is a federated ServiceAccount token posted to
	// an Azure authority host the store chose (customCloudConfig).
	IdentityAzureAuthority Identity = "azure-authority"
	// IdentityGCP is the operator pod's GCP application default
	// credentials.
	IdentityGCP Identity = "gcp"
	// IdentitySPIFFE is the operator pod's SPIFFE SVID, from files on its
	// file system or from a Workload API socket.
	IdentitySPIFFE Identity = "spiffe"
	// IdentityAPIToken is a token of a ServiceAccount that this cluster's
	// API server accepts (it carries the API server's audience), sent to a
	// server outside the cluster.
	IdentityAPIToken Identity = "api-token"
)

// Identities lists every Identity, for flag help and validation.
func Identities() []Identity {
	return []Identity{IdentityKubernetes, IdentityAWS, IdentityAzure, IdentityAzureAuthority, IdentityGCP, IdentitySPIFFE, IdentityAPIToken}
}

// ErrOperatorIdentity says a namespaced store asked for one of keyferry's own
// identities and the operator does not grant it.
var ErrOperatorIdentity = errors.New("the operator's own identity serves only ClusterSecretStores")

// IdentityUse is one use of an Identity that a store's configuration makes.
type IdentityUse struct {
	Identity Identity
	// Field is the spec path that causes the use, such as
	// spec.provider.vault.auth.kubernetes.
	Field string
	// Why says, in a few words, what keyferry would do with the identity.
	Why string
}

// IdentityUser is implemented by providers whose stores can make keyferry
// use one of its own identities. OperatorIdentities must be pure (no I/O)
// and list every use the configuration implies; the fetch layer refuses a
// namespaced store whose uses the Policy does not grant before the client is
// built, so no token is read and no request sent.
type IdentityUser interface {
	OperatorIdentities(store Store) []IdentityUse
}

// IdentityGrant lets namespaced stores use an Identity: in every namespace
// when Namespace is empty, otherwise only in that namespace.
type IdentityGrant struct {
	Identity  Identity
	Namespace string
}

func (g IdentityGrant) String() string {
	if g.Namespace == "" {
		return string(g.Identity)
	}
	return g.Namespace + "/" + string(g.Identity)
}

// Policy is what the operator allows stores beyond keyferry's defaults. It
// comes from the operator's flags; no store can change it. The zero value is
// the default: namespaced stores use none of keyferry's own identities, and
// credentials go over plain http:// only to loopback addresses.
type Policy struct {
	// AmbientIdentities are the exceptions to "only ClusterSecretStores use
	// the operator's own identity" (--allow-ambient-identity).
	AmbientIdentities []IdentityGrant
	// AllowInsecureHTTP lets credentials go to plain http:// servers that
	// are not loopback addresses (--allow-insecure-http).
	AllowInsecureHTTP bool
}

// Grants says whether the policy lets a namespaced store in namespace use id.
func (p Policy) Grants(id Identity, namespace string) bool {
	return slices.ContainsFunc(p.AmbientIdentities, func(g IdentityGrant) bool {
		return g.Identity == id && (g.Namespace == "" || g.Namespace == namespace)
	})
}

// ParseIdentityGrants parses the --allow-ambient-identity flag: a
// comma-separated list of IDENTITY (every namespace) or NAMESPACE/IDENTITY
// (one namespace), such as "aws,team-a/spiffe". Blank entries are ignored.
func ParseIdentityGrants(s string) ([]IdentityGrant, error) {
	var out []IdentityGrant
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		g := IdentityGrant{Identity: Identity(entry)}
		if ns, id, ok := strings.Cut(entry, "/"); ok {
			if !isDNSLabel(ns) {
				return nil, fmt.Errorf("%q: %q is not a namespace name", entry, ns)
			}
			g = IdentityGrant{Identity: Identity(id), Namespace: ns}
		}
		if !slices.Contains(Identities(), g.Identity) {
			return nil, fmt.Errorf("%q: unknown identity %q (known: %s)", entry, g.Identity, identityNames())
		}
		out = append(out, g)
	}
	return out, nil
}

func identityNames() string {
	ids := Identities()
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = string(id)
	}
	return strings.Join(names, ", ")
}

// isDNSLabel reports whether s is a valid namespace name (RFC 1123 label).
func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}

// operatorIdentityAllowed refuses a namespaced store that would use one of
// keyferry's own identities the policy does not grant it.
func operatorIdentityAllowed(p Provider, store Store, pol Policy) error {
	u, ok := p.(IdentityUser)
	if !ok || store.IsCluster() {
		return nil
	}
	for _, use := range u.OperatorIdentities(store) {
		if pol.Grants(use.Identity, store.Namespace) {
			continue
		}
		return fmt.Errorf("%s %s; %w: name a credential in the store's namespace, use a ClusterSecretStore, or ask the platform team to run keyferry with --allow-ambient-identity=%s/%s",
			use.Field, use.Why, ErrOperatorIdentity, store.Namespace, use.Identity)
	}
	return nil
}

// storeCheck is one rule every store must pass before keyferry builds a
// client for it. It does no I/O.
type storeCheck func(p Provider, store Store, pol Policy) error

// storeChecks are the rules of Admit, in order: a namespaced store stays in
// its namespace, and uses none of keyferry's own identities unless granted.
func storeChecks() []storeCheck {
	return []storeCheck{
		func(_ Provider, store Store, _ Policy) error { return ReferencesStayInNamespace(store) },
		operatorIdentityAllowed,
	}
}

// Admit runs storeChecks for the store opts is built for and returns the
// first failure, which wraps ErrInvalidConfig or ErrOperatorIdentity. On
// success it returns opts with its token requester restricted to the tokens
// the store may mint (see restrictedTokens). Callers that build clients (the fetch
// layer) call Admit before Provider.NewClient.
func Admit(p Provider, opts Options) (Options, error) {
	for _, check := range storeChecks() {
		if err := check(p, opts.Store, opts.Policy); err != nil {
			return opts, err
		}
	}
	if opts.Tokens != nil {
		opts.Tokens = &restrictedTokens{
			inner: opts.Tokens, store: opts.Store, policy: opts.Policy,
			local: tokensStayLocal(p, opts.Store),
		}
	}
	return opts, nil
}

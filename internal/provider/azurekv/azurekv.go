// Package azurekv is keyferry's provider for Azure Key Vault
// (SecretStore.spec.provider.azurekv), built on the official Azure SDK for Go
// (azsecrets, azcertificates, azkeys, azidentity).
//
// It reads the objects ESO reads, addressed the way ESO addresses them: a
// remote key "name" or "secret/name" is a secret's value, "cert/name" is the
// DER bytes of a certificate (Key Vault's "cer"), "key/name" is a key's
// public JSON Web Key; remoteRef.version selects a version. dataFrom.find
// lists the vault's enabled secrets, filters them by name (regular
// expression) and tags, and fetches each match.
//
// It authenticates as ESO does: ServicePrincipal (client secret or client
// certificate from authSecretRef), ManagedIdentity (identityId selects a
// user-assigned identity) and WorkloadIdentity (a ServiceAccount token,
// requested through the TokenRequest API with audience
// api://AzureADTokenExchange, exchanged at Entra ID as a client assertion; or,
// without serviceAccountRef, the operator's own federated token file that the
// Azure workload identity webhook mounts).
//
// Errors wrap provider's sentinels: 404 is ErrNotFound, 403 ErrForbidden, a
// token Entra ID refuses or Key Vault rejects ErrUnauthenticated, 429 a
// *provider.ThrottledError carrying Retry-After, and network failures
// ErrUnreachable. The SDK never retries a 429 itself: keyferry's engine owns
// backoff, so a throttled vault sees one request, not a burst of retries.
// Transient failures (connection errors, 408, 500, 502, 503, 504) are retried
// at most twice, with at most a few seconds of delay.
//
// It also serves SecretProviderClasses with provider azure (class.go), as
// the Azure provider of the Secrets Store CSI driver reads them: a store
// whose Class is set reads the files of the class's `objects`.
//
// It makes the values of ESO's ACRAccessToken generator (generate.go,
// provider.Generator): an Entra ID token for Azure Resource Manager from
// the store's credential, exchanged at an Azure Container Registry's token
// service for a refresh token or, with a scope, an access token.
//
// Clients are cached per configuration (vault, identity, credential
// material), so the SDK's token cache and Key Vault's authentication
// challenge survive between NewClient calls: a store that refreshes every
// minute asks Entra ID for a token about once an hour.
package azurekv

import (
	"context"
	"fmt"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// Name is the provider's name: its field in SecretStore.spec.provider.
const Name = "azurekv"

// Options are internal settings of the provider that a store's manifest can
// never set: keyferry's own tests and `keyferry dev` use them to point the
// provider at local test servers.
type Options struct {
	// Transport sends every HTTP request (Key Vault, Entra ID and the managed
	// identity endpoint); nil uses a default transport.
	Transport policy.Transporter
	// AuthorityHost replaces the Entra ID authority host of every cloud (and
	// turns instance discovery off), e.g. "https://127.0.0.1:8443/".
	AuthorityHost string
	// DisableChallengeResourceVerification lets a vault whose host is not a
	// subdomain of the resource its authentication challenge names (a test
	// server on 127.0.0.1) be used.
	DisableChallengeResourceVerification bool
	// LookupEnv reads the operator's environment, for WorkloadIdentity
	// without serviceAccountRef (AZURE_CLIENT_ID, AZURE_TENANT_ID,
	// AZURE_FEDERATED_TOKEN_FILE, set by the Azure workload identity webhook).
	// nil reads the process environment.
	LookupEnv func(key string) (string, bool)
	// VaultURL maps a SecretProviderClass's keyvaultName in a cloud to the
	// vault's URL; nil uses Azure's vault domains (VaultURLFromName).
	// Tests set it to reach a local Key Vault whatever the manifest names.
	VaultURL func(name string, cloud esv1.AzureEnvironmentType) (string, error)
}

// Provider builds Azure Key Vault clients. It is safe for concurrent use.
type Provider struct {
	opts  Options
	cache *clientCache
}

var _ provider.Provider = (*Provider)(nil)

// New returns the provider with default options.
func New() provider.Provider { return NewWithOptions(Options{}) }

// NewWithOptions returns the provider with internal options (see Options).
func NewWithOptions(opts Options) *Provider {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	return &Provider{opts: opts, cache: newClientCache(maxCachedClients)}
}

// ValidateSpec checks the store's azurekv configuration without any I/O.
func (p *Provider) ValidateSpec(store provider.Store) error {
	if store.Class != nil {
		return validateClass(store)
	}
	_, err := specOf(store)
	return err
}

// NewClient builds a client for the store: it reads the credentials the
// store names and, for workload identity, the ServiceAccount's annotations.
// Tokens are requested when first needed.
func (p *Provider) NewClient(ctx context.Context, opts provider.Options) (provider.Client, error) {
	if opts.Store.Class != nil {
		return p.newClassClient(ctx, opts)
	}
	spec, err := specOf(opts.Store)
	if err != nil {
		return nil, err
	}
	cfg, err := p.resolve(ctx, spec, opts)
	if err != nil {
		return nil, fmt.Errorf("configuring azurekv store %s: %w", storeName(opts.Store), err)
	}
	c, err := p.clientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring azurekv store %s: %w", storeName(opts.Store), err)
	}
	return c, nil
}

func storeName(s provider.Store) string {
	if s.Namespace == "" {
		return s.Kind + " " + s.Name
	}
	return s.Kind + " " + s.Namespace + "/" + s.Name
}

package azurekv

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// AzureParams configure a client outside a SecretStore, as a
// SecretProviderClass with `provider: azure` does (parameters keyvaultName,
// tenantId, clientID, cloudName) for the SecretSync that uses it.
type AzureParams struct {
	// VaultURL of the vault; or VaultName in the Cloud (see VaultURLFromName).
	VaultURL  string
	VaultName string
	// TenantID of the identity; when empty, the ServiceAccount's
	// azure.workload.identity/tenant-id annotation.
	TenantID string
	// ClientID of the identity (the clientID parameter: a user-assigned
	// managed identity federated with the ServiceAccount); when empty, the
	// ServiceAccount's azure.workload.identity/client-id annotation.
	ClientID string
	// Cloud of the vault and identity; empty means PublicCloud.
	Cloud esv1.AzureEnvironmentType
	// ServiceAccountNamespace and ServiceAccountName name the ServiceAccount
	// whose token is exchanged for an Entra ID token (workload identity).
	ServiceAccountNamespace string
	ServiceAccountName      string
	// Audiences added to api://AzureADTokenExchange in the token request.
	Audiences []string
	// UseManagedIdentity authenticates with the operator's managed identity
	// instead (useVMManagedIdentity); ClientID, if set, selects a
	// user-assigned identity (userAssignedIdentityID).
	UseManagedIdentity bool
}

// NewClientFor builds a client from params. It uses opts.Kube to read the
// ServiceAccount's annotations and opts.Tokens to request its tokens;
// opts.Store is ignored. Clients are cached like those of NewClient.
func (p *Provider) NewClientFor(ctx context.Context, params AzureParams, opts provider.Options) (*Client, error) {
	cfg, err := p.resolveParams(ctx, params, opts)
	if err != nil {
		return nil, err
	}
	return p.clientFor(cfg)
}

func (p *Provider) resolveParams(ctx context.Context, params AzureParams, opts provider.Options) (clientConfig, error) {
	var cfg clientConfig
	vaultURL := params.VaultURL
	if vaultURL == "" {
		var err error
		if vaultURL, err = VaultURLFromName(params.VaultName, params.Cloud); err != nil {
			return cfg, err
		}
	}
	if u, err := url.Parse(vaultURL); err != nil || u.Scheme != "https" || u.Host == "" {
		return cfg, fmt.Errorf("%w: vault URL %q must be an https URL", provider.ErrInvalidConfig, vaultURL)
	}
	cfg.vaultURL = vaultURL
	var err error
	if cfg.cloud, err = cloudFor(params.Cloud, nil, vaultURL, p.opts.AuthorityHost); err != nil {
		return cfg, err
	}
	tenantID, clientID := strings.TrimSpace(params.TenantID), strings.TrimSpace(params.ClientID)

	if params.UseManagedIdentity {
		cfg.auth, cfg.identityID = esv1.AzureManagedIdentity, clientID
		return cfg, nil
	}
	if params.ServiceAccountName == "" {
		return cfg, fmt.Errorf("%w: workload identity needs a service account", provider.ErrInvalidConfig)
	}
	if opts.Tokens == nil {
		return cfg, fmt.Errorf("%w: service account tokens are not available", provider.ErrInvalidConfig)
	}
	ns, name := params.ServiceAccountNamespace, params.ServiceAccountName
	id, err := workloadIdentity(ctx, opts.Kube, ns, name, clientID, tenantID)
	if err != nil {
		return cfg, err
	}
	if id.tenantID == "" {
		return cfg, fmt.Errorf("%w: workload identity needs a tenant ID: set tenantId or annotate service account %s/%s with %s", provider.ErrInvalidConfig, ns, name, AnnotationTenantID)
	}
	cfg.auth = esv1.AzureWorkloadIdentity
	cfg.clientID, cfg.tenantID = id.clientID, id.tenantID
	cfg.saNamespace, cfg.saName, cfg.tokens = ns, name, opts.Tokens
	cfg.audiences = append([]string{TokenExchangeAudience}, params.Audiences...)
	return cfg, nil
}

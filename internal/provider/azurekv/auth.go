package azurekv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

const (
	// TokenExchangeAudience is the audience of the ServiceAccount tokens
	// exchanged at Entra ID (workload identity federation).
	TokenExchangeAudience = "api://AzureADTokenExchange"
	// AnnotationClientID on a ServiceAccount names the client ID of the
	// identity it is federated with.
	AnnotationClientID = "azure.workload.identity/client-id"
	// AnnotationTenantID on a ServiceAccount names the identity's tenant.
	AnnotationTenantID = "azure.workload.identity/tenant-id"

	envClientID           = "AZURE_CLIENT_ID"
	envTenantID           = "AZURE_TENANT_ID"
	envFederatedTokenFile = "AZURE_FEDERATED_TOKEN_FILE"
)

// clientConfig is everything a client is built from. Two equal configs
// (see cacheKey) can share a client.
type clientConfig struct {
	vaultURL string
	cloud    cloudSettings
	auth     esv1.AzureAuthType

	tenantID, clientID string
	clientSecret       []byte // ServicePrincipal
	clientCertificate  []byte // ServicePrincipal: PEM or PKCS#12 with the private key
	identityID         string // ManagedIdentity

	// WorkloadIdentity with a ServiceAccount.
	saNamespace, saName string
	audiences           []string
	tokens              provider.TokenRequester // not part of the cache key
	// WorkloadIdentity with the operator's own token file.
	tokenFile string
}

// resolve reads what the store's configuration points at: credential
// Secrets, the ServiceAccount's annotations, the operator's environment.
func (p *Provider) resolve(ctx context.Context, spec *esv1.AzureKVProvider, opts provider.Options) (clientConfig, error) {
	cfg := clientConfig{auth: authType(spec)}
	if spec.VaultURL != nil {
		// A store's is checked by specOf; a generator's store has none.
		cfg.vaultURL = *spec.VaultURL
	}
	var err error
	if cfg.cloud, err = cloudFor(spec.EnvironmentType, spec.CustomCloudConfig, cfg.vaultURL, p.opts.AuthorityHost); err != nil {
		return cfg, err
	}
	switch cfg.auth {
	case esv1.AzureServicePrincipal:
		err = resolveServicePrincipal(ctx, spec, opts, &cfg)
	case esv1.AzureManagedIdentity:
		if spec.IdentityID != nil {
			cfg.identityID = *spec.IdentityID
		}
	case esv1.AzureWorkloadIdentity:
		err = p.resolveWorkloadIdentity(ctx, spec, opts, &cfg)
	}
	return cfg, err
}

func resolveServicePrincipal(ctx context.Context, spec *esv1.AzureKVProvider, opts provider.Options, cfg *clientConfig) error {
	a := spec.AuthSecretRef
	clientID, err := secretString(ctx, opts, a.ClientID, "clientId")
	if err != nil {
		return err
	}
	cfg.clientID = clientID
	if cfg.tenantID, err = tenantFrom(ctx, spec, opts); err != nil {
		return err
	}
	if a.ClientSecret != nil {
		if cfg.clientSecret, err = opts.SecretKey(ctx, *a.ClientSecret); err != nil {
			return fmt.Errorf("reading authSecretRef.clientSecret: %w", err)
		}
		if len(cfg.clientSecret) == 0 {
			return fmt.Errorf("%w: authSecretRef.clientSecret is empty", provider.ErrInvalidConfig)
		}
		return nil
	}
	if cfg.clientCertificate, err = opts.SecretKey(ctx, *a.ClientCertificate); err != nil {
		return fmt.Errorf("reading authSecretRef.clientCertificate: %w", err)
	}
	return nil
}

// tenantFrom returns the tenant the store names, in tenantId or in
// authSecretRef.tenantId ("" when neither is set).
func tenantFrom(ctx context.Context, spec *esv1.AzureKVProvider, opts provider.Options) (string, error) {
	var fromSpec, fromSecret string
	if spec.TenantID != nil {
		fromSpec = strings.TrimSpace(*spec.TenantID)
	}
	if spec.AuthSecretRef != nil && spec.AuthSecretRef.TenantID != nil {
		v, err := secretString(ctx, opts, spec.AuthSecretRef.TenantID, "tenantId")
		if err != nil {
			return "", err
		}
		fromSecret = v
	}
	if fromSpec != "" && fromSecret != "" && fromSpec != fromSecret {
		return "", fmt.Errorf("%w: tenantId %q and authSecretRef.tenantId %q differ: set one", provider.ErrInvalidConfig, fromSpec, fromSecret)
	}
	if fromSecret != "" {
		return fromSecret, nil
	}
	return fromSpec, nil
}

// secretString reads an identifier (client or tenant ID) from a Secret.
func secretString(ctx context.Context, opts provider.Options, sel *esv1.SecretKeySelector, field string) (string, error) {
	b, err := opts.SecretKey(ctx, *sel)
	if err != nil {
		return "", fmt.Errorf("reading authSecretRef.%s: %w", field, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%w: authSecretRef.%s is empty", provider.ErrInvalidConfig, field)
	}
	return v, nil
}

func (p *Provider) resolveWorkloadIdentity(ctx context.Context, spec *esv1.AzureKVProvider, opts provider.Options, cfg *clientConfig) error {
	var clientID string
	if spec.AuthSecretRef != nil && spec.AuthSecretRef.ClientID != nil {
		v, err := secretString(ctx, opts, spec.AuthSecretRef.ClientID, "clientId")
		if err != nil {
			return err
		}
		clientID = v
	}
	tenantID, err := tenantFrom(ctx, spec, opts)
	if err != nil {
		return err
	}

	if spec.ServiceAccountRef == nil {
		// The operator's own identity, as the Azure workload identity webhook
		// sets it up in the operator's pod.
		file, ok := p.opts.LookupEnv(envFederatedTokenFile)
		if !ok || file == "" {
			return fmt.Errorf("%w: authType WorkloadIdentity without serviceAccountRef uses the operator's own workload identity, but %s is not set (label the operator's pod azure.workload.identity/use: \"true\"), or set serviceAccountRef", provider.ErrInvalidConfig, envFederatedTokenFile)
		}
		cfg.tokenFile = filepath.Clean(file)
		cfg.clientID = firstNonEmpty(clientID, p.env(envClientID))
		cfg.tenantID = firstNonEmpty(tenantID, p.env(envTenantID))
		if cfg.clientID == "" {
			return fmt.Errorf("%w: workload identity needs a client ID: set %s in the operator's environment or authSecretRef.clientId", provider.ErrInvalidConfig, envClientID)
		}
		if cfg.tenantID == "" {
			return fmt.Errorf("%w: workload identity needs a tenant ID: set tenantId, or %s in the operator's environment", provider.ErrInvalidConfig, envTenantID)
		}
		return nil
	}

	sa := spec.ServiceAccountRef
	ns := opts.NamespaceFor(sa.Namespace)
	id, err := workloadIdentity(ctx, opts.Kube, ns, sa.Name, clientID, tenantID)
	if err != nil {
		return err
	}
	cfg.clientID, cfg.tenantID = id.clientID, firstNonEmpty(id.tenantID, p.env(envTenantID))
	if cfg.tenantID == "" {
		return fmt.Errorf("%w: workload identity needs a tenant ID: set tenantId or annotate service account %s/%s with %s", provider.ErrInvalidConfig, ns, sa.Name, AnnotationTenantID)
	}
	if opts.Tokens == nil {
		return fmt.Errorf("%w: service account tokens are not available", provider.ErrInvalidConfig)
	}
	cfg.saNamespace, cfg.saName, cfg.tokens = ns, sa.Name, opts.Tokens
	// Entra ID needs api://AzureADTokenExchange; extra audiences are added,
	// as ESO does.
	cfg.audiences = append([]string{TokenExchangeAudience}, sa.Audiences...)
	return nil
}

type identity struct{ clientID, tenantID string }

// workloadIdentity completes a client and tenant ID with the ServiceAccount's
// azure.workload.identity annotations. Values the store sets explicitly win;
// an annotation that contradicts one is an error.
func workloadIdentity(ctx context.Context, kube client.Reader, ns, name, clientID, tenantID string) (identity, error) {
	if kube == nil {
		if clientID == "" {
			return identity{}, fmt.Errorf("%w: workload identity needs a client ID", provider.ErrInvalidConfig)
		}
		return identity{clientID, tenantID}, nil
	}
	var sa corev1.ServiceAccount
	if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &sa); err != nil {
		if apierrors.IsNotFound(err) {
			return identity{}, fmt.Errorf("%w: service account %s/%s not found", provider.ErrInvalidConfig, ns, name)
		}
		return identity{}, fmt.Errorf("reading service account %s/%s: %w", ns, name, err)
	}
	pick := func(explicit, annotation, what string) (string, error) {
		a := strings.TrimSpace(sa.Annotations[annotation])
		if explicit != "" && a != "" && explicit != a {
			return "", fmt.Errorf("%w: the store's %s %q and service account %s/%s's annotation %s %q differ", provider.ErrInvalidConfig, what, explicit, ns, name, annotation, a)
		}
		return firstNonEmpty(explicit, a), nil
	}
	cid, err := pick(clientID, AnnotationClientID, "client ID")
	if err != nil {
		return identity{}, err
	}
	if cid == "" {
		return identity{}, fmt.Errorf("%w: workload identity needs a client ID: annotate service account %s/%s with %s or set authSecretRef.clientId", provider.ErrInvalidConfig, ns, name, AnnotationClientID)
	}
	tid, err := pick(tenantID, AnnotationTenantID, "tenant ID")
	if err != nil {
		return identity{}, err
	}
	return identity{cid, tid}, nil
}

func (p *Provider) env(key string) string {
	v, _ := p.opts.LookupEnv(key)
	return strings.TrimSpace(v)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// credential builds the azidentity credential of cfg.
func (p *Provider) credential(cfg clientConfig) (azcore.TokenCredential, error) {
	co := azcore.ClientOptions{Cloud: cfg.cloud.config, Transport: p.credentialTransport(), Retry: retryOptions()}
	var (
		cred azcore.TokenCredential
		err  error
	)
	switch cfg.auth {
	case esv1.AzureServicePrincipal:
		if cfg.clientSecret != nil {
			cred, err = azidentity.NewClientSecretCredential(cfg.tenantID, cfg.clientID, string(cfg.clientSecret), &azidentity.ClientSecretCredentialOptions{
				ClientOptions: co, DisableInstanceDiscovery: cfg.cloud.disableInstanceDiscovery,
			})
			break
		}
		certs, key, perr := azidentity.ParseCertificates(cfg.clientCertificate, nil)
		if perr != nil {
			// The parse error names the format problem, never the content.
			return nil, fmt.Errorf("%w: authSecretRef.clientCertificate must hold a PEM (or unencrypted PKCS#12) certificate and its private key: %v", provider.ErrInvalidConfig, perr)
		}
		cred, err = azidentity.NewClientCertificateCredential(cfg.tenantID, cfg.clientID, certs, key, &azidentity.ClientCertificateCredentialOptions{
			ClientOptions: co, DisableInstanceDiscovery: cfg.cloud.disableInstanceDiscovery,
		})
	case esv1.AzureManagedIdentity:
		// The managed identity endpoint (IMDS on AKS nodes) has its own retry
		// rules in azidentity, which keeps them when Retry is left zero.
		mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: azcore.ClientOptions{Cloud: cfg.cloud.config, Transport: p.credentialTransport()}}
		switch {
		case strings.HasPrefix(cfg.identityID, "/"):
			mo.ID = azidentity.ResourceID(cfg.identityID)
		case cfg.identityID != "":
			mo.ID = azidentity.ClientID(cfg.identityID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(mo)
	case esv1.AzureWorkloadIdentity:
		cred, err = azidentity.NewClientAssertionCredential(cfg.tenantID, cfg.clientID, assertionSource(cfg), &azidentity.ClientAssertionCredentialOptions{
			ClientOptions: co, DisableInstanceDiscovery: cfg.cloud.disableInstanceDiscovery,
		})
	default:
		return nil, fmt.Errorf("%w: unknown authType %q", provider.ErrInvalidConfig, cfg.auth)
	}
	if err != nil {
		// Constructors fail on malformed identifiers (tenant ID, client ID),
		// never on credentials, which are only sent when a token is needed.
		return nil, fmt.Errorf("%w: %s credential: %v", provider.ErrInvalidConfig, cfg.auth, err)
	}
	who := cfg.clientID
	if cfg.auth == esv1.AzureManagedIdentity {
		who = cfg.identityID
	}
	return &classifiedCredential{inner: cred, auth: cfg.auth, clientID: who, tenantID: cfg.tenantID}, nil
}

// assertionSource returns the client assertion of a workload identity: a
// fresh ServiceAccount token for each token exchange, or the current content
// of the operator's token file (the kubelet rotates it).
func assertionSource(cfg clientConfig) func(context.Context) (string, error) {
	if cfg.tokenFile != "" {
		file := cfg.tokenFile
		return func(ctx context.Context) (string, error) {
			b, err := os.ReadFile(file)
			if err != nil {
				err = fmt.Errorf("%w: reading the federated token file %s: %v", provider.ErrInvalidConfig, file, err)
				recordAssertionError(ctx, err)
				return "", err
			}
			return strings.TrimSpace(string(b)), nil
		}
	}
	tokens, ns, name, aud := cfg.tokens, cfg.saNamespace, cfg.saName, cfg.audiences
	return func(ctx context.Context) (string, error) {
		tok, _, err := tokens.ServiceAccountToken(ctx, ns, name, aud, 0)
		if err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				err = fmt.Errorf("%w: requesting a token for service account %s/%s: %v", provider.ErrInvalidConfig, ns, name, err)
			} else {
				err = fmt.Errorf("requesting a token for service account %s/%s: %w", ns, name, err)
			}
			recordAssertionError(ctx, err)
			return "", err
		}
		return tok, nil
	}
}

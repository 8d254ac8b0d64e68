package secretsync

import (
	"context"
	"fmt"
	"net/url"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	spcv1 "github.com/keyferry/keyferry/apis/secretsstore/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/azurekv"
)

// ResolverOptions configure NewResolver.
type ResolverOptions struct {
	// VaultURL maps a keyvaultName in a cloud to the vault's URL; nil uses
	// Azure's vault domains (azurekv.VaultURLFromName). Only keyferry's
	// tests set it, to reach a local Key Vault whatever the manifest names.
	VaultURL func(name string, cloud esv1.AzureEnvironmentType) (string, error)
}

// NewResolver returns the engine.StoreResolver of StoreKind: it reads the
// SecretProviderClass a plan's store names (from c, in the plan owner's
// namespace) and synthesizes the azurekv store it describes: the vault
// (keyvaultName in cloudName's domain), the tenant (tenantID or tenantId),
// and workload identity as the client ID (clientID) with the plan's
// ServiceAccount, or the operator's managed identity (useVMManagedIdentity,
// userAssignedIdentityID). The store is named after the class and the
// ServiceAccount, so different ServiceAccounts never share a client (the
// fetch layer keys clients by store and configuration, so any change of the
// connection parameters builds a new one).
func NewResolver(c client.Reader, opts ResolverOptions) engine.StoreResolver {
	vaultURL := opts.VaultURL
	if vaultURL == nil {
		vaultURL = azurekv.VaultURLFromName
	}
	return func(ctx context.Context, plan engine.Plan, ref engine.StoreRef) (provider.Store, error) {
		spcName, sa, ok := splitStoreName(ref.Name)
		if !ok {
			return provider.Store{}, &engine.Error{Reason: engine.ReasonInvalidStoreConfig, Err: fmt.Errorf("%q does not name a SecretProviderClass and a ServiceAccount", ref.Name)}
		}
		ns := plan.Owner.Namespace
		var spc spcv1.SecretProviderClass
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: spcName}, &spc); err != nil {
			if apierrors.IsNotFound(err) {
				return provider.Store{}, &engine.Error{Reason: engine.ReasonStoreNotFound, Err: fmt.Errorf("SecretProviderClass %q not found in namespace %q", spcName, ns)}
			}
			return provider.Store{}, &engine.Error{Reason: engine.ReasonStoreNotFound, Err: fmt.Errorf("reading SecretProviderClass %q: %w", spcName, err)}
		}
		if err := providerIsAzure(&spc); err != nil {
			return provider.Store{}, &engine.Error{Reason: engine.ReasonUnsupportedProvider, Err: err}
		}
		conn, err := parseConnection(spc.Spec.Parameters)
		if err != nil {
			return provider.Store{}, &engine.Error{Reason: engine.ReasonInvalidStoreConfig, Err: fmt.Errorf("SecretProviderClass %q: %w", spcName, err)}
		}
		u, err := vaultURL(conn.VaultName, conn.Cloud)
		if err != nil {
			return provider.Store{}, &engine.Error{Reason: engine.ReasonInvalidStoreConfig, Err: fmt.Errorf("SecretProviderClass %q: parameters.keyvaultName: %w", spcName, err)}
		}
		st := provider.Store{
			Kind: StoreKind, Namespace: ns, Name: storeName(spcName, sa),
			Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{AzureKV: azureSpec(conn, u, sa)}},
		}
		return st, nil
	}
}

// azureSpec expresses a connection as an azurekv provider configuration.
// The store never leaves keyferry: for StoreKind, identityId holds the client
// ID of the identity for workload identity too (the SecretProviderClass's
// clientID), which spcProvider reads back (see paramsOf).
func azureSpec(c connection, vaultURL, serviceAccount string) *esv1.AzureKVProvider {
	spec := &esv1.AzureKVProvider{VaultURL: &vaultURL, EnvironmentType: c.Cloud}
	if c.TenantID != "" {
		spec.TenantID = ptr(c.TenantID)
	}
	if c.ClientID != "" {
		spec.IdentityID = ptr(c.ClientID)
	}
	auth := esv1.AzureWorkloadIdentity
	if c.ManagedIdentity {
		auth = esv1.AzureManagedIdentity
	} else {
		spec.ServiceAccountRef = &esv1.ServiceAccountSelector{Name: serviceAccount}
	}
	spec.AuthType = &auth
	return spec
}

// azureClientBuilder is what spcProvider needs of the azurekv provider.
type azureClientBuilder interface {
	provider.Provider
	NewClientFor(ctx context.Context, params azurekv.AzureParams, opts provider.Options) (*azurekv.Client, error)
}

var (
	_ azureClientBuilder = (*azurekv.Provider)(nil)
	_ vaultClient        = (*azurekv.Client)(nil)
)

// vaultClient is what the SecretProviderClass client needs of an Azure Key
// Vault client.
type vaultClient interface {
	GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error)
	Versions(ctx context.Context, key string, n int) ([]provider.Value, error)
	Validate(ctx context.Context) error
	Close(ctx context.Context) error
}

// WrapAzureProvider makes reg's azurekv provider serve SecretProviderClass
// stores too: it replaces the registration with a provider that hands every
// other store to the original. Without an azurekv provider in reg it does
// nothing (SecretSyncs then report ControllerSpcError). It is idempotent.
func WrapAzureProvider(reg *provider.Registry) error {
	p, ok := reg.Get(azurekv.Name)
	if !ok {
		return nil
	}
	if _, done := p.(*spcProvider); done {
		return nil
	}
	b, ok := p.(azureClientBuilder)
	if !ok {
		return fmt.Errorf("the %s provider (%T) cannot build clients for SecretProviderClass parameters", azurekv.Name, p)
	}
	reg.Register(azurekv.Name, &spcProvider{inner: b})
	return nil
}

// spcProvider is the azurekv provider, extended to SecretProviderClass
// stores.
type spcProvider struct {
	inner azureClientBuilder
}

// OperatorIdentities forwards to the azurekv provider (provider.IdentityUser),
// for both kinds of store: a SecretProviderClass's managed identity is
// keyferry's own too.
func (p *spcProvider) OperatorIdentities(st provider.Store) []provider.IdentityUse {
	if u, ok := p.inner.(provider.IdentityUser); ok {
		return u.OperatorIdentities(st)
	}
	return nil
}

func (p *spcProvider) ValidateSpec(st provider.Store) error {
	if st.Kind != StoreKind {
		return p.inner.ValidateSpec(st)
	}
	spec, err := spcSpec(st)
	if err != nil {
		return err
	}
	u, err := url.Parse(deref(spec.VaultURL))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%w: the vault URL %q is not an https URL", provider.ErrInvalidConfig, deref(spec.VaultURL))
	}
	return nil
}

func (p *spcProvider) NewClient(ctx context.Context, opts provider.Options) (provider.Client, error) {
	if opts.Store.Kind != StoreKind {
		return p.inner.NewClient(ctx, opts)
	}
	spec, err := spcSpec(opts.Store)
	if err != nil {
		return nil, err
	}
	c, err := p.inner.NewClientFor(ctx, paramsOf(spec, opts.Store.Namespace), opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to the vault of SecretProviderClass %s: %w", opts.Store.Name, err)
	}
	return &spcClient{vault: c}, nil
}

func spcSpec(st provider.Store) (*esv1.AzureKVProvider, error) {
	if st.Spec == nil || st.Spec.Provider == nil || st.Spec.Provider.AzureKV == nil || st.Spec.Provider.AzureKV.AuthType == nil {
		return nil, fmt.Errorf("%w: SecretProviderClass store %s has no Azure configuration", provider.ErrInvalidConfig, st.Name)
	}
	return st.Spec.Provider.AzureKV, nil
}

// paramsOf reads back what azureSpec wrote.
func paramsOf(spec *esv1.AzureKVProvider, namespace string) azurekv.AzureParams {
	p := azurekv.AzureParams{
		VaultURL: deref(spec.VaultURL),
		TenantID: deref(spec.TenantID),
		ClientID: deref(spec.IdentityID),
		Cloud:    spec.EnvironmentType,
	}
	if *spec.AuthType == esv1.AzureManagedIdentity {
		p.UseManagedIdentity = true
		return p
	}
	if spec.ServiceAccountRef != nil {
		p.ServiceAccountNamespace, p.ServiceAccountName = namespace, spec.ServiceAccountRef.Name
	}
	return p
}

// spcClient reads objects with the Azure provider's semantics: object types
// as PEM, objectEncoding, objectVersionHistory (one version listing per
// object and sync), and the tls.crt / tls.key split.
type spcClient struct {
	vault vaultClient
}

var (
	_ provider.Client      = (*spcClient)(nil)
	_ provider.BatchGetter = (*spcClient)(nil)
)

func (c *spcClient) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	vals, errs := c.GetSecrets(ctx, []provider.Ref{ref})
	if err, ok := errs[ref]; ok {
		return provider.Value{}, err
	}
	if v, ok := vals[ref]; ok {
		return v, nil
	}
	return provider.Value{}, fmt.Errorf("%w: %s", provider.ErrNotFound, ref)
}

// GetSecrets fetches refs: objects read by version index share one version
// listing per object; the others are read one by one.
func (c *spcClient) GetSecrets(ctx context.Context, refs []provider.Ref) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	vals := map[provider.Ref]provider.Value{}
	errs := map[provider.Ref]error{}
	parsed := map[provider.Ref]objectRef{}
	history := map[string]int{} // vault key -> versions needed
	for _, r := range refs {
		o, err := parseRef(r)
		if err != nil {
			errs[r] = err
			continue
		}
		parsed[r] = o
		if o.Index >= 0 && o.Index+1 > history[o.vaultKey()] {
			history[o.vaultKey()] = o.Index + 1
		}
	}
	versions := map[string][]provider.Value{}
	versionErrs := map[string]error{}
	keys := make([]string, 0, len(history))
	for k := range history {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		versions[k], versionErrs[k] = c.vault.Versions(ctx, k, history[k])
	}
	for _, r := range refs {
		o, ok := parsed[r]
		if !ok {
			continue
		}
		var raw provider.Value
		if o.Index >= 0 {
			if err := versionErrs[o.vaultKey()]; err != nil {
				errs[r] = err
				continue
			}
			vs := versions[o.vaultKey()]
			if o.Index >= len(vs) {
				errs[r] = fmt.Errorf("%w: %s has %d enabled version(s)", provider.ErrNotFound, o.describe(), len(vs))
				continue
			}
			raw = vs[o.Index]
		} else {
			v, err := c.vault.GetSecret(ctx, provider.Ref{Key: o.vaultKey(), Version: o.Version})
			if err != nil {
				errs[r] = err
				continue
			}
			raw = v
		}
		b, err := content(o, raw.Data)
		if err != nil {
			errs[r] = err
			continue
		}
		vals[r] = provider.Value{Data: b, Version: raw.Version}
	}
	return vals, errs
}

// Find is not part of SecretProviderClass semantics.
func (c *spcClient) Find(context.Context, provider.Find) (map[string][]byte, error) {
	return nil, fmt.Errorf("%w: a SecretProviderClass lists its objects", provider.ErrNotSupported)
}

func (c *spcClient) Validate(ctx context.Context) error { return c.vault.Validate(ctx) }
func (c *spcClient) Close(ctx context.Context) error    { return c.vault.Close(ctx) }

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

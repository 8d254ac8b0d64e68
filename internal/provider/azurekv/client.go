package azurekv

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/keyferry/keyferry/internal/provider"
)

// Object types of a remote key's prefix, as ESO spells them.
const (
	objectSecret = "secret"
	objectCert   = "cert"
	objectKey    = "key"
)

// Client reads one vault. It is safe for concurrent use.
type Client struct {
	secrets *azsecrets.Client
	certs   *azcertificates.Client
	keys    *azkeys.Client
	cred    azcore.TokenCredential
	// scope is the token scope Validate checks, such as
	// https://vault.azure.net/.default.
	scope string
}

var (
	_ provider.Client = (*Client)(nil)
	_ provider.Lister = (*Client)(nil)
)

// newClient builds the SDK clients of cfg, sharing one credential (and so
// one token cache).
func (p *Provider) newClient(cfg clientConfig) (*Client, error) {
	cred, err := p.credential(cfg)
	if err != nil {
		return nil, err
	}
	co := azcore.ClientOptions{Transport: p.opts.Transport, Retry: retryOptions()}
	verify := p.opts.DisableChallengeResourceVerification
	c := &Client{cred: cred}
	if cfg.cloud.vaultResource != "" {
		c.scope = cfg.cloud.vaultResource + "/.default"
	}
	if c.secrets, err = azsecrets.NewClient(cfg.vaultURL, cred, &azsecrets.ClientOptions{ClientOptions: co, DisableChallengeResourceVerification: verify}); err != nil {
		return nil, fmt.Errorf("%w: creating the secrets client: %v", provider.ErrInvalidConfig, err)
	}
	if c.certs, err = azcertificates.NewClient(cfg.vaultURL, cred, &azcertificates.ClientOptions{ClientOptions: co, DisableChallengeResourceVerification: verify}); err != nil {
		return nil, fmt.Errorf("%w: creating the certificates client: %v", provider.ErrInvalidConfig, err)
	}
	if c.keys, err = azkeys.NewClient(cfg.vaultURL, cred, &azkeys.ClientOptions{ClientOptions: co, DisableChallengeResourceVerification: verify}); err != nil {
		return nil, fmt.Errorf("%w: creating the keys client: %v", provider.ErrInvalidConfig, err)
	}
	return c, nil
}

// parseKey splits a remote key into its object type and name: "name" and
// "secret/name" are secrets, "cert/name" certificates, "key/name" keys. As in
// ESO, anything after a second slash is ignored.
func parseKey(key string) (objectType, name string, err error) {
	parts := strings.Split(key, "/")
	objectType, name = objectSecret, parts[0]
	if len(parts) > 1 {
		objectType, name = parts[0], parts[1]
	}
	switch objectType {
	case objectSecret, objectCert, objectKey:
	default:
		return "", "", fmt.Errorf("%w: remote key %q: unknown Key Vault object type %q (use secret/, cert/ or key/)", provider.ErrNotSupported, key, objectType)
	}
	if name == "" {
		return "", "", fmt.Errorf("%w: remote key %q names no object", provider.ErrInvalidConfig, key)
	}
	return objectType, name, nil
}

func describe(objectType, name, version string) string {
	noun := map[string]string{objectSecret: "secret", objectCert: "certificate", objectKey: "key"}[objectType]
	if version == "" {
		return fmt.Sprintf("%s %q", noun, name)
	}
	return fmt.Sprintf("%s %q version %q", noun, name, version)
}

// GetSecret returns a secret's value, a certificate's DER bytes (Key Vault's
// "cer") or a key's public JSON Web Key.
func (c *Client) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	objectType, name, err := parseKey(ref.Key)
	if err != nil {
		return provider.Value{}, err
	}
	if ref.Metadata {
		return c.metadata(ctx, objectType, name, ref.Version)
	}
	return c.get(ctx, objectType, name, ref.Version)
}

func (c *Client) get(ctx context.Context, objectType, name, version string) (provider.Value, error) {
	what := describe(objectType, name, version)
	switch objectType {
	case objectCert:
		resp, err := c.certs.GetCertificate(ctx, name, version, nil)
		if err != nil {
			return provider.Value{}, mapError(err, "fetching "+what)
		}
		if len(resp.CER) == 0 {
			return provider.Value{}, fmt.Errorf("fetching %s: %w: the certificate has no content (is it still pending?)", what, provider.ErrBadResponse)
		}
		v := provider.Value{Data: resp.CER}
		if resp.ID != nil {
			v.Version = resp.ID.Version()
		}
		return v, nil
	case objectKey:
		resp, err := c.keys.GetKey(ctx, name, version, nil)
		if err != nil {
			return provider.Value{}, mapError(err, "fetching "+what)
		}
		if resp.Key == nil {
			return provider.Value{}, fmt.Errorf("fetching %s: %w: the response holds no key", what, provider.ErrBadResponse)
		}
		data, err := json.Marshal(resp.Key)
		if err != nil {
			return provider.Value{}, fmt.Errorf("fetching %s: %w: encoding the key as JSON: %v", what, provider.ErrBadResponse, err)
		}
		v := provider.Value{Data: data}
		if resp.Key.KID != nil {
			v.Version = resp.Key.KID.Version()
		}
		return v, nil
	default:
		resp, err := c.secrets.GetSecret(ctx, name, version, nil)
		if err != nil {
			return provider.Value{}, mapError(err, "fetching "+what)
		}
		v := provider.Value{Data: []byte{}}
		if resp.Value != nil {
			v.Data = []byte(*resp.Value)
		}
		if resp.ID != nil {
			v.Version = resp.ID.Version()
		}
		return v, nil
	}
}

// ListSecrets lists the vault's enabled secrets whose name starts with
// list.Path and that carry every tag of list.Tags, read by name (GetSecret).
// Certificates and keys are not listed (as in ESO). Each page is one call
// that follows Key Vault's nextLink.
func (c *Client) ListSecrets(_ context.Context, list provider.List) provider.ListPager {
	return &secretPages{pager: c.secrets.NewListSecretPropertiesPager(nil), list: list}
}

// secretPages turns Key Vault's pages of secret properties into listed
// secrets.
type secretPages struct {
	pager interface {
		More() bool
		NextPage(context.Context) (azsecrets.ListSecretPropertiesResponse, error)
	}
	list provider.List
}

func (p *secretPages) More() bool { return p.pager.More() }

func (p *secretPages) NextPage(ctx context.Context) ([]provider.Listed, error) {
	page, err := p.pager.NextPage(ctx)
	if err != nil {
		return nil, mapError(err, "listing secrets")
	}
	var out []provider.Listed
	for _, item := range page.Value {
		if item == nil || item.ID == nil || item.Attributes == nil || item.Attributes.Enabled == nil || !*item.Attributes.Enabled {
			continue
		}
		name := item.ID.Name()
		if !strings.HasPrefix(name, p.list.Path) || !tagsMatch(item.Tags, p.list.Tags) {
			continue
		}
		out = append(out, provider.Listed{Name: name, Ref: provider.Ref{Key: name}})
	}
	return out, nil
}

func tagsMatch(have map[string]*string, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got == nil || *got != v {
			return false
		}
	}
	return true
}

// objectVersion is one version in a version listing.
type objectVersion struct {
	version          string
	created, updated time.Time
}

// Versions returns the n most recent enabled versions of an object (a
// remote key as GetSecret takes it), newest first by creation time, as the
// Azure Key Vault provider of the Secrets Store CSI driver orders them for
// objectVersionHistory. It returns fewer when fewer exist, and an error
// wrapping ErrNotFound when none does.
func (c *Client) Versions(ctx context.Context, key string, n int) ([]provider.Value, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: asked for %d versions of %q", provider.ErrInvalidConfig, n, key)
	}
	objectType, name, err := parseKey(key)
	if err != nil {
		return nil, err
	}
	versions, err := c.listVersions(ctx, objectType, name)
	if err != nil {
		return nil, mapError(err, "listing the versions of "+describe(objectType, name, ""))
	}
	if len(versions) == 0 {
		return nil, fmt.Errorf("listing the versions of %s: %w: no enabled version", describe(objectType, name, ""), provider.ErrNotFound)
	}
	slices.SortStableFunc(versions, func(a, b objectVersion) int {
		return cmp.Or(b.created.Compare(a.created), b.updated.Compare(a.updated), strings.Compare(b.version, a.version))
	})
	versions = versions[:min(n, len(versions))]
	out := make([]provider.Value, 0, len(versions))
	for _, v := range versions {
		val, err := c.get(ctx, objectType, name, v.version)
		if err != nil {
			return nil, err
		}
		out = append(out, val)
	}
	return out, nil
}

func (c *Client) listVersions(ctx context.Context, objectType, name string) ([]objectVersion, error) {
	var out []objectVersion
	add := func(version string, enabled *bool, created, updated *time.Time) {
		if version == "" || (enabled != nil && !*enabled) {
			return
		}
		v := objectVersion{version: version}
		if created != nil {
			v.created = *created
		}
		if updated != nil {
			v.updated = *updated
		}
		out = append(out, v)
	}
	switch objectType {
	case objectCert:
		pager := c.certs.NewListCertificatePropertiesVersionsPager(name, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, it := range page.Value {
				if it != nil && it.ID != nil && it.Attributes != nil {
					add(it.ID.Version(), it.Attributes.Enabled, it.Attributes.Created, it.Attributes.Updated)
				}
			}
		}
	case objectKey:
		pager := c.keys.NewListKeyPropertiesVersionsPager(name, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, it := range page.Value {
				if it != nil && it.KID != nil && it.Attributes != nil {
					add(it.KID.Version(), it.Attributes.Enabled, it.Attributes.Created, it.Attributes.Updated)
				}
			}
		}
	default:
		pager := c.secrets.NewListSecretPropertiesVersionsPager(name, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, it := range page.Value {
				if it != nil && it.ID != nil && it.Attributes != nil {
					add(it.ID.Version(), it.Attributes.Enabled, it.Attributes.Created, it.Attributes.Updated)
				}
			}
		}
	}
	return out, nil
}

// Validate checks that the credentials work by getting a token for Key
// Vault (which the client then reuses). It does not call the vault: the
// permissions ESO documents as sufficient (get) allow no cheap probe.
func (c *Client) Validate(ctx context.Context) error {
	if c.scope == "" {
		return nil
	}
	// EnableCAE as Key Vault's clients request tokens, so that this token is
	// the one they use (azidentity caches CAE and non-CAE tokens apart).
	if _, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}, EnableCAE: true}); err != nil {
		return mapError(err, "validating the store's credentials")
	}
	return nil
}

// Close does nothing: clients are shared through the provider's cache.
func (c *Client) Close(context.Context) error { return nil }

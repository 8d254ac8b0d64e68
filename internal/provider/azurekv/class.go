// This file serves SecretProviderClasses with provider azure (the Azure
// provider of the Secrets Store CSI driver), for the SecretSync front-end:
// the class's parameters (ClassParams), the files its objects provide
// (ClassObjects), and a client that reads those files with the Azure
// provider's semantics: object types as PEM, objectEncoding,
// objectVersionHistory (one version listing per object and sync), and the
// tls.crt / tls.key split of a kubernetes.io/tls Secret.

package azurekv

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// ClassName is the SecretProviderClass spec.provider the provider serves.
const ClassName = "azure"

// Parts of a file a kubernetes.io/tls Secret takes, named after the Secret
// keys that hold them.
const (
	partCert = provider.ClassPartCert // the certificates
	partKey  = provider.ClassPartKey  // the private key
)

var _ provider.ClassProvider = (*Provider)(nil)

// ClassParams are the parameters of a SecretProviderClass with provider
// azure that keyferry serves.
type ClassParams struct {
	// VaultName is the vault (keyvaultName), in Cloud's vault domain.
	VaultName string
	// Cloud is the vault's and the identity's cloud (cloudName).
	Cloud esv1.AzureEnvironmentType
	// TenantID of the identity (tenantID, or the older tenantId).
	TenantID string
	// ClientID of the identity: the workload identity's (clientID), or with
	// ManagedIdentity the user-assigned identity's (userAssignedIdentityID).
	ClientID string
	// ManagedIdentity authenticates as the operator pod's managed identity
	// (useVMManagedIdentity) instead of the SecretSync's ServiceAccount.
	ManagedIdentity bool
	// Objects are the Key Vault objects the class provides (objects).
	Objects []SPCObject
}

// ParseClassParams reads a SecretProviderClass's parameters as the Azure
// provider does: tenantID wins over the older tenantId; booleans parse like
// Go's strconv.ParseBool. Errors name the parameter, never a value of
// objects.
func ParseClassParams(params map[string]string) (ClassParams, error) {
	get := func(k string) string { return strings.TrimSpace(params[k]) }
	var c ClassParams
	c.VaultName = get("keyvaultName")
	if c.VaultName == "" {
		return c, fmt.Errorf("parameters.keyvaultName is required")
	}
	var err error
	if c.Cloud, err = CloudFromName(get("cloudName")); err != nil {
		return c, fmt.Errorf("parameters.cloudName: %v", err)
	}
	if _, err := VaultURLFromName(c.VaultName, c.Cloud); err != nil {
		return c, fmt.Errorf("parameters.keyvaultName: %v", err)
	}
	if get("cloudEnvFileName") != "" {
		return c, fmt.Errorf("parameters.cloudEnvFileName is not supported by keyferry (it names a file on the node)")
	}
	c.TenantID = get("tenantID")
	if c.TenantID == "" {
		c.TenantID = get("tenantId")
	}
	podIdentity, err := parseBool(get("usePodIdentity"))
	if err != nil {
		return c, fmt.Errorf("parameters.usePodIdentity: %v", err)
	}
	if podIdentity {
		return c, fmt.Errorf("parameters.usePodIdentity: AAD pod identity is not supported; use workload identity (clientID and the SecretSync's serviceAccountName)")
	}
	if c.ManagedIdentity, err = parseBool(get("useVMManagedIdentity")); err != nil {
		return c, fmt.Errorf("parameters.useVMManagedIdentity: %v", err)
	}
	if c.ManagedIdentity {
		c.ClientID = get("userAssignedIdentityID")
	} else {
		c.ClientID = get("clientID")
	}
	if c.Objects, err = ParseClassObjects(params["objects"]); err != nil {
		return c, err
	}
	return c, nil
}

func parseBool(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", s)
	}
	return b, nil
}

// classFile is what one file of a class reads: an object, and which of its
// versions.
type classFile struct {
	obj SPCObject
	// index selects the index-th newest version (objectVersionHistory);
	// -1 reads obj.Version, or the latest.
	index int
}

// classFiles maps the file names the objects provide to what they read. As
// when the Azure provider writes them as files, a later object with the
// same file name replaces an earlier one.
func classFiles(objs []SPCObject) map[string]classFile {
	out := map[string]classFile{}
	for _, o := range objs {
		if o.VersionHistory <= 1 {
			out[o.FileName()] = classFile{obj: o, index: -1}
			continue
		}
		for i, f := range o.Files() {
			out[f] = classFile{obj: o, index: i}
		}
	}
	return out
}

// vaultKey is the remote key of the file's object as Client addresses it.
func (f classFile) vaultKey() string { return f.obj.Type + "/" + f.obj.Name }

// describe names the object for error messages.
func (f classFile) describe() string {
	s := f.obj.Type + " " + strconv.Quote(f.obj.Name)
	switch {
	case f.index == 0:
		s += " (newest version)"
	case f.index > 0:
		s += fmt.Sprintf(" (%d versions before the newest)", f.index)
	case f.obj.Version != "":
		s += " version " + strconv.Quote(f.obj.Version)
	}
	return s
}

// ClassObjects implements provider.ClassProvider: it checks the parameters
// (ParseClassParams) and returns the files the objects provide, sorted by
// name. A file's Ref is its name; its parts are "<file>/tls.crt" and
// "<file>/tls.key", which never name a file (file names hold no '/' except
// before a version index).
func (p *Provider) ClassObjects(params map[string]string) ([]provider.ClassObject, error) {
	cp, err := ParseClassParams(params)
	if err != nil {
		return nil, err
	}
	files := classFiles(cp.Objects)
	out := make([]provider.ClassObject, 0, len(files))
	for name := range files {
		out = append(out, provider.ClassObject{
			File:    name,
			Ref:     provider.Ref{Key: name},
			CertRef: provider.Ref{Key: name + "/" + partCert},
			KeyRef:  provider.Ref{Key: name + "/" + partKey},
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out, nil
}

// validateClass is ValidateSpec for a class store.
func validateClass(store provider.Store) error {
	if err := provider.CheckClassProvider(store, ClassName); err != nil {
		return err
	}
	_, err := ParseClassParams(store.Class.Parameters)
	return err
}

// newClassClient builds the client of a class store: the vault of the
// class's parameters, read as the class's ServiceAccount (workload
// identity) or as the operator's managed identity.
func (p *Provider) newClassClient(ctx context.Context, opts provider.Options) (provider.Client, error) {
	cls := opts.Store.Class
	cp, err := ParseClassParams(cls.Parameters)
	if err != nil {
		return nil, fmt.Errorf("%w: SecretProviderClass %s: %v", provider.ErrInvalidConfig, opts.Store.Name, err)
	}
	vaultURL := p.opts.VaultURL
	if vaultURL == nil {
		vaultURL = VaultURLFromName
	}
	u, err := vaultURL(cp.VaultName, cp.Cloud)
	if err != nil {
		return nil, fmt.Errorf("SecretProviderClass %s: parameters.keyvaultName: %w", opts.Store.Name, err)
	}
	params := AzureParams{VaultURL: u, TenantID: cp.TenantID, ClientID: cp.ClientID, Cloud: cp.Cloud}
	if cp.ManagedIdentity {
		params.UseManagedIdentity = true
	} else {
		params.ServiceAccountNamespace, params.ServiceAccountName = opts.Store.Namespace, cls.ServiceAccount
	}
	c, err := p.NewClientFor(ctx, params, opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to the vault of SecretProviderClass %s: %w", opts.Store.Name, err)
	}
	return &classClient{vault: c, files: classFiles(cp.Objects), class: opts.Store.Name}, nil
}

// classOperatorIdentities lists the operator identities a class uses:
// useVMManagedIdentity authenticates as the operator pod's managed identity.
// A class never authenticates as the operator's workload identity: it
// always names the SecretSync's ServiceAccount.
func classOperatorIdentities(store provider.Store) []provider.IdentityUse {
	cp, err := ParseClassParams(store.Class.Parameters)
	if err != nil || !cp.ManagedIdentity {
		return nil
	}
	return []provider.IdentityUse{{
		Identity: provider.IdentityAzure,
		Field:    "parameters.useVMManagedIdentity",
		Why:      "is true, so keyferry would authenticate as its own pod's managed identity",
	}}
}

// vaultReader is what classClient needs of a Key Vault client.
type vaultReader interface {
	GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error)
	Versions(ctx context.Context, key string, n int) ([]provider.Value, error)
	Validate(ctx context.Context) error
	Close(ctx context.Context) error
}

var _ vaultReader = (*Client)(nil)

// classClient reads the files of one class. It does not list
// (provider.Lister): a SecretProviderClass lists its objects.
type classClient struct {
	vault vaultReader
	files map[string]classFile
	// class names the SecretProviderClass in errors.
	class string
}

var (
	_ provider.Client      = (*classClient)(nil)
	_ provider.BatchGetter = (*classClient)(nil)
)

// lookup resolves a ref ClassObjects returned: a file, or a part of one.
func (c *classClient) lookup(r provider.Ref) (classFile, string, error) {
	if f, ok := c.files[r.Key]; ok {
		return f, "", nil
	}
	for _, part := range []string{partCert, partKey} {
		if name, ok := strings.CutSuffix(r.Key, "/"+part); ok {
			if f, ok := c.files[name]; ok {
				return f, part, nil
			}
		}
	}
	return classFile{}, "", fmt.Errorf("%w: %q is not an object of SecretProviderClass %s", provider.ErrInvalidConfig, r.Key, c.class)
}

func (c *classClient) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	return provider.GetFromBatch(ctx, c, ref)
}

// GetSecrets fetches refs: files read by version index share one version
// listing per object; the others are read one by one.
func (c *classClient) GetSecrets(ctx context.Context, refs []provider.Ref) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	type read struct {
		f    classFile
		part string
	}
	vals := map[provider.Ref]provider.Value{}
	errs := map[provider.Ref]error{}
	reads := map[provider.Ref]read{}
	history := map[string]int{} // vault key -> versions needed
	for _, r := range refs {
		f, part, err := c.lookup(r)
		if err != nil {
			errs[r] = err
			continue
		}
		reads[r] = read{f: f, part: part}
		if f.index >= 0 && f.index+1 > history[f.vaultKey()] {
			history[f.vaultKey()] = f.index + 1
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
		rd, ok := reads[r]
		if !ok {
			continue
		}
		f := rd.f
		var raw provider.Value
		if f.index >= 0 {
			if err := versionErrs[f.vaultKey()]; err != nil {
				errs[r] = err
				continue
			}
			vs := versions[f.vaultKey()]
			if f.index >= len(vs) {
				errs[r] = fmt.Errorf("%w: %s has %d enabled version(s)", provider.ErrNotFound, f.describe(), len(vs))
				continue
			}
			raw = vs[f.index]
		} else {
			v, err := c.vault.GetSecret(ctx, provider.Ref{Key: f.vaultKey(), Version: f.obj.Version})
			if err != nil {
				errs[r] = err
				continue
			}
			raw = v
		}
		b, err := content(f, rd.part, raw.Data)
		if err != nil {
			errs[r] = err
			continue
		}
		vals[r] = provider.Value{Data: b, Version: raw.Version}
	}
	return vals, errs
}

func (c *classClient) Validate(ctx context.Context) error { return c.vault.Validate(ctx) }
func (c *classClient) Close(ctx context.Context) error    { return c.vault.Close(ctx) }

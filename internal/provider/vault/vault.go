// Package vault is keyferry's provider for HashiCorp Vault and OpenBao KV
// secrets engines (v1 and v2), configured with ESO's
// spec.provider.vault fields.
//
// A client reads entries (a specific KV v2 version on request), lists
// folders recursively for dataFrom.find (name regexp, and on KV v2 tags
// matched against custom_metadata), and authenticates with a token from a
// Secret, AppRole, Kubernetes, JWT (from a Secret or a ServiceAccount
// token), TLS certificate, userpass or LDAP. Logged-in tokens are kept,
// renewed at two thirds of their lifetime (or replaced by a new login), and
// replaced when Vault refuses them. AWS IAM and GCP auth are not supported.
//
// Entries are structured: Value.Fields holds each field (strings as they
// are, other values JSON-encoded) and Value.Data the JSON of the whole entry,
// the same bytes ESO produces.
//
// It also serves SecretProviderClasses with provider vault for SecretSyncs
// (class.go): a store whose Class is set reads the API paths of the class's
// `objects` parameter, logged in as the SecretSync's ServiceAccount.
package vault

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	vaultapi "github.com/hashicorp/vault/api"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// requestTimeout bounds one request when the caller's context has no
// deadline.
const requestTimeout = 60 * time.Second

type vaultProvider struct{ opts Options }

// New returns the vault provider.
func New() provider.Provider { return vaultProvider{} }

// Options are settings of the provider that no SecretStore can reach.
type Options struct {
	// DialContext, when set, opens every connection to Vault in place of
	// the system dialer. Tests use it to send the server of a manifest (such
	// as http://my.vault.server:8200) to a local dev server, as DNS would.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TokenFile is the operator's own ServiceAccount token, which
	// auth.kubernetes without serviceAccountRef or secretRef sends (only a
	// ClusterSecretStore may); empty means the token mounted in the pod.
	TokenFile string
	// ClassAddress is the Vault address of SecretProviderClasses without
	// vaultAddress (the Vault CSI provider's -vault-addr); empty makes
	// vaultAddress required.
	ClassAddress string
}

// tokenFile is the operator's own ServiceAccount token file.
func (p vaultProvider) tokenFile() string {
	if p.opts.TokenFile != "" {
		return p.opts.TokenFile
	}
	return serviceAccountTokenFile
}

// NewWithOptions returns the vault provider with opts.
func NewWithOptions(opts Options) provider.Provider { return vaultProvider{opts: opts} }

// ValidateSpec checks the store's vault configuration without any I/O.
func (p vaultProvider) ValidateSpec(store provider.Store) error {
	if store.Class != nil {
		return p.validateClass(store)
	}
	_, err := specOf(store)
	return err
}

func specOf(store provider.Store) (*esv1.VaultProvider, error) {
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.Vault == nil {
		return nil, fmt.Errorf("%w: spec.provider.vault is not set", provider.ErrInvalidConfig)
	}
	v := store.Spec.Provider.Vault
	if err := validate(store, v); err != nil {
		return nil, err
	}
	return v, nil
}

func validate(store provider.Store, v *esv1.VaultProvider) error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{provider.ErrInvalidConfig}, args...)...)
	}
	u, err := url.Parse(v.Server)
	if v.Server == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("vault.server %q must be an http:// or https:// URL", v.Server)
	}
	switch v.Version {
	case "", esv1.VaultKVStoreV1, esv1.VaultKVStoreV2:
	default:
		return invalid("vault.version %q must be v1 or v2", v.Version)
	}
	if v.Path != nil && strings.Trim(*v.Path, "/") == "" {
		return invalid("vault.path must name a mount, such as secret")
	}
	if (v.TLS.CertSecretRef == nil) != (v.TLS.KeySecretRef == nil) {
		return invalid("vault.tls needs both certSecretRef and keySecretRef")
	}
	var saRefs map[string]*esv1.ServiceAccountSelector
	if a := v.Auth; a != nil {
		switch {
		case a.TokenSecretRef != nil:
			if err := needKey("auth.tokenSecretRef", *a.TokenSecretRef); err != nil {
				return err
			}
		case a.AppRole != nil:
			if a.AppRole.RoleID == "" && a.AppRole.RoleRef == nil {
				return invalid("auth.appRole needs roleId or roleRef")
			}
			if a.AppRole.RoleID == "" {
				if err := needKey("auth.appRole.roleRef", *a.AppRole.RoleRef); err != nil {
					return err
				}
			}
			if err := needKey("auth.appRole.secretRef", a.AppRole.SecretRef); err != nil {
				return err
			}
		case a.Kubernetes != nil:
			if a.Kubernetes.Role == "" {
				return invalid("auth.kubernetes.role is required")
			}
			saRefs = map[string]*esv1.ServiceAccountSelector{"auth.kubernetes.serviceAccountRef": a.Kubernetes.ServiceAccountRef}
		case a.Ldap != nil:
			if a.Ldap.Username == "" {
				return invalid("auth.ldap.username is required")
			}
			if err := needKey("auth.ldap.secretRef", a.Ldap.SecretRef); err != nil {
				return err
			}
		case a.UserPass != nil:
			if a.UserPass.Username == "" {
				return invalid("auth.userPass.username is required")
			}
			if err := needKey("auth.userPass.secretRef", a.UserPass.SecretRef); err != nil {
				return err
			}
		case a.Jwt != nil:
			switch {
			case a.Jwt.SecretRef != nil:
				if err := needKey("auth.jwt.secretRef", *a.Jwt.SecretRef); err != nil {
					return err
				}
			case a.Jwt.KubernetesServiceAccountToken != nil:
				saRefs = map[string]*esv1.ServiceAccountSelector{
					"auth.jwt.kubernetesServiceAccountToken.serviceAccountRef": &a.Jwt.KubernetesServiceAccountToken.ServiceAccountRef,
				}
			default:
				return invalid("auth.jwt needs secretRef or kubernetesServiceAccountToken")
			}
		case a.Cert != nil:
			if u.Scheme != "https" {
				return invalid("auth.cert needs an https:// vault.server")
			}
			hasOwn := a.Cert.ClientCert.Name != "" || a.Cert.SecretRef.Name != ""
			if hasOwn && (a.Cert.ClientCert.Name == "" || a.Cert.SecretRef.Name == "") {
				return invalid("auth.cert needs both clientCert and secretRef")
			}
			if !hasOwn && v.TLS.CertSecretRef == nil {
				return invalid("auth.cert needs clientCert and secretRef, or tls.certSecretRef and tls.keySecretRef")
			}
		case a.Iam != nil:
			return errIAM
		case a.GCP != nil:
			return errGCP
		}
	}
	for field, ref := range saRefs {
		if ref != nil && ref.Name == "" {
			return invalid("%s.name is required", field)
		}
	}
	if v.CAProvider != nil {
		if v.CAProvider.Type != esv1.CAProviderTypeSecret && v.CAProvider.Type != esv1.CAProviderTypeConfigMap {
			return invalid("caProvider.type %q must be Secret or ConfigMap", v.CAProvider.Type)
		}
	}
	// The one rule of every provider: a SecretStore references only its
	// own namespace.
	return provider.ReferencesStayInNamespace(store)
}

func needKey(field string, ref esv1.SecretKeySelector) error {
	if ref.Name == "" || ref.Key == "" {
		return fmt.Errorf("%w: %s needs name and key", provider.ErrInvalidConfig, field)
	}
	return nil
}

// NewClient builds a client. It reads TLS material; it logs in on first use.
func (p vaultProvider) NewClient(ctx context.Context, opts provider.Options) (provider.Client, error) {
	if opts.Store.Class != nil {
		return p.newClassClient(ctx, opts)
	}
	spec, err := specOf(opts.Store)
	if err != nil {
		return nil, err
	}
	if err := transportAllowed(opts, spec.Server, authMethod(spec.Auth)); err != nil {
		return nil, err
	}
	tlsCfg, err := tlsConfig(ctx, opts, spec)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	if def, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = def.Clone()
	}
	tr.TLSClientConfig = tlsCfg
	if p.opts.DialContext != nil {
		tr.DialContext = p.opts.DialContext
	}
	hc := &http.Client{
		// A read whose connection dropped is repeated once at once; nothing
		// else is retried below the engine (see newAPIClient).
		Transport: provider.RetryDropped{Next: tr},
		// The Vault client follows redirects itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	ns := ""
	if spec.Namespace != nil {
		ns = *spec.Namespace
	}
	api, err := newAPIClient(spec, hc, ns)
	if err != nil {
		return nil, err
	}
	loginNS := ns
	if spec.Auth != nil && spec.Auth.Namespace != nil {
		loginNS = *spec.Auth.Namespace
	}
	loginAPI, err := newAPIClient(spec, hc, loginNS)
	if err != nil {
		return nil, err
	}
	method, login, static, err := authenticator{opts: opts, login: loginAPI, tokenFile: p.tokenFile()}.build(spec.Auth)
	if err != nil {
		return nil, err
	}
	log := opts.Log
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	mount := ""
	if spec.Path != nil {
		mount = strings.Trim(*spec.Path, "/")
	}
	source := ""
	if static {
		ref := spec.Auth.TokenSecretRef
		source = fmt.Sprintf("Secret %s/%s key %q (auth.tokenSecretRef)", opts.NamespaceFor(ref.Namespace), ref.Name, ref.Key)
	}
	return &client{
		api:   api,
		paths: kvPaths{mount: mount, v2: spec.Version != esv1.VaultKVStoreV1},
		session: &session{
			api:    api,
			method: method,
			login:  login,
			static: static,
			source: source,
			now:    time.Now,
			log:    log.WithValues("store", opts.Store.Name),
		},
	}, nil
}

// newAPIClient builds a Vault API client that ignores the process's VAULT_*
// environment: no token, the store's namespace and headers only.
func newAPIClient(spec *esv1.VaultProvider, hc *http.Client, namespace string) (*vaultapi.Client, error) {
	cfg := &vaultapi.Config{
		Address:    spec.Server,
		HttpClient: hc,
		Timeout:    requestTimeout,
		// Retries are the engine's job (with backoff across the store); the
		// client only retries the 412 that read-your-writes relies on.
		MaxRetries: 2,
		CheckRetry: func(ctx context.Context, resp *http.Response, err error) (bool, error) {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return err == nil && resp != nil && resp.StatusCode == http.StatusPreconditionFailed, nil
		},
		ReadYourWrites: spec.ReadYourWrites || spec.ForwardInconsistent,
	}
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: vault client: %v", provider.ErrInvalidConfig, err)
	}
	h := http.Header{}
	h.Set(vaultapi.RequestHeaderName, "true")
	for k, v := range spec.Headers {
		h.Set(k, v)
	}
	if spec.ForwardInconsistent {
		h.Set(vaultapi.HeaderInconsistent, "forward-active-node")
	}
	c.SetHeaders(h)
	c.ClearToken()
	if namespace != "" {
		c.SetNamespace(namespace)
	}
	return c, nil
}

// tlsConfig builds the TLS configuration: the CA pool of caBundle and
// caProvider (system roots without them), and the client certificate of
// auth.cert, else of tls.
func tlsConfig(ctx context.Context, opts provider.Options, spec *esv1.VaultProvider) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	pool, err := opts.CAPool(ctx, spec.CABundle, spec.CAProvider)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = pool
	var certRef, keyRef *esv1.SecretKeySelector
	if spec.TLS.CertSecretRef != nil && spec.TLS.KeySecretRef != nil {
		certRef, keyRef = spec.TLS.CertSecretRef, spec.TLS.KeySecretRef
	}
	if a := spec.Auth; authMethod(a) == "cert" && a.Cert.ClientCert.Name != "" && a.Cert.SecretRef.Name != "" {
		certRef, keyRef = &a.Cert.ClientCert, &a.Cert.SecretRef
	}
	if certRef == nil {
		return cfg, nil
	}
	certSel, keySel := *certRef, *keyRef
	if certSel.Key == "" {
		certSel.Key = "tls.crt"
	}
	if keySel.Key == "" {
		keySel.Key = "tls.key"
	}
	certPEM, err := opts.SecretKey(ctx, certSel)
	if err != nil {
		return nil, fmt.Errorf("reading the vault client certificate: %w", err)
	}
	keyPEM, err := opts.SecretKey(ctx, keySel)
	if err != nil {
		return nil, fmt.Errorf("reading the vault client key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The parse error never quotes the key.
		return nil, fmt.Errorf("%w: the vault client certificate in %s/%s and key in %s/%s do not form a valid pair", provider.ErrInvalidConfig, certSel.Name, certSel.Key, keySel.Name, keySel.Key)
	}
	cfg.Certificates = []tls.Certificate{pair}
	return cfg, nil
}

// client reads one store.
type client struct {
	api     *vaultapi.Client
	paths   kvPaths
	session *session
}

var (
	_ provider.Client = (*client)(nil)
	_ provider.Lister = (*client)(nil)
)

// GetSecret reads one entry; ref.Version selects a KV v2 version.
func (c *client) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	if ref.Metadata {
		return c.metadata(ctx, ref)
	}
	path := c.paths.data(ref.Key)
	var params url.Values
	if ref.Version != "" {
		if !c.paths.v2 {
			return provider.Value{}, fmt.Errorf("%w: version %q of %s: KV v1 has no versions", provider.ErrNotSupported, ref.Version, ref.Key)
		}
		if n, err := strconv.Atoi(ref.Version); err != nil || n < 0 {
			return provider.Value{}, fmt.Errorf("%w: version %q of %s is not a KV v2 version number", provider.ErrInvalidConfig, ref.Version, ref.Key)
		}
		params = url.Values{"version": {ref.Version}}
	}
	op := "reading " + path
	if ref.Version != "" {
		op += " version " + ref.Version
	}
	sec, err := c.read(ctx, op, path, params)
	if err != nil {
		return provider.Value{}, err
	}
	if !c.paths.v2 {
		if sec.Data == nil {
			return provider.Value{}, fmt.Errorf("%s: %w", op, provider.ErrNotFound)
		}
		return valueOf(sec.Data, "")
	}
	raw, ok := sec.Data["data"]
	if !ok {
		return provider.Value{}, fmt.Errorf("%s: %w: no data field; is the mount a KV v2 engine (version: v2)?", op, provider.ErrBadResponse)
	}
	if raw == nil {
		// A deleted or destroyed version.
		return provider.Value{}, fmt.Errorf("%s: %w (the version is deleted or destroyed)", op, provider.ErrNotFound)
	}
	data, ok := raw.(map[string]any)
	if !ok {
		return provider.Value{}, fmt.Errorf("%s: %w: the data field is not an object", op, provider.ErrBadResponse)
	}
	version := ""
	if md, ok := sec.Data["metadata"].(map[string]any); ok && md["version"] != nil {
		version = fmt.Sprint(md["version"])
	}
	return valueOf(data, version)
}

// ListSecrets lists the entries below list.Path (recursively), named by
// their path relative to the mount, and on KV v2 only those whose
// custom_metadata holds list.Tags. Values are read by name (GetSecret: the
// JSON of each entry). Each page is one call to Vault: one folder's LIST,
// or one entry's metadata read when tags are asked for, made only for
// names the find selects (list.Match).
func (c *client) ListSecrets(_ context.Context, list provider.List) provider.ListPager {
	if c.paths.mount == "" {
		return provider.FailedPages(fmt.Errorf("%w: dataFrom.find needs the mount in spec.provider.vault.path", provider.ErrInvalidConfig))
	}
	if len(list.Tags) > 0 && !c.paths.v2 {
		return provider.FailedPages(fmt.Errorf("%w: find by tags needs KV v2 (custom_metadata); KV v1 has no tags", provider.ErrNotSupported))
	}
	folder := strings.Trim(c.paths.relative(list.Path), "/")
	return &kvPages{c: c, list: list, todo: []kvStep{{path: folder, folder: true}}}
}

// maxListDepth bounds the recursion of a listing.
const maxListDepth = 64

// kvPages walks a listing depth first, one call to Vault a page.
type kvPages struct {
	c    *client
	list provider.List
	todo []kvStep // a stack
}

// kvStep is one call of a listing: a folder's LIST, or the metadata read of
// an entry whose tags are checked.
type kvStep struct {
	path   string // relative to the mount
	folder bool
	depth  int
}

func (p *kvPages) More() bool { return len(p.todo) > 0 }

func (p *kvPages) NextPage(ctx context.Context) ([]provider.Listed, error) {
	if len(p.todo) == 0 {
		return nil, nil
	}
	step := p.todo[len(p.todo)-1]
	p.todo = p.todo[:len(p.todo)-1]
	if !step.folder {
		ok, err := p.c.hasTags(ctx, step.path, p.list.Tags)
		if err != nil || !ok {
			return nil, err
		}
		return []provider.Listed{{Name: step.path, Ref: provider.Ref{Key: step.path}}}, nil
	}
	names, folders, err := p.c.list(ctx, step.path, step.depth)
	if err != nil {
		return nil, err
	}
	for _, f := range slices.Backward(folders) {
		p.todo = append(p.todo, kvStep{path: f, folder: true, depth: step.depth + 1})
	}
	var out []provider.Listed
	for _, name := range names {
		switch {
		case len(p.list.Tags) == 0:
			out = append(out, provider.Listed{Name: name, Ref: provider.Ref{Key: name}})
		case p.list.Match == nil || p.list.Match(name):
			p.todo = append(p.todo, kvStep{path: name})
		}
	}
	return out, nil
}

// list returns the entries and the sub-folders of folder (relative to the
// mount), with their paths relative to the mount.
func (c *client) list(ctx context.Context, folder string, depth int) (names, folders []string, err error) {
	if depth > maxListDepth {
		return nil, nil, fmt.Errorf("listing %s: folders nested deeper than %d", folder, maxListDepth)
	}
	path := c.paths.list(folder)
	sec, err := c.read(ctx, "listing "+path, path, url.Values{"list": {"true"}})
	if err != nil {
		if depth > 0 && errors.Is(err, provider.ErrNotFound) {
			// Emptied between the two listings.
			return nil, nil, nil
		}
		return nil, nil, err
	}
	keys, _ := sec.Data["keys"].([]any)
	for _, k := range keys {
		name, ok := k.(string)
		if !ok || name == "" {
			continue
		}
		full := name
		if folder != "" {
			full = folder + "/" + name
		}
		if strings.HasSuffix(name, "/") {
			folders = append(folders, strings.TrimSuffix(full, "/"))
			continue
		}
		names = append(names, full)
	}
	return names, folders, nil
}

// hasTags says whether the custom_metadata of a KV v2 entry holds tags.
func (c *client) hasTags(ctx context.Context, name string, tags map[string]string) (bool, error) {
	path := c.paths.metadata(name)
	sec, err := c.read(ctx, "reading "+path, path, nil)
	if errors.Is(err, provider.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	md, _ := sec.Data["custom_metadata"].(map[string]any)
	for k, want := range tags {
		got, ok := md[k]
		if !ok || fmt.Sprint(got) != want {
			return false, nil
		}
	}
	return true, nil
}

// Validate logs in (or checks the token from the Secret) and checks that
// the mount is a KV engine of the configured version.
func (c *client) Validate(ctx context.Context) error {
	if err := c.session.ensure(ctx); err != nil {
		return err
	}
	if c.session.static {
		if _, err := c.read(ctx, "looking up the vault token", "auth/token/lookup-self", nil); err != nil {
			if errors.Is(err, provider.ErrForbidden) {
				return fmt.Errorf("%w: the vault token in %s is invalid or expired", provider.ErrUnauthenticated, c.session.source)
			}
			return err
		}
	}
	return c.checkMount(ctx)
}

// checkMount reports a mount that is not a KV engine of the configured
// version. A token that may not read the mount's description is not an
// error.
func (c *client) checkMount(ctx context.Context) error {
	if c.paths.mount == "" {
		return nil
	}
	path := "sys/internal/ui/mounts/" + c.paths.mount
	sec, err := c.read(ctx, "reading "+path, path, nil)
	if err != nil {
		if errors.Is(err, provider.ErrUnreachable) || errors.Is(err, provider.ErrUnauthenticated) {
			return err
		}
		return nil
	}
	typ := fmt.Sprint(sec.Data["type"])
	if typ != "kv" && typ != "generic" {
		return fmt.Errorf("%w: vault mount %q is a %q engine, not kv", provider.ErrInvalidConfig, c.paths.mount, typ)
	}
	opts, _ := sec.Data["options"].(map[string]any)
	isV2 := opts != nil && fmt.Sprint(opts["version"]) == "2"
	if isV2 != c.paths.v2 {
		want, got := "v1", "v1"
		if c.paths.v2 {
			want = "v2"
		}
		if isV2 {
			got = "v2"
		}
		return fmt.Errorf("%w: vault mount %q is KV %s but the store says version: %s", provider.ErrInvalidConfig, c.paths.mount, got, want)
	}
	return nil
}

// Close revokes a token the client logged in for.
func (c *client) Close(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	return c.session.close(ctx)
}

// read GETs path with a valid token. When Vault refuses the token itself
// (not just the path), the session logs in again and the request is tried
// once more.
func (c *client) read(ctx context.Context, op, path string, params url.Values) (*vaultapi.Secret, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := c.session.ensure(ctx); err != nil {
		return nil, err
	}
	used := c.session.current()
	sec, err := c.get(ctx, op, path, params)
	if errors.Is(err, provider.ErrForbidden) && c.session.canRefresh() && !c.tokenValid(ctx) {
		if rerr := c.session.refresh(ctx, used); rerr != nil {
			return nil, rerr
		}
		sec, err = c.get(ctx, op, path, params)
	}
	return sec, err
}

func (c *client) get(ctx context.Context, op, path string, params url.Values) (*vaultapi.Secret, error) {
	resp, err := c.api.Logical().ReadRawWithDataWithContext(ctx, path, params)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, classify(op, resp, err, false)
	}
	sec, err := vaultapi.ParseSecret(resp.Body)
	if err != nil || sec == nil {
		return nil, fmt.Errorf("%s: %w: the answer is not a vault response", op, provider.ErrBadResponse)
	}
	return sec, nil
}

// tokenValid asks Vault whether the client's token is still accepted.
func (c *client) tokenValid(ctx context.Context) bool {
	_, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
	return !isStatus(err, http.StatusForbidden) && !isStatus(err, http.StatusUnauthorized)
}

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, requestTimeout)
}

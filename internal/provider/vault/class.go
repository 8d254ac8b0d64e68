// This file serves SecretProviderClasses with provider vault (the Vault
// provider of the Secrets Store CSI driver) for the SecretSync front-end:
// the class's parameters (ParseClassParams), the files its `objects`
// provide (ClassObjects), and a client that logs in with Kubernetes (or
// JWT) auth as the SecretSync's ServiceAccount and reads each object's
// Vault API path with the Vault provider's semantics (secretKey, encoding,
// method, secretArgs; one request per path and method for all the objects
// that share it).

package vault

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	vaultapi "github.com/hashicorp/vault/api"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// ClassName is the SecretProviderClass spec.provider the provider serves.
const ClassName = "vault"

// defaultClassAuthMount is the auth mount a class logs in at without
// vaultKubernetesMountPath (the Vault provider's -vault-mount default).
const defaultClassAuthMount = "kubernetes"

var _ provider.ClassProvider = vaultProvider{}

// ClassParams are the parameters of a SecretProviderClass with provider
// vault that keyferry serves.
type ClassParams struct {
	// Address of the Vault server (vaultAddress).
	Address string
	// Role is the auth role logged in as (roleName).
	Role string
	// AuthMount is the Kubernetes or JWT auth mount
	// (vaultKubernetesMountPath or vaultAuthMountPath; default kubernetes).
	AuthMount string
	// Namespace is the Vault Enterprise namespace (vaultNamespace).
	Namespace string
	// Audience of the ServiceAccount token sent to Vault (audience); empty
	// means the API server's own audience.
	Audience string
	// TLSServerName is the name the server's certificate is checked
	// against (vaultTLSServerName).
	TLSServerName string
	// Objects are the files the class provides (objects).
	Objects []SPCObject
}

// fileParams name files on the CSI provider's pod; keyferry reads no file
// of its own pod for a SecretProviderClass.
var fileParams = []string{"vaultCACertPath", "vaultCADirectory", "vaultTLSClientCertPath", "vaultTLSClientKeyPath"}

// ParseClassParams reads a SecretProviderClass's parameters as the Vault
// provider does; defaultAddress is used without vaultAddress (empty: it is
// required). Errors name the parameter.
func ParseClassParams(params map[string]string, defaultAddress string) (ClassParams, error) {
	get := func(k string) string { return strings.TrimSpace(params[k]) }
	c := ClassParams{
		Address:       get("vaultAddress"),
		Role:          get("roleName"),
		Namespace:     get("vaultNamespace"),
		Audience:      get("audience"),
		TLSServerName: get("vaultTLSServerName"),
	}
	if c.Address == "" {
		c.Address = defaultAddress
	}
	if c.Address == "" {
		return c, fmt.Errorf("parameters.vaultAddress is required (keyferry has no default Vault address)")
	}
	u, err := url.Parse(c.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("parameters.vaultAddress %q must be an http:// or https:// URL", c.Address)
	}
	if c.Role == "" {
		return c, fmt.Errorf("parameters.roleName is required")
	}
	k8sMount, k8sSet := params["vaultKubernetesMountPath"]
	authMount, authSet := params["vaultAuthMountPath"]
	switch {
	case k8sSet && authSet:
		return c, fmt.Errorf("parameters.vaultKubernetesMountPath and vaultAuthMountPath cannot both be set")
	case k8sSet:
		c.AuthMount = strings.Trim(strings.TrimSpace(k8sMount), "/")
	case authSet:
		c.AuthMount = strings.Trim(strings.TrimSpace(authMount), "/")
	}
	if c.AuthMount == "" {
		c.AuthMount = defaultClassAuthMount
	}
	for seg := range strings.SplitSeq(c.AuthMount, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "?#\\") {
			return c, fmt.Errorf("parameters.vaultKubernetesMountPath %q is not a Vault auth mount", c.AuthMount)
		}
	}
	for _, k := range fileParams {
		if get(k) != "" {
			return c, fmt.Errorf("parameters.%s is not supported by keyferry: it names a file on the CSI provider's pod; keyferry trusts the system's CAs for vaultAddress", k)
		}
	}
	if s, ok := params["vaultSkipTLSVerify"]; ok {
		skip, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return c, fmt.Errorf("parameters.vaultSkipTLSVerify %q is not true or false", s)
		}
		if skip && u.Scheme == "https" {
			return c, fmt.Errorf("parameters.vaultSkipTLSVerify: keyferry never sends a token to a server whose certificate it did not verify; remove it and have the operator trust the server's CA")
		}
	}
	if c.Objects, err = ParseClassObjects(params["objects"]); err != nil {
		return c, err
	}
	return c, nil
}

// ClassObjects implements provider.ClassProvider: it checks the parameters
// and returns the files the objects provide, sorted by name. A file's Ref
// is its objectName.
func (p vaultProvider) ClassObjects(params map[string]string) ([]provider.ClassObject, error) {
	cp, err := ParseClassParams(params, p.opts.ClassAddress)
	if err != nil {
		return nil, err
	}
	return provider.ClassFileObjects(maps.Keys(classFiles(cp.Objects))), nil
}

// classFiles maps each file name (objectName, unique) to its object.
func classFiles(objs []SPCObject) map[string]SPCObject {
	return provider.ClassFiles(objs, func(o SPCObject) string { return o.Name })
}

// validateClass is ValidateSpec for a class store.
func (p vaultProvider) validateClass(store provider.Store) error {
	if err := provider.CheckClassProvider(store, ClassName); err != nil {
		return err
	}
	_, err := ParseClassParams(store.Class.Parameters, p.opts.ClassAddress)
	return err
}

// classOperatorIdentities lists the operator identities a class uses. A
// class always logs in as the SecretSync's ServiceAccount, never with
// keyferry's own token; without an audience, though, that token would
// carry the API server's own audience and Vault could use it against this
// cluster (IdentityAPIToken).
func (p vaultProvider) classOperatorIdentities(store provider.Store) []provider.IdentityUse {
	cp, err := ParseClassParams(store.Class.Parameters, p.opts.ClassAddress)
	if err != nil || cp.Audience != "" {
		return nil
	}
	return []provider.IdentityUse{{
		Identity: provider.IdentityAPIToken,
		Field:    "parameters.audience",
		Why:      "is empty, so keyferry would send Vault a token of the SecretSync's ServiceAccount that this cluster's API server accepts; set audience (such as vault) and the Vault role's audience",
	}}
}

// newClassClient builds the client of a class store.
func (p vaultProvider) newClassClient(ctx context.Context, opts provider.Options) (provider.Client, error) {
	if err := p.validateClass(opts.Store); err != nil {
		return nil, fmt.Errorf("%w: SecretProviderClass %s: %v", provider.ErrInvalidConfig, opts.Store.Name, err)
	}
	cls := opts.Store.Class
	cp, _ := ParseClassParams(cls.Parameters, p.opts.ClassAddress)
	addr, _ := url.Parse(cp.Address) // ParseClassParams checked it
	if err := opts.CheckInsecureHTTP("SecretProviderClass "+opts.Store.Name+" parameters.vaultAddress", addr); err != nil {
		return nil, err
	}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	if def, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = def.Clone()
	}
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cp.TLSServerName}
	if p.opts.DialContext != nil {
		tr.DialContext = p.opts.DialContext
	}
	hc := &http.Client{
		Transport:     provider.RetryDropped{Next: tr},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	api, err := newAPIClient(&esv1.VaultProvider{Server: cp.Address}, hc, cp.Namespace)
	if err != nil {
		return nil, err
	}
	ns := opts.Store.Namespace
	var audiences []string
	if cp.Audience != "" {
		audiences = []string{cp.Audience}
	}
	login := authenticator{opts: opts, login: api}.kubernetes(&esv1.VaultKubernetesAuth{
		Path: cp.AuthMount,
		Role: cp.Role,
		ServiceAccountRef: &esv1.ServiceAccountSelector{
			Name: cls.ServiceAccount, Namespace: &ns, Audiences: audiences,
		},
	})
	log := opts.Log
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	kv := &client{api: api, session: &session{
		api: api, method: "kubernetes", login: login, now: time.Now,
		log: log.WithValues("secretProviderClass", opts.Store.Name),
	}}
	return &classClient{kv: kv, files: classFiles(cp.Objects), class: opts.Store.Name}, nil
}

// classClient reads the files of one class. It does not list: a
// SecretProviderClass lists its objects.
type classClient struct {
	// kv holds the Vault API client and the login session.
	kv    *client
	files map[string]SPCObject
	class string
}

var (
	_ provider.Client      = (*classClient)(nil)
	_ provider.BatchGetter = (*classClient)(nil)
)

func (c *classClient) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	return provider.GetFromBatch(ctx, c, ref)
}

// requestKey identifies one Vault request; objects that share it share
// one response per call (so a dynamic secret's username and password
// match).
func requestKey(o SPCObject) string {
	args, _ := json.Marshal(o.Args)
	return o.Method + " " + o.Path + "?" + o.Query.Encode() + " " + string(args)
}

// GetSecrets reads the files of refs, each distinct request once.
func (c *classClient) GetSecrets(ctx context.Context, refs []provider.Ref) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	vals := map[provider.Ref]provider.Value{}
	errs := map[provider.Ref]error{}
	type response struct {
		sec *vaultapi.Secret
		err error
	}
	done := map[string]response{}
	for _, r := range refs {
		o, err := provider.LookupClassFile(c.files, c.class, r)
		if err != nil {
			errs[r] = err
			continue
		}
		k := requestKey(o)
		resp, ok := done[k]
		if !ok {
			resp.sec, resp.err = c.request(ctx, o)
			done[k] = resp
		}
		if resp.err != nil {
			errs[r] = resp.err
			continue
		}
		b, err := objectContent(o, resp.sec)
		if err == nil {
			b, err = classPart(b, r)
		}
		if err != nil {
			errs[r] = err
			continue
		}
		vals[r] = provider.Value{Data: b, Version: kvVersion(resp.sec)}
	}
	return vals, errs
}

// request sends the object's request with a valid token; when Vault
// refuses the token itself, the session logs in again and the request is
// sent once more.
func (c *classClient) request(ctx context.Context, o SPCObject) (*vaultapi.Secret, error) {
	if o.Method == http.MethodGet {
		return c.kv.read(ctx, "reading "+o.Path, o.Path, o.Query)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	s := c.kv.session
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	op := "writing " + o.Path + " (method " + o.Method + ")"
	used := s.current()
	sec, err := c.kv.api.Logical().WriteWithContext(ctx, o.Path, o.Args)
	if err != nil && errors.Is(classify(op, nil, err, false), provider.ErrForbidden) && s.canRefresh() && !c.kv.tokenValid(ctx) {
		if rerr := s.refresh(ctx, used); rerr != nil {
			return nil, rerr
		}
		sec, err = c.kv.api.Logical().WriteWithContext(ctx, o.Path, o.Args)
	}
	if err != nil {
		return nil, classify(op, nil, err, false)
	}
	return sec, nil
}

// objectContent is what the Vault provider writes for an object: with
// secretKey, that key's value from the response's data (from data.data
// when the response is a KV v2 read), strings as they are and other values
// as JSON, decoded from encoding; without it, the whole response as JSON.
// The response's request_id, which differs on every request, is left
// empty, so an unchanged secret gives the same bytes. Errors describe the
// object, never its content.
func objectContent(o SPCObject, sec *vaultapi.Secret) ([]byte, error) {
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("%w: vault returned no data for %s", provider.ErrNotFound, o.Path)
	}
	if o.Key == "" {
		whole := *sec
		whole.RequestID = ""
		b, err := json.Marshal(whole)
		if err != nil {
			return nil, fmt.Errorf("%w: the response for %s cannot be written as JSON", provider.ErrBadResponse, o.Path)
		}
		return b, nil
	}
	data := sec.Data
	if inner, ok := sec.Data["data"].(map[string]any); ok {
		data = inner
	}
	v, ok := data[o.Key]
	if !ok {
		return nil, fmt.Errorf("%w: key %q does not exist at %s", provider.ErrNotFound, o.Key, o.Path)
	}
	var b []byte
	if s, ok := v.(string); ok {
		b = []byte(s)
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("%w: key %q at %s cannot be written as JSON", provider.ErrBadResponse, o.Key, o.Path)
		}
	}
	switch o.Encoding {
	case EncodingBase64:
		d, err := base64.StdEncoding.DecodeString(string(b))
		if err != nil {
			return nil, fmt.Errorf("%w: key %q at %s is not base64 (encoding: base64)", provider.ErrBadResponse, o.Key, o.Path)
		}
		return d, nil
	case EncodingHex:
		d, err := hex.DecodeString(string(b))
		if err != nil {
			return nil, fmt.Errorf("%w: key %q at %s is not hexadecimal (encoding: hex)", provider.ErrBadResponse, o.Key, o.Path)
		}
		return d, nil
	}
	return b, nil
}

// classPart returns the part of a file's content a ref asks for
// (provider.ClassPart).
func classPart(b []byte, r provider.Ref) ([]byte, error) {
	b, err := provider.ClassPart(b, r.Version)
	if err != nil {
		return nil, fmt.Errorf("object %q: %w", r.Key, err)
	}
	return b, nil
}

// kvVersion is the KV v2 version of a read, when the response has one.
func kvVersion(sec *vaultapi.Secret) string {
	if sec == nil {
		return ""
	}
	if md, ok := sec.Data["metadata"].(map[string]any); ok && md["version"] != nil {
		return fmt.Sprint(md["version"])
	}
	return ""
}

// Validate logs in.
func (c *classClient) Validate(ctx context.Context) error { return c.kv.session.ensure(ctx) }

// Close revokes the token the client logged in for.
func (c *classClient) Close(ctx context.Context) error { return c.kv.Close(ctx) }

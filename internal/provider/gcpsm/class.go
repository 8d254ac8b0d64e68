// This file serves SecretProviderClasses with provider gcp (the GCP
// provider of the Secrets Store CSI driver) for the SecretSync front-end:
// the class's parameters (ParseClassParams), the files its `secrets`
// provide (ClassObjects), and a client that reads them as the SecretSync's
// ServiceAccount through GKE workload identity (auth pod-adc, the default)
// or with keyferry's own application default credentials (provider-adc).

package gcpsm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"cloud.google.com/go/auth"
	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/api/option"

	"github.com/keyferry/keyferry/internal/provider"
)

// ClassName is the SecretProviderClass spec.provider the provider serves.
const ClassName = "gcp"

// gcpDelegatesAnnotation names the service accounts a GCP provider chains
// through before impersonating iam.gke.io/gcp-service-account.
const gcpDelegatesAnnotation = "iam.gke.io/gcp-service-account-delegates"

var _ provider.ClassProvider = (*Provider)(nil)

// ClassParams are the parameters of a SecretProviderClass with provider gcp
// that keyferry serves.
type ClassParams struct {
	// Auth is AuthPodADC or AuthProviderADC (auth; empty means pod-adc).
	Auth string
	// Secrets are the versions the class provides (secrets).
	Secrets []ClassSecret
}

// ParseClassParams reads a SecretProviderClass's parameters as the GCP
// provider does. Errors name the parameter.
func ParseClassParams(params map[string]string) (ClassParams, error) {
	var c ClassParams
	switch a := strings.TrimSpace(params["auth"]); a {
	case "", AuthPodADC:
		c.Auth = AuthPodADC
	case AuthProviderADC:
		c.Auth = AuthProviderADC
	default:
		return c, fmt.Errorf("parameters.auth %q is not %s or %s", a, AuthPodADC, AuthProviderADC)
	}
	var err error
	if c.Secrets, err = ParseClassSecrets(params["secrets"]); err != nil {
		return c, err
	}
	return c, nil
}

// classFiles maps each file name to the secret it reads; as when the CSI
// driver writes them, a later secret with the same file name replaces an
// earlier one.
func classFiles(secrets []ClassSecret) map[string]ClassSecret {
	return provider.ClassFiles(secrets, func(s ClassSecret) string { return s.File })
}

// ClassObjects implements provider.ClassProvider: it checks the parameters
// and returns the files the secrets provide, sorted by name. A file's Ref
// is its name.
func (p *Provider) ClassObjects(params map[string]string) ([]provider.ClassObject, error) {
	cp, err := ParseClassParams(params)
	if err != nil {
		return nil, err
	}
	files := classFiles(cp.Secrets)
	return provider.ClassFileObjects(maps.Keys(files)), nil
}

// validateClass is ValidateSpec for a class store.
func validateClass(store provider.Store) error {
	if err := provider.CheckClassProvider(store, ClassName); err != nil {
		return err
	}
	_, err := ParseClassParams(store.Class.Parameters)
	return err
}

// classOperatorIdentities lists the operator identities a class uses: auth
// provider-adc reads with keyferry's own application default credentials.
// pod-adc always authenticates as the SecretSync's ServiceAccount.
func classOperatorIdentities(store provider.Store) []provider.IdentityUse {
	cp, err := ParseClassParams(store.Class.Parameters)
	if err != nil || cp.Auth != AuthProviderADC {
		return nil
	}
	return []provider.IdentityUse{{
		Identity: provider.IdentityGCP,
		Field:    "parameters.auth",
		Why:      "is provider-adc, so keyferry would use its own pod's GCP credentials (application default credentials)",
	}}
}

// newClassClient builds the client of a class store: one Secret Manager
// connection per location the secrets name, authenticated as the class's
// ServiceAccount (pod-adc) or with the operator's default credentials
// (provider-adc).
func (p *Provider) newClassClient(ctx context.Context, opts provider.Options) (provider.Client, error) {
	if err := validateClass(opts.Store); err != nil {
		return nil, fmt.Errorf("%w: SecretProviderClass %s: %v", provider.ErrInvalidConfig, opts.Store.Name, err)
	}
	cp, _ := ParseClassParams(opts.Store.Class.Parameters)
	var creds *auth.Credentials
	if cp.Auth == AuthPodADC {
		wi, err := p.classWorkloadIdentity(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("SecretProviderClass %s: %w", opts.Store.Name, err)
		}
		if creds, err = wi.credentials(); err != nil {
			return nil, fmt.Errorf("SecretProviderClass %s: %w", opts.Store.Name, err)
		}
	}
	c := &classClient{files: classFiles(cp.Secrets), class: opts.Store.Name, creds: creds, readers: map[string]*Client{}}
	conns := map[string]*secretmanager.Client{}
	for _, s := range cp.Secrets {
		sm, ok := conns[s.Location]
		if !ok {
			copts := []option.ClientOption{option.WithUserAgent("keyferry"), option.WithLogger(discardLogger())}
			if s.Location != "" {
				copts = append(copts, option.WithEndpoint(regionalEndpoint(s.Location)))
			}
			if creds != nil {
				copts = append(copts, option.WithAuthCredentials(creds))
			}
			copts = append(copts, p.clientOptions...)
			var err error
			if sm, err = secretmanager.NewClient(ctx, copts...); err != nil {
				_ = c.Close(ctx)
				if creds == nil {
					return nil, fmt.Errorf("%w: SecretProviderClass %s: auth provider-adc, and no application default credentials usable: %w", provider.ErrInvalidConfig, opts.Store.Name, err)
				}
				return nil, fmt.Errorf("SecretProviderClass %s: creating the Secret Manager client: %w", opts.Store.Name, err)
			}
			conns[s.Location] = sm
			c.conns = append(c.conns, sm)
		}
		if _, ok := c.readers[s.Parent()]; !ok {
			c.readers[s.Parent()] = &Client{sm: sm, creds: creds, parent: s.Parent(), policy: PolicyLatestOrFail}
		}
	}
	return c, nil
}

// classWorkloadIdentity is GKE workload identity for the class's
// ServiceAccount, as the GCP provider's pod-adc does it: a token of the
// ServiceAccount whose audience is the cluster's pool, exchanged at STS,
// then, when the ServiceAccount carries iam.gke.io/gcp-service-account,
// used to impersonate that Google service account. The cluster comes from
// the GCE metadata server of the node keyferry runs on.
func (p *Provider) classWorkloadIdentity(ctx context.Context, opts provider.Options) (*workloadIdentity, error) {
	ns, name := opts.Store.Namespace, opts.Store.Class.ServiceAccount
	if opts.Tokens == nil {
		return nil, fmt.Errorf("%w: service account tokens are not available", provider.ErrInvalidConfig)
	}
	sa, err := provider.ClassServiceAccount(ctx, opts)
	if err != nil {
		return nil, err
	}
	if _, ok := sa.Annotations[gcpDelegatesAnnotation]; ok {
		return nil, fmt.Errorf("%w: service account %s/%s: annotation %s (impersonation through delegates) is not supported by keyferry; grant the Kubernetes ServiceAccount access directly or impersonate one service account",
			provider.ErrInvalidConfig, ns, name, gcpDelegatesAnnotation)
	}
	md := p.metadata
	if md == nil {
		md = newMetadataClient()
	}
	cluster, err := classCluster(ctx, md)
	if err != nil {
		return nil, err
	}
	cfg, err := newWorkloadIdentityConfig(cluster, sa.Annotations[gcpServiceAccountAnnotation], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: service account %s/%s: %w", provider.ErrInvalidConfig, ns, name, err)
	}
	return &workloadIdentity{
		config: cfg,
		tokens: &serviceAccountTokenSource{tokens: opts.Tokens, namespace: ns, name: name, audiences: cfg.TokenAudiences},
	}, nil
}

// classCluster reads the GKE cluster keyferry runs in (project, location,
// name) from the metadata server, as the GCP provider does when its
// environment does not name them.
func classCluster(ctx context.Context, md metadataSource) (gkeCluster, error) {
	var c gkeCluster
	var err error
	fail := func(what string, err error) error {
		return fmt.Errorf("%w: auth pod-adc (workload identity) needs the GKE cluster's %s, which the GCE metadata server did not provide (is keyferry running on GKE?): %w",
			provider.ErrInvalidConfig, what, err)
	}
	if c.Project, err = md.ProjectIDWithContext(ctx); err != nil {
		return c, fail("project", err)
	}
	if c.Location, err = md.InstanceAttributeValueWithContext(ctx, "cluster-location"); err != nil {
		return c, fail("location", err)
	}
	if c.Name, err = md.InstanceAttributeValueWithContext(ctx, "cluster-name"); err != nil {
		return c, fail("name", err)
	}
	if !projectPattern.MatchString(c.Project) || !locationPattern.MatchString(c.Location) || !locationPattern.MatchString(c.Name) {
		return c, fmt.Errorf("%w: the GCE metadata server's cluster project, location or name is not valid", provider.ErrInvalidConfig)
	}
	return c, nil
}

// classClient reads the files of one class. It does not list: a
// SecretProviderClass lists its secrets.
type classClient struct {
	files map[string]ClassSecret
	// readers read the versions of one parent (projects/P[/locations/L]).
	readers map[string]*Client
	conns   []*secretmanager.Client
	creds   *auth.Credentials
	class   string
}

var (
	_ provider.Client      = (*classClient)(nil)
	_ provider.BatchGetter = (*classClient)(nil)
)

func (c *classClient) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	return provider.GetFromBatch(ctx, c, ref)
}

// GetSecrets reads the files of refs, each version once per call.
func (c *classClient) GetSecrets(ctx context.Context, refs []provider.Ref) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	vals := map[provider.Ref]provider.Value{}
	errs := map[provider.Ref]error{}
	type result struct {
		v   provider.Value
		err error
	}
	read := map[string]result{} // by resource name
	for _, r := range refs {
		s, err := provider.LookupClassFile(c.files, c.class, r)
		if err != nil {
			errs[r] = err
			continue
		}
		res, done := read[s.ResourceName]
		if !done {
			res.v, res.err = c.readers[s.Parent()].GetSecret(ctx, provider.Ref{Key: s.Secret, Version: s.Version})
			read[s.ResourceName] = res
		}
		if res.err != nil {
			errs[r] = res.err
			continue
		}
		b, err := extract(s, res.v.Data)
		if err == nil {
			b, err = classPart(b, r)
		}
		if err != nil {
			errs[r] = err
			continue
		}
		vals[r] = provider.Value{Data: b, Version: res.v.Version}
	}
	return vals, errs
}

// extract applies extractJSONKey or extractYAMLKey: the payload is a JSON
// or YAML mapping and the file holds the string value of that top-level
// key. Errors describe the secret, never the payload.
func extract(s ClassSecret, payload []byte) ([]byte, error) {
	var key string
	var data map[string]any
	switch {
	case s.ExtractJSONKey != "":
		key = s.ExtractJSONKey
		if json.Unmarshal(payload, &data) != nil || data == nil {
			return nil, fmt.Errorf("%w: %s: the payload is not a JSON object (extractJSONKey)", provider.ErrBadResponse, s.ResourceName)
		}
	case s.ExtractYAMLKey != "":
		key = s.ExtractYAMLKey
		if err := unmarshalYAML(payload, &data); err != nil || data == nil {
			return nil, fmt.Errorf("%w: %s: the payload is not a YAML mapping (extractYAMLKey)", provider.ErrBadResponse, s.ResourceName)
		}
	default:
		return payload, nil
	}
	v, ok := data[key]
	if !ok {
		return nil, fmt.Errorf("%w: %s has no key %q", provider.ErrNotFound, s.ResourceName, key)
	}
	str, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("%w: %s: the value of key %q is not a string", provider.ErrBadResponse, s.ResourceName, key)
	}
	return []byte(str), nil
}

// classPart returns the part of a file's content a ref asks for
// (provider.ClassPart).
func classPart(b []byte, r provider.Ref) ([]byte, error) {
	b, err := provider.ClassPart(b, r.Version)
	if err != nil {
		return nil, fmt.Errorf("file %q: %w", r.Key, err)
	}
	return b, nil
}

// unmarshalYAML decodes a payload, never panicking on it.
func unmarshalYAML(b []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("not valid YAML")
		}
	}()
	return yaml.Unmarshal(b, v)
}

// Validate checks that the credentials yield a token; with the operator's
// default credentials it does nothing (see Client.Validate).
func (c *classClient) Validate(ctx context.Context) error {
	return (&Client{creds: c.creds}).Validate(ctx)
}

// Close closes every connection.
func (c *classClient) Close(context.Context) error {
	var errs []error
	for _, sm := range c.conns {
		if err := sm.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing the Secret Manager clients: %w", err)
	}
	return nil
}

// Package kubernetes is ESO's kubernetes provider: it reads Secrets from one
// namespace (spec.provider.kubernetes.remoteNamespace) of this cluster or of
// another one.
//
// A remote key is the name of a Secret. The value of a Secret is its data:
// Value.Fields holds each data key's exact bytes and Value.Data the JSON
// object of those fields as strings, which is what ESO returns when no
// property is given. Find lists the Secrets of the remote namespace, filtered
// by name (regular expression and path prefix) and by labels (find.tags).
//
// The cluster is reached with server.url (default kubernetes.default, https)
// and server.caBundle / server.caProvider, authenticated by exactly one of
// auth.token, auth.serviceAccount (a TokenRequest token, renewed before it
// expires) or auth.cert, or by a kubeconfig kept in a Secret (authRef). With
// neither auth nor authRef the provider reads this cluster with the
// operator's own identity; a SecretStore may then read only its own
// namespace, so that creating a SecretStore never grants more than the
// namespace already holds.
package kubernetes

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// DefaultRemoteNamespace is the namespace read when remoteNamespace is empty.
const DefaultRemoteNamespace = "default"

// DefaultServerURL is the server used when server.url is empty.
const DefaultServerURL = "kubernetes.default"

// inClusterHosts are the names by which a pod reaches its own API server;
// without auth, server.url may only name one of them.
var inClusterHosts = map[string]bool{
	"kubernetes":                           true,
	"kubernetes.default":                   true,
	"kubernetes.default.svc":               true,
	"kubernetes.default.svc.cluster.local": true,
}

// Provider builds clients that read Secrets from a Kubernetes API server.
type Provider struct {
	// local is the operator's own configuration, used when a store sets
	// neither auth nor authRef. It may be nil.
	local *rest.Config
}

// New returns the kubernetes provider. local is the operator's own client
// configuration, used for stores that set neither auth nor authRef; nil
// disables that case.
func New(local *rest.Config) provider.Provider { return &Provider{local: local} }

// ValidateSpec checks the store's kubernetes configuration without I/O.
func (p *Provider) ValidateSpec(store provider.Store) error {
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.Kubernetes == nil {
		return fmt.Errorf("%w: spec.provider.kubernetes is not set", provider.ErrInvalidConfig)
	}
	spec := store.Spec.Provider.Kubernetes
	ns := remoteNamespace(spec)
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return fmt.Errorf("%w: remoteNamespace %q: %s", provider.ErrInvalidConfig, ns, strings.Join(errs, "; "))
	}
	if err := validateCAProvider(store, spec.Server.CAProvider); err != nil {
		return err
	}
	switch {
	case spec.Auth != nil && spec.AuthRef != nil:
		return fmt.Errorf("%w: set either auth or authRef, not both", provider.ErrInvalidConfig)
	case spec.AuthRef != nil:
		return validateSecretKey("authRef", *spec.AuthRef)
	case spec.Auth != nil:
		if _, err := serverURL(spec.Server.URL); err != nil {
			return err
		}
		return validateAuth(spec.Auth)
	default:
		return validateOwnIdentity(store, spec, ns)
	}
}

// validateOwnIdentity checks a store that reads with the operator's own
// identity: only this cluster, and for a SecretStore only its own namespace.
func validateOwnIdentity(store provider.Store, spec *esv1.KubernetesProvider, ns string) error {
	if u := spec.Server.URL; u != "" {
		parsed, err := serverURL(u)
		if err != nil {
			return err
		}
		if !inClusterHosts[parsed.Hostname()] {
			return fmt.Errorf("%w: server.url %q needs auth or authRef; without them keyferry reads only its own cluster, with its own identity", provider.ErrInvalidConfig, u)
		}
	}
	if !store.IsCluster() && ns != store.Namespace {
		return fmt.Errorf("%w: without auth or authRef a SecretStore reads with keyferry's own identity, so it may read only its own namespace %q, not remoteNamespace %q; set auth (for example auth.serviceAccount) or use a ClusterSecretStore",
			provider.ErrInvalidConfig, store.Namespace, ns)
	}
	return nil
}

func validateAuth(a *esv1.KubernetesAuth) error {
	set := 0
	for _, b := range []bool{a.Cert != nil, a.Token != nil, a.ServiceAccount != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("%w: auth sets %d methods; set exactly one of cert, token and serviceAccount", provider.ErrInvalidConfig, set)
	}
	switch {
	case a.Cert != nil:
		if err := validateSecretKey("auth.cert.clientCert", a.Cert.ClientCert); err != nil {
			return err
		}
		return validateSecretKey("auth.cert.clientKey", a.Cert.ClientKey)
	case a.Token != nil:
		return validateSecretKey("auth.token.bearerToken", a.Token.BearerToken)
	default:
		if a.ServiceAccount.Name == "" {
			return fmt.Errorf("%w: auth.serviceAccount.name is empty", provider.ErrInvalidConfig)
		}
		return nil
	}
}

func validateSecretKey(field string, sel esv1.SecretKeySelector) error {
	if sel.Name == "" {
		return fmt.Errorf("%w: %s.name is empty", provider.ErrInvalidConfig, field)
	}
	if sel.Key == "" {
		return fmt.Errorf("%w: %s.key is empty", provider.ErrInvalidConfig, field)
	}
	return nil
}

// validateCAProvider applies ESO's rule: a ClusterSecretStore names the
// caProvider's namespace, a SecretStore uses its own.
func validateCAProvider(store provider.Store, ca *esv1.CAProvider) error {
	if ca == nil {
		return nil
	}
	if store.IsCluster() && ca.Namespace == nil {
		return fmt.Errorf("%w: server.caProvider.namespace must be set in a ClusterSecretStore", provider.ErrInvalidConfig)
	}
	// A SecretStore's references stay in its namespace: the one rule of
	// every provider.
	return provider.ReferencesStayInNamespace(store)
}

// remoteNamespace returns spec.remoteNamespace or its default.
func remoteNamespace(spec *esv1.KubernetesProvider) string {
	if spec.RemoteNamespace == "" {
		return DefaultRemoteNamespace
	}
	return spec.RemoteNamespace
}

// serverURL parses server.url, defaulting it to kubernetes.default and a
// missing scheme to https. Plain http is refused: credentials would travel in
// clear text.
func serverURL(raw string) (*url.URL, error) {
	s := raw
	if s == "" {
		s = DefaultServerURL
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: server.url %q is not a URL", provider.ErrInvalidConfig, raw)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("%w: server.url %q must use https", provider.ErrInvalidConfig, raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: server.url %q has no host", provider.ErrInvalidConfig, raw)
	}
	return u, nil
}

// NewClient builds a client for the store: it reads the credentials the
// store names, requests a ServiceAccount token if asked to, and builds one
// API client that the returned Client reuses for every call.
func (p *Provider) NewClient(ctx context.Context, opts provider.Options) (provider.Client, error) {
	if err := p.ValidateSpec(opts.Store); err != nil {
		return nil, err
	}
	spec := opts.Store.Spec.Provider.Kubernetes
	conn, err := p.connect(ctx, opts, spec)
	if err != nil {
		return nil, err
	}
	return newClient(conn, remoteNamespace(spec))
}

// TokensStayLocal implements provider.LocalTokenUser: the tokens of
// auth.serviceAccount go to server.url, which is this cluster when it names
// the in-cluster API server (or the operator's own API server address).
func (p *Provider) TokensStayLocal(store provider.Store) bool {
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.Kubernetes == nil {
		return false
	}
	u, err := serverURL(store.Spec.Provider.Kubernetes.Server.URL)
	if err != nil {
		return false
	}
	if inClusterHosts[u.Hostname()] {
		return true
	}
	if p.local == nil {
		return false
	}
	local, err := serverURL(p.local.Host)
	return err == nil && strings.EqualFold(local.Host, u.Host)
}

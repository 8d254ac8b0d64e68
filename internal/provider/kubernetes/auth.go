package kubernetes

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/transport"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

const (
	userAgent = "keyferry/kubernetes-provider"
	// tokenLifetime is how long a requested ServiceAccount token lives: the
	// shortest the TokenRequest API grants, as for every token keyferry
	// mints.
	tokenLifetime = provider.TokenExpiry
	// tokenRereadAfter is how long a token read from a Secret is used before
	// the Secret is read again (sooner if the API server refuses it).
	tokenRereadAfter = 10 * time.Minute
	// tokenRequestTimeout bounds one read or request of a token.
	tokenRequestTimeout = 30 * time.Second
)

// connection is how a client reaches and authenticates to an API server.
type connection struct {
	config *rest.Config
	// who names the server and the identity for error messages; it never
	// holds a credential.
	who string
	// stop ends what the connection started (token renewal); may be nil.
	stop context.CancelFunc
}

// connect builds the client configuration the store describes.
func (p *Provider) connect(ctx context.Context, opts provider.Options, spec *esv1.KubernetesProvider) (*connection, error) {
	switch {
	case spec.AuthRef != nil:
		return kubeconfigConnection(ctx, opts, *spec.AuthRef)
	case spec.Auth != nil:
		return authConnection(ctx, opts, spec)
	default:
		if p.local == nil {
			return nil, fmt.Errorf("%w: the store sets neither auth nor authRef, and keyferry has no configuration for its own cluster", provider.ErrInvalidConfig)
		}
		cfg := rest.CopyConfig(p.local)
		return &connection{config: cfg, who: "this cluster, as keyferry's own identity"}, nil
	}
}

// authConnection builds a configuration from server and auth.
func authConnection(ctx context.Context, opts provider.Options, spec *esv1.KubernetesProvider) (_ *connection, err error) {
	u, err := serverURL(spec.Server.URL)
	if err != nil {
		return nil, err
	}
	pool, err := opts.CAPool(ctx, spec.Server.CABundle, spec.Server.CAProvider)
	if err != nil {
		return nil, fmt.Errorf("reading server CA: %w", err)
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	cfg := &rest.Config{Host: u.String(), UserAgent: userAgent}
	// life bounds the token renewals of the client; Close ends it.
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			stop()
		}
	}()
	conn := &connection{config: cfg, stop: stop}

	a := spec.Auth
	switch {
	case a.Token != nil:
		sel := a.Token.BearerToken
		if cfg.WrapTransport, err = renewingBearer(&secretToken{life: life, opts: opts, sel: sel}); err != nil {
			return nil, err
		}
		conn.who = fmt.Sprintf("server %s, token from secret %s/%s", cfg.Host, opts.NamespaceFor(sel.Namespace), sel.Name)
	case a.ServiceAccount != nil:
		sel := *a.ServiceAccount
		ns := opts.NamespaceFor(sel.Namespace)
		if ns == "" {
			return nil, fmt.Errorf("%w: auth.serviceAccount names no namespace, and the object using this ClusterSecretStore is not known", provider.ErrInvalidConfig)
		}
		if opts.Tokens == nil {
			return nil, fmt.Errorf("%w: auth.serviceAccount: service account tokens are not available", provider.ErrInvalidConfig)
		}
		src := &serviceAccountToken{life: life, tokens: opts.Tokens, namespace: ns, name: sel.Name, audiences: sel.Audiences}
		if cfg.WrapTransport, err = renewingBearer(src); err != nil {
			return nil, err
		}
		conn.who = fmt.Sprintf("server %s, service account %s/%s", cfg.Host, ns, sel.Name)
	case a.Cert != nil:
		cert, certWhere, err := secretKey(ctx, opts, "auth.cert.clientCert", a.Cert.ClientCert)
		if err != nil {
			return nil, err
		}
		key, keyWhere, err := secretKey(ctx, opts, "auth.cert.clientKey", a.Cert.ClientKey)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			// The parse error is not repeated: it is about the key material.
			return nil, fmt.Errorf("%w: auth.cert: secret %s key %q and secret %s key %q are not a PEM certificate and its private key",
				provider.ErrInvalidConfig, certWhere, a.Cert.ClientCert.Key, keyWhere, a.Cert.ClientKey.Key)
		}
		tlsConfig.Certificates = []tls.Certificate{pair}
		conn.who = fmt.Sprintf("server %s, client certificate from secret %s", cfg.Host, certWhere)
	default:
		return nil, fmt.Errorf("%w: auth sets no method", provider.ErrInvalidConfig)
	}

	// The CA comes as a pool (opts.CAPool), which rest.Config cannot take,
	// so the TLS transport is built here; client-go still adds the bearer
	// token, its renewal and the user agent on top of it.
	cfg.Transport = utilnet.SetTransportDefaults(&http.Transport{
		TLSClientConfig:     tlsConfig,
		MaxIdleConnsPerHost: 25,
		IdleConnTimeout:     90 * time.Second,
	})
	return conn, nil
}

// secretKey reads one credential and says where it came from.
func secretKey(ctx context.Context, opts provider.Options, field string, sel esv1.SecretKeySelector) ([]byte, string, error) {
	ns := opts.NamespaceFor(sel.Namespace)
	if ns == "" {
		return nil, "", fmt.Errorf("%w: %s names no namespace, and the object using this ClusterSecretStore is not known", provider.ErrInvalidConfig, field)
	}
	b, err := opts.SecretKey(ctx, sel)
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", field, err)
	}
	return b, ns + "/" + sel.Name, nil
}

// renewingBearer returns a WrapTransport that sends the bearer tokens src
// gives. The first token is fetched now, so a bad reference fails here;
// later ones when the current one is due for renewal, or after the API
// server refused it (a rotated credential is then picked up by the next
// call).
func renewingBearer(src oauth2.TokenSource) (func(http.RoundTripper) http.RoundTripper, error) {
	cached := transport.NewCachedTokenSource(src)
	if _, err := cached.Token(); err != nil {
		return nil, err
	}
	return transport.ResettableTokenSourceWrapTransport(cached), nil
}

// secretToken reads a bearer token from a Secret (auth.token).
type secretToken struct {
	// life ends when the client is closed.
	life context.Context
	opts provider.Options
	sel  esv1.SecretKeySelector
}

// Token implements oauth2.TokenSource.
func (s *secretToken) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(s.life, tokenRequestTimeout)
	defer cancel()
	raw, where, err := secretKey(ctx, s.opts, "auth.token.bearerToken", s.sel)
	if err != nil {
		return nil, err
	}
	// Secrets made from files often end in a newline, which is not part of
	// the token.
	tok := strings.TrimSpace(string(raw))
	if tok == "" {
		return nil, fmt.Errorf("%w: auth.token.bearerToken: secret %s key %q is empty", provider.ErrInvalidConfig, where, s.sel.Key)
	}
	return &oauth2.Token{AccessToken: tok, TokenType: "Bearer", Expiry: time.Now().Add(tokenRereadAfter)}, nil
}

// serviceAccountToken requests ServiceAccount tokens through TokenRequest
// (auth.serviceAccount).
type serviceAccountToken struct {
	// life ends when the client is closed.
	life      context.Context
	tokens    provider.TokenRequester
	namespace string
	name      string
	audiences []string
}

// Token implements oauth2.TokenSource. The token it returns is due for
// renewal after four fifths of its life, as the kubelet renews projected
// tokens.
func (s *serviceAccountToken) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(s.life, tokenRequestTimeout)
	defer cancel()
	tok, expires, err := s.tokens.ServiceAccountToken(ctx, s.namespace, s.name, s.audiences, tokenLifetime)
	if err != nil {
		return nil, fmt.Errorf("requesting a token for service account %s/%s: %w", s.namespace, s.name, err)
	}
	return &oauth2.Token{AccessToken: tok, TokenType: "Bearer", Expiry: renewAt(time.Now(), expires)}, nil
}

// renewAt is when a token obtained at now and expiring at expires is due
// for renewal: after four fifths of its life. A token without an expiry is
// treated as living tokenLifetime; an expired one is renewed at once.
func renewAt(now, expires time.Time) time.Time {
	if expires.IsZero() {
		expires = now.Add(tokenLifetime)
	}
	if !expires.After(now) {
		return expires
	}
	return now.Add(expires.Sub(now) * 4 / 5)
}

// kubeconfigConnection builds a configuration from a kubeconfig kept in a
// Secret. The server and CA come from the kubeconfig; spec.server is not
// used.
func kubeconfigConnection(ctx context.Context, opts provider.Options, sel esv1.SecretKeySelector) (*connection, error) {
	raw, where, err := secretKey(ctx, opts, "authRef", sel)
	if err != nil {
		return nil, err
	}
	kc, err := clientcmd.Load(raw)
	if err != nil {
		// Parse errors can quote the document, so they are not repeated.
		return nil, fmt.Errorf("%w: authRef: secret %s key %q does not hold a kubeconfig", provider.ErrInvalidConfig, where, sel.Key)
	}
	if err := checkKubeconfig(kc); err != nil {
		return nil, fmt.Errorf("%w: authRef: kubeconfig in secret %s key %q: %v", provider.ErrInvalidConfig, where, sel.Key, err)
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*kc, kc.CurrentContext, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		// client-go's validation can quote fields such as proxy URLs, which
		// may hold passwords, so its message is not repeated.
		return nil, fmt.Errorf("%w: authRef: kubeconfig in secret %s key %q is not usable (check its context, cluster and user)", provider.ErrInvalidConfig, where, sel.Key)
	}
	cfg.UserAgent = userAgent
	return &connection{config: cfg, who: fmt.Sprintf("server %s, kubeconfig from secret %s", cfg.Host, where)}, nil
}

// checkKubeconfig accepts a kubeconfig whose current context is complete and
// self-contained. Anything that would make keyferry run a program (exec and
// auth-provider plugins) or read a file on its own pod (token, certificate
// and CA files, which would send keyferry's own credentials) is refused.
func checkKubeconfig(kc *clientcmdapi.Config) error {
	name := kc.CurrentContext
	if name == "" {
		return fmt.Errorf("it sets no current-context")
	}
	c, ok := kc.Contexts[name]
	if !ok || c == nil {
		return fmt.Errorf("current-context %q is not defined", name)
	}
	cl, ok := kc.Clusters[c.Cluster]
	if !ok || cl == nil {
		return fmt.Errorf("context %q names cluster %q, which is not defined", name, c.Cluster)
	}
	if cl.Server == "" {
		return fmt.Errorf("cluster %q has no server", c.Cluster)
	}
	if !strings.HasPrefix(cl.Server, "https://") {
		return fmt.Errorf("cluster %q: server must be an https:// URL", c.Cluster)
	}
	if cl.CertificateAuthority != "" {
		return fmt.Errorf("cluster %q reads certificate-authority from a file; use certificate-authority-data", c.Cluster)
	}
	ai, ok := kc.AuthInfos[c.AuthInfo]
	if !ok || ai == nil {
		return fmt.Errorf("context %q names user %q, which is not defined", name, c.AuthInfo)
	}
	switch {
	case ai.Exec != nil:
		return fmt.Errorf("user %q uses an exec credential plugin, which keyferry does not run; use token or client-certificate-data", c.AuthInfo)
	case ai.AuthProvider != nil:
		return fmt.Errorf("user %q uses an auth-provider plugin, which keyferry does not run; use token or client-certificate-data", c.AuthInfo)
	case ai.TokenFile != "":
		return fmt.Errorf("user %q reads tokenFile from a file; use token", c.AuthInfo)
	case ai.ClientCertificate != "" || ai.ClientKey != "":
		return fmt.Errorf("user %q reads client-certificate or client-key from a file; use client-certificate-data and client-key-data", c.AuthInfo)
	}
	return nil
}

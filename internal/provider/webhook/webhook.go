// Package webhook implements the webhook provider: values come from an HTTP
// service, with ESO's SecretStore fields and meanings (a templated URL,
// method, headers and body; a JSONPath selecting the value in a JSON
// response; a CA for the server's certificate) and two keyferry extensions:
// a client certificate kept in Secrets (clientTLS) and SPIFFE mTLS with an
// X.509 SVID from the Workload API or from files (spiffe).
//
// The provider returns the response body, or what result.jsonPath selects in
// it, as the value; the engine applies properties, decoding and templates.
// It also pushes values for PushSecrets, as ESO's webhook provider does
// (push.go).
// Neither the response, the request nor any credential ever appears in an
// error: errors name the remote key and the HTTP status.
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/tidwall/gjson"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

const (
	// DefaultTimeout bounds one request when the store sets no timeout.
	DefaultTimeout = 30 * time.Second
	// MaxResponseBytes is the largest response body read; a larger one is
	// refused (a Secret holds at most 1 MiB).
	MaxResponseBytes = 8 << 20
	// SecretTypeLabel must be set to SecretTypeLabelValue on every Secret
	// listed in `secrets`, as in ESO: it stops a store from sending Secrets
	// that were never meant for a webhook to an arbitrary URL.
	SecretTypeLabel      = "external-secrets.io/type"
	SecretTypeLabelValue = "webhook"
)

// Provider builds webhook clients.
type Provider struct {
	opts   Options
	parsed parseCache
}

// New returns the webhook provider.
func New() provider.Provider { return &Provider{} }

var _ provider.Provider = &Provider{}

func specOf(store provider.Store) (*esv1.WebhookProvider, error) {
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.Webhook == nil {
		return nil, fmt.Errorf("%w: spec.provider.webhook is not set", provider.ErrInvalidConfig)
	}
	return store.Spec.Provider.Webhook, nil
}

// ValidateSpec checks the webhook configuration without any I/O.
func (p *Provider) ValidateSpec(store provider.Store) error {
	spec, err := specOf(store)
	if err != nil {
		return err
	}
	_, err = p.validate(spec)
	return err
}

// validate checks spec and returns its parsed templates.
func (p *Provider) validate(spec *esv1.WebhookProvider) (*templates, error) {
	if strings.TrimSpace(spec.URL) == "" {
		return nil, fmt.Errorf("%w: url is required", provider.ErrInvalidConfig)
	}
	if spec.Method != "" && !validMethod(spec.Method) {
		return nil, fmt.Errorf("%w: method %q is not an HTTP method", provider.ErrInvalidConfig, spec.Method)
	}
	if spec.Timeout != nil && spec.Timeout.Duration <= 0 {
		return nil, fmt.Errorf("%w: timeout must be positive, got %s", provider.ErrInvalidConfig, spec.Timeout.Duration)
	}
	if spec.Auth != nil && spec.Auth.NTLM != nil {
		return nil, fmt.Errorf("%w: auth.ntlm is not supported by keyferry; send credentials in headers (for example Authorization: Basic ...) instead", provider.ErrNotSupported)
	}
	seen := map[string]bool{}
	for i, s := range spec.Secrets {
		switch {
		case s.Name == "":
			return nil, fmt.Errorf("%w: secrets[%d].name is required", provider.ErrInvalidConfig, i)
		case s.Name == "remoteRef":
			return nil, fmt.Errorf("%w: secrets[%d].name %q is reserved for the remote reference", provider.ErrInvalidConfig, i, s.Name)
		case seen[s.Name]:
			return nil, fmt.Errorf("%w: secrets[%d].name %q is listed twice", provider.ErrInvalidConfig, i, s.Name)
		case s.SecretRef.Name == "":
			return nil, fmt.Errorf("%w: secrets[%d].secretRef.name is required", provider.ErrInvalidConfig, i)
		}
		seen[s.Name] = true
	}
	mtls := spec.ClientTLS != nil || spec.SPIFFE != nil
	if mtls && strings.HasPrefix(strings.ToLower(strings.TrimSpace(spec.URL)), "http://") {
		return nil, fmt.Errorf("%w: clientTLS and spiffe need an https URL", provider.ErrInvalidConfig)
	}
	if spec.ClientTLS != nil {
		if spec.SPIFFE != nil {
			return nil, fmt.Errorf("%w: set clientTLS or spiffe, not both", provider.ErrInvalidConfig)
		}
		for field, sel := range map[string]esv1.SecretKeySelector{"certSecretRef": spec.ClientTLS.CertSecretRef, "keySecretRef": spec.ClientTLS.KeySecretRef} {
			if sel.Name == "" || sel.Key == "" {
				return nil, fmt.Errorf("%w: clientTLS.%s needs name and key", provider.ErrInvalidConfig, field)
			}
		}
	}
	if spec.SPIFFE != nil {
		if err := validateSPIFFE(spec); err != nil {
			return nil, err
		}
	}
	return p.parsed.templatesOf(spec)
}

func validateSPIFFE(spec *esv1.WebhookProvider) error {
	s := spec.SPIFFE
	if len(spec.CABundle) > 0 || spec.CAProvider != nil {
		return fmt.Errorf("%w: spiffe verifies the server with the SPIFFE trust bundle; remove caBundle and caProvider", provider.ErrInvalidConfig)
	}
	switch {
	case s.WorkloadAPISocket != "" && s.Files != nil:
		return fmt.Errorf("%w: set one of spiffe.workloadAPISocket and spiffe.files, not both", provider.ErrInvalidConfig)
	case s.WorkloadAPISocket == "" && s.Files == nil:
		return fmt.Errorf("%w: set one of spiffe.workloadAPISocket and spiffe.files", provider.ErrInvalidConfig)
	case s.WorkloadAPISocket != "":
		u, err := url.Parse(s.WorkloadAPISocket)
		if err != nil || (u.Scheme != "unix" && u.Scheme != "tcp") {
			return fmt.Errorf("%w: spiffe.workloadAPISocket %q must be a unix:///path or tcp://ip:port address", provider.ErrInvalidConfig, s.WorkloadAPISocket)
		}
	default:
		for field, path := range map[string]string{"certPath": s.Files.CertPath, "keyPath": s.Files.KeyPath, "bundlePath": s.Files.BundlePath} {
			if !strings.HasPrefix(path, "/") {
				return fmt.Errorf("%w: spiffe.files.%s must be an absolute path, got %q", provider.ErrInvalidConfig, field, path)
			}
		}
	}
	switch {
	case s.ServerID != "" && s.TrustDomain != "":
		return fmt.Errorf("%w: set one of spiffe.serverID and spiffe.trustDomain, not both", provider.ErrInvalidConfig)
	case s.ServerID == "" && s.TrustDomain == "":
		return fmt.Errorf("%w: set spiffe.serverID (the server's SPIFFE ID) or spiffe.trustDomain (any server in that trust domain)", provider.ErrInvalidConfig)
	case s.ServerID != "":
		if _, err := spiffeid.FromString(s.ServerID); err != nil {
			return fmt.Errorf("%w: spiffe.serverID %q is not a SPIFFE ID: %w", provider.ErrInvalidConfig, s.ServerID, err)
		}
	default:
		if _, err := spiffeid.TrustDomainFromString(s.TrustDomain); err != nil {
			return fmt.Errorf("%w: spiffe.trustDomain %q is not a trust domain: %w", provider.ErrInvalidConfig, s.TrustDomain, err)
		}
	}
	return nil
}

// validMethod reports whether m is an HTTP token.
func validMethod(m string) bool {
	return strings.IndexFunc(m, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r)
	}) < 0
}

// NewClient reads the Secrets the templates use and the TLS credentials, and
// builds the HTTP client. Credentials are read once, when the client is
// built.
func (p *Provider) NewClient(ctx context.Context, opts provider.Options) (provider.Client, error) {
	spec, err := specOf(opts.Store)
	if err != nil {
		return nil, err
	}
	tpls, err := p.validate(spec)
	if err != nil {
		return nil, err
	}
	timeout := DefaultTimeout
	if spec.Timeout != nil {
		timeout = spec.Timeout.Duration
	}
	secrets, err := loadTemplateSecrets(ctx, opts, spec.Secrets)
	if err != nil {
		return nil, err
	}
	setup, err := buildTLS(ctx, opts, p.mapSpec(spec), timeout)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if setup.config != nil {
		transport.TLSClientConfig = setup.config
	}
	p.setDial(transport)
	method, pushMethod := spec.Method, spec.Method
	if method == "" {
		method = http.MethodGet
	}
	if pushMethod == "" {
		pushMethod = http.MethodPost
	}
	c := &Client{
		method:        strings.ToUpper(method),
		pushMethod:    strings.ToUpper(pushMethod),
		checkPushHTTP: func(u *url.URL) error { return opts.CheckInsecureHTTP("url", u) },
		tpls:          tpls,
		namespace:     opts.Namespace,
		secrets:       secrets,
		redactor:      newRedactor(secrets),
		transport:     transport,
		http: &http.Client{
			Transport:     provider.RetryDropped{Next: transport, BodyLimit: MaxResponseBytes + 1},
			Timeout:       timeout,
			CheckRedirect: checkRedirect,
		},
		timeout:  timeout,
		closeTLS: setup.close,
		mapAddr:  p.opts.MapAddr,
		dialer:   p.dialer(),
	}
	if sendsCredentials(spec) {
		c.checkHTTP = func(u *url.URL) error { return opts.CheckInsecureHTTP("url", u) }
		// Refuse a plain http:// URL now when it renders without a key, so
		// the store's status says so; request checks every rendered URL.
		if u, ok := c.staticURL(); ok {
			if err := c.checkScheme(u); err != nil {
				_ = c.Close(ctx)
				return nil, err
			}
		}
	}
	return c, nil
}

// loadTemplateSecrets reads the data of the Secrets listed in `secrets`.
func loadTemplateSecrets(ctx context.Context, opts provider.Options, refs []esv1.WebhookSecret) (map[string]map[string]string, error) {
	out := make(map[string]map[string]string, len(refs))
	if len(refs) > 0 && opts.Kube == nil {
		return nil, fmt.Errorf("%w: secrets needs a Kubernetes client", provider.ErrInvalidConfig)
	}
	for _, ref := range refs {
		ns := opts.NamespaceFor(ref.SecretRef.Namespace)
		var s corev1.Secret
		if err := opts.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.SecretRef.Name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("%w: secret %s/%s (secrets %q) not found", provider.ErrInvalidConfig, ns, ref.SecretRef.Name, ref.Name)
			}
			if apierrors.IsForbidden(err) {
				return nil, fmt.Errorf("%w: reading secret %s/%s (secrets %q): %w", provider.ErrForbidden, ns, ref.SecretRef.Name, ref.Name, err)
			}
			return nil, fmt.Errorf("reading secret %s/%s (secrets %q): %w", ns, ref.SecretRef.Name, ref.Name, err)
		}
		if s.Labels[SecretTypeLabel] != SecretTypeLabelValue {
			return nil, fmt.Errorf("%w: secret %s/%s (secrets %q) must carry the label %s=%s before the webhook provider may use it",
				provider.ErrInvalidConfig, ns, ref.SecretRef.Name, ref.Name, SecretTypeLabel, SecretTypeLabelValue)
		}
		values := make(map[string]string, len(s.Data))
		for k, v := range s.Data {
			values[k] = string(v)
		}
		out[ref.Name] = values
	}
	return out, nil
}

// Client fetches values from one webhook store. It is safe for concurrent
// use.
type Client struct {
	method    string
	tpls      *templates
	namespace string
	secrets   map[string]map[string]string
	redactor  *redactor
	transport *http.Transport
	http      *http.Client
	timeout   time.Duration
	closeTLS  func() error
	mapAddr   func(string) string // test-only, see Options
	// dialer makes Validate's connections, with the same address rules as
	// the transport's.
	dialer *net.Dialer
	// checkHTTP, set when requests carry credentials, refuses a plain
	// http:// URL the operator does not allow.
	checkHTTP func(*url.URL) error
	// pushMethod is the method of a push (the store's method, else POST,
	// as ESO); checkPushHTTP refuses a plain http:// URL for every push
	// request, which always carries a secret value (push.go).
	pushMethod    string
	checkPushHTTP func(*url.URL) error
}

var _ provider.Client = &Client{}

// GetSecret calls the webhook for ref and returns the response body, or
// what result.jsonPath selects in it.
func (c *Client) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	if ref.Metadata {
		return provider.Value{}, provider.RefuseMetadata(ref, "a webhook returns values only")
	}
	req, jsonPath, err := c.request(ctx, ref)
	if err != nil {
		return provider.Value{}, fmt.Errorf("fetching %q: %w", ref.Key, err)
	}
	body, err := c.do(ctx, req, ref.Key)
	if err != nil {
		return provider.Value{}, err
	}
	if jsonPath == nil {
		return provider.Value{Data: body}, nil
	}
	if !gjson.ValidBytes(body) {
		return provider.Value{}, fmt.Errorf("%w: the webhook's response for %q is not JSON, but result.jsonPath %s needs JSON", provider.ErrBadResponse, ref.Key, c.redactor.redact(jsonPath.src))
	}
	data, ok := selectValue(jsonPath.eval(gjson.ParseBytes(body)))
	if !ok {
		return provider.Value{}, fmt.Errorf("%w: result.jsonPath %s matched nothing in the webhook's response for %q", provider.ErrNotFound, c.redactor.redact(jsonPath.src), ref.Key)
	}
	return provider.Value{Data: data}, nil
}

// request renders the templates for ref into a request and the JSONPath.
func (c *Client) request(ctx context.Context, ref provider.Ref) (*http.Request, *jsonPath, error) {
	raw := templateData(ref, c.namespace, c.secrets, false)
	req, err := c.newRequest(ctx, requestSpec{
		method:      c.method,
		escaped:     templateData(ref, c.namespace, c.secrets, true),
		raw:         raw,
		body:        c.tpls.body,
		redactor:    c.redactor,
		checkScheme: c.checkScheme,
	})
	if err != nil {
		return nil, nil, err
	}
	var jp *jsonPath
	if c.tpls.jsonPath != nil {
		p, err := execute(c.tpls.jsonPath, raw)
		if err != nil {
			return nil, nil, c.redactor.templateError("result.jsonPath", err)
		}
		if jp, err = parseJSONPath(string(p)); err != nil {
			return nil, nil, fmt.Errorf("%w: result.jsonPath: %w", provider.ErrInvalidConfig, c.redactor.wrap(err))
		}
	}
	return req, jp, nil
}

// requestSpec is what newRequest renders into a request.
type requestSpec struct {
	method string
	// escaped is the data of the url template (URL-escaped values), raw
	// that of the body and header templates.
	escaped, raw map[string]any
	// body is the body template; when nil, bodyBytes is the body (nil: no
	// body).
	body      *template.Template
	bodyBytes []byte
	// limit bounds each rendered template (0: no bound).
	limit int
	// redactor scrubs the messages of failures.
	redactor *redactor
	// checkScheme refuses a target the request may not go to.
	checkScheme func(*url.URL) error
}

// newRequest renders the url, body and header templates into a request.
// Errors never quote the rendered URL, body or headers.
func (c *Client) newRequest(ctx context.Context, s requestSpec) (*http.Request, error) {
	u, err := executeLimited(c.tpls.url, s.escaped, s.limit)
	if err != nil {
		return nil, s.redactor.templateError("url", err)
	}
	var body io.Reader = http.NoBody
	switch {
	case s.body != nil:
		b, err := executeLimited(s.body, s.raw, s.limit)
		if err != nil {
			return nil, s.redactor.templateError("body", err)
		}
		body = bytes.NewReader(b)
	case s.bodyBytes != nil:
		body = bytes.NewReader(s.bodyBytes)
	}
	target, err := url.Parse(strings.TrimSpace(string(u)))
	if err != nil || target.Host == "" || (target.Scheme != "http" && target.Scheme != "https") {
		// Never quote the URL: it may hold templated credentials.
		return nil, fmt.Errorf("%w: the url template does not give an absolute http or https URL", provider.ErrInvalidConfig)
	}
	if err := s.checkScheme(target); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, s.method, target.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%w: building the request: %w", provider.ErrInvalidConfig, s.redactor.wrap(err))
	}
	for _, h := range c.tpls.headers {
		v, err := executeLimited(h.tpl, s.raw, s.limit)
		if err != nil {
			return nil, s.redactor.templateError("headers."+h.name, err)
		}
		if strings.EqualFold(h.name, "Host") {
			req.Host = string(v)
			continue
		}
		req.Header.Add(h.name, string(v))
	}
	return req, nil
}

// do sends req and returns the body of a 2xx response, or an error wrapping
// the sentinel that matches the failure.
//
// A request whose connection dropped is sent again once by the client's
// transport (provider.RetryDropped) when its method is idempotent (GET,
// HEAD, OPTIONS); nothing else is retried here: throttling and failures go
// to the fetch layer's backoff.
func (c *Client) do(ctx context.Context, req *http.Request, key string) ([]byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, fmt.Sprintf("calling the webhook for %q", key), err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, statusError(resp, key, time.Now())
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, c.transportError(ctx, fmt.Sprintf("calling the webhook for %q", key), err)
	}
	if len(body) > MaxResponseBytes {
		return nil, fmt.Errorf("%w: the webhook's response for %q is larger than %d bytes", provider.ErrBadResponse, key, MaxResponseBytes)
	}
	return body, nil
}

// statusError maps a non-2xx response to an error. It names the status
// (Go's text for the code, not the server's reason phrase) and never the
// body.
func statusError(resp *http.Response, key string, now time.Time) error {
	status := fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	msg := fmt.Sprintf("the webhook answered %s for %q", status, key)
	switch code := resp.StatusCode; {
	case code == http.StatusNotFound:
		return fmt.Errorf("%w: %s", provider.ErrNotFound, msg)
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s", provider.ErrUnauthenticated, msg)
	case code == http.StatusForbidden:
		return fmt.Errorf("%w: %s", provider.ErrForbidden, msg)
	case code == http.StatusTooManyRequests:
		return &provider.ThrottledError{RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now), Err: errors.New(msg)}
	case code == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		return &provider.ThrottledError{RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now), Err: errors.New(msg)}
	case code >= 500:
		return fmt.Errorf("%w: %s", provider.ErrUnreachable, msg)
	default:
		return fmt.Errorf("%w: %s", provider.ErrBadResponse, msg)
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date. It
// returns 0 when the header is missing or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// transportError maps a failed round trip. The URL is dropped from the
// message (it may carry templated credentials) and known credentials are
// removed from what remains.
func (c *Client) transportError(ctx context.Context, doing string, err error) error {
	return transportError(ctx, c.redactor, doing, err)
}

// transportError is Client.transportError with the redactor r.
func transportError(ctx context.Context, r *redactor, doing string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	cause := r.wrap(err)
	var (
		spiffeErr   *spiffeAuthError
		linkLocal   *LinkLocalError
		redirectErr *RedirectError
	)
	switch {
	case errors.As(err, &linkLocal):
		return fmt.Errorf("%w: %s: %w", provider.ErrInvalidConfig, doing, linkLocal)
	case errors.As(err, &redirectErr):
		return fmt.Errorf("%w: %s: %w", provider.ErrBadResponse, doing, redirectErr)
	case errors.As(err, &spiffeErr):
		return fmt.Errorf("%w: %s: %w", provider.ErrUnauthenticated, doing, cause)
	case isServerCertError(err):
		return fmt.Errorf("%w: %s: TLS verification of the server's certificate failed: %w", provider.ErrUnauthenticated, doing, cause)
	case isClientCertRefused(err):
		return fmt.Errorf("%w: %s: the server refused the TLS client certificate: %w", provider.ErrUnauthenticated, doing, cause)
	case ctx.Err() != nil:
		return fmt.Errorf("%w: %s: %w", provider.ErrUnreachable, doing, ctx.Err())
	default:
		return fmt.Errorf("%w: %s: %w", provider.ErrUnreachable, doing, cause)
	}
}

// Validate checks that the webhook's host accepts connections and, for
// https, that the TLS handshake succeeds with the configured CA, client
// certificate or SPIFFE identity. It returns nil without checking when the
// URL's host comes from the remote reference or a proxy is configured.
func (c *Client) Validate(ctx context.Context) error {
	target, ok := c.staticURL()
	if !ok {
		return nil // the URL may only render with a real key
	}
	if err := c.checkScheme(target); err != nil {
		return err
	}
	if c.transport.Proxy != nil {
		if proxy, err := c.transport.Proxy(&http.Request{URL: target}); err != nil || proxy != nil {
			return nil //nolint:nilerr // a proxy stands between us and the host
		}
	}
	port := target.Port()
	if port == "" {
		port = "443"
		if target.Scheme == "http" {
			port = "80"
		}
	}
	addr := c.dialAddr(net.JoinHostPort(target.Hostname(), port))
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var (
		conn net.Conn
		err  error
	)
	if target.Scheme == "https" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.transport.TLSClientConfig != nil {
			cfg = c.transport.TLSClientConfig.Clone()
		}
		cfg.ServerName = target.Hostname()
		conn, err = (&tls.Dialer{NetDialer: c.dialer, Config: cfg}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = c.dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return c.transportError(ctx, "connecting to the webhook's host", err)
	}
	return conn.Close()
}

// Close releases idle connections and the SPIFFE Workload API stream.
func (c *Client) Close(context.Context) error {
	c.http.CloseIdleConnections()
	if c.closeTLS != nil {
		if err := c.closeTLS(); err != nil {
			return fmt.Errorf("closing the SPIFFE source: %w", err)
		}
	}
	return nil
}

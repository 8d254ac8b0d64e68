package azurekv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/provider"
)

// ACRUsername is the user name of every ACR refresh or access token for
// `docker login` (ESO's "username" key).
const ACRUsername = "00000000-0000-0000-0000-000000000000"

const (
	// acrTimeout bounds each call to a registry's token service.
	acrTimeout = 30 * time.Second
	// maxACRResponse bounds what is read of a registry's answer: a token
	// is a few kilobytes.
	maxACRResponse = 64 << 10
)

// armScopes are the scopes of an Entra ID token for Azure Resource
// Manager in each cloud, which a registry's /oauth2/exchange accepts (ESO
// asks for the same audiences).
var armScopes = map[esv1.AzureEnvironmentType]string{
	esv1.AzureEnvironmentPublicCloud:       "https://management.azure.com/.default",
	esv1.AzureEnvironmentUSGovernmentCloud: "https://management.usgovcloudapi.net/.default",
	esv1.AzureEnvironmentChinaCloud:        "https://management.chinacloudapi.cn/.default",
}

var _ provider.Generator = (*Provider)(nil)

// Generate implements provider.Generator for ESO's ACRAccessToken: it gets
// an Entra ID token for Azure Resource Manager with the credential of
// opts.Store's spec.provider.azurekv (the generator's auth, tenantId and
// environmentType), exchanges it at the registry's /oauth2/exchange for a
// refresh token and, when spec.scope is set, trades that at /oauth2/token
// for an access token of the scope. The values are ESO's: username
// ACRUsername and password the token.
func (p *Provider) Generate(ctx context.Context, opts provider.Options, req provider.GenerateRequest) (map[string][]byte, error) {
	g, ok := req.Spec.(*genv1alpha1.ACRAccessTokenSpec)
	if !ok {
		return nil, fmt.Errorf("%w: the azurekv provider makes no %s values", provider.ErrNotSupported, req.Kind)
	}
	registry, err := ParseRegistry(g.Registry)
	if err != nil {
		return nil, err
	}
	spec, err := generatorSpecOf(opts.Store)
	if err != nil {
		return nil, err
	}
	env := spec.EnvironmentType
	if env == "" {
		env = esv1.AzureEnvironmentPublicCloud
	}
	scope, ok := armScopes[env]
	if !ok {
		return nil, fmt.Errorf("%w: environmentType %q: no Azure Resource Manager audience is known for it (PublicCloud, USGovernmentCloud or ChinaCloud)", provider.ErrInvalidConfig, env)
	}
	cfg, err := p.resolve(ctx, spec, opts)
	if err != nil {
		return nil, err
	}
	cred, err := p.credential(cfg)
	if err != nil {
		return nil, err
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		return nil, mapError(err, "getting an Entra ID token for Azure Resource Manager")
	}
	// ESO sends spec.tenantId; keyferry the tenant the credential used
	// (the same unless workload identity read it from the ServiceAccount).
	tenant := cfg.tenantID
	if tenant == "" && spec.TenantID != nil {
		tenant = *spec.TenantID
	}
	token, err := p.acrCall(ctx, registry, "/oauth2/exchange", url.Values{
		"grant_type":   {"access_token"},
		"service":      {registry},
		"tenant":       {tenant},
		"access_token": {tok.Token},
	}, "refresh_token", tok.Token)
	if err != nil {
		return nil, err
	}
	if g.Scope != "" {
		if token, err = p.acrCall(ctx, registry, "/oauth2/token", url.Values{
			"grant_type":    {"refresh_token"},
			"service":       {registry},
			"scope":         {g.Scope},
			"refresh_token": {token},
		}, "access_token", token); err != nil {
			return nil, err
		}
	}
	return map[string][]byte{"username": []byte(ACRUsername), "password": []byte(token)}, nil
}

// generatorSpecOf checks the store a generator's spec became: the store's
// checks without vaultUrl, which a generator has no use for.
func generatorSpecOf(store provider.Store) (*esv1.AzureKVProvider, error) {
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.AzureKV == nil {
		return nil, fmt.Errorf("%w: spec.provider.azurekv is not set", provider.ErrInvalidConfig)
	}
	spec := store.Spec.Provider.AzureKV
	for _, check := range []specCheck{authTypeIsKnown, environmentIsSupported, customCloudHasAuthority, servicePrincipalHasCredentials, servicePrincipalHasTenant} {
		if msg := check(store, spec); msg != "" {
			return nil, fmt.Errorf("%w: spec.provider.azurekv: %s", provider.ErrInvalidConfig, msg)
		}
	}
	if err := provider.ReferencesStayInNamespace(store); err != nil {
		return nil, err
	}
	return spec, nil
}

// ParseRegistry checks a registry's host name (ACRAccessToken's
// spec.registry, such as example.azurecr.io, optionally with a port) and
// returns it in lower case. A URL, a path or anything but a DNS name is
// refused: the name is both the host called and the token's service.
func ParseRegistry(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: spec.registry %s: name the registry's host, such as example.azurecr.io", provider.ErrInvalidConfig, why)
	}
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return bad("is empty")
	case len(s) > 253+6:
		return bad("is longer than a host name")
	case strings.Contains(s, "://"):
		return bad(fmt.Sprintf("%q is a URL", s))
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return bad(fmt.Sprintf("%q has an invalid port", s))
		}
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" || len(host) > 253 {
		return bad(fmt.Sprintf("%q is not a host name", s))
	}
	for _, label := range strings.Split(host, ".") {
		if !isDNSLabel(label) {
			return bad(fmt.Sprintf("%q is not a host name", s))
		}
	}
	if port != "" {
		return host + ":" + port, nil
	}
	return host, nil
}

// isDNSLabel: 1-63 letters, digits and inner dashes (lower case).
func isDNSLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// acrCall posts form to a registry's token service and returns the member
// field of its answer. secret is the credential sent (it never appears in
// an error, even if the registry echoes it).
func (p *Provider) acrCall(ctx context.Context, registry, path string, form url.Values, field, secret string) (string, error) {
	what := "calling https://" + registry + path
	ctx, cancel := context.WithTimeout(ctx, acrTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+registry+path, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", provider.ErrInvalidConfig, what, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// A redirect is not followed: it would carry the token elsewhere.
	var tr policy.Transporter = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if p.opts.Transport != nil {
		tr = p.opts.Transport
	}
	resp, err := tr.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		return "", fmt.Errorf("%s: %w: %v", what, provider.ErrUnreachable, redact(err.Error(), secret))
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxACRResponse+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w: reading the answer: %v", what, provider.ErrUnreachable, redact(err.Error(), secret))
	}
	if len(body) > maxACRResponse {
		return "", fmt.Errorf("%s: %w: the answer is larger than %d KiB", what, provider.ErrBadResponse, maxACRResponse>>10)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %w", what, registryError(resp, body, secret))
	}
	var answer map[string]json.RawMessage
	if json.Unmarshal(body, &answer) != nil {
		return "", fmt.Errorf("%s: %w: the answer is not a JSON object", what, provider.ErrBadResponse)
	}
	var token string
	if raw, ok := answer[field]; !ok || json.Unmarshal(raw, &token) != nil || token == "" {
		return "", fmt.Errorf("%s: %w: the answer holds no %s", what, provider.ErrBadResponse, field)
	}
	return token, nil
}

// registryError describes a registry's error answer (Docker's
// {"errors":[{"code","message"}]}), with the sentinel of its status.
func registryError(resp *http.Response, body []byte, secret string) error {
	detail := fmt.Sprintf("the registry answered %d", resp.StatusCode)
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
		if c := oneLine(e.Errors[0].Code, 64); c != "" {
			detail += " " + c
		}
		if m := oneLine(redact(e.Errors[0].Message, secret), 300); m != "" {
			detail += ": " + m
		}
	}
	switch s := resp.StatusCode; {
	case s == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s (does the identity hold a role such as AcrPull on the registry?)", provider.ErrUnauthenticated, detail)
	case s == http.StatusForbidden:
		return fmt.Errorf("%w: %s", provider.ErrForbidden, detail)
	case s == http.StatusNotFound:
		return fmt.Errorf("%w: %s (is spec.registry an Azure Container Registry?)", provider.ErrInvalidConfig, detail)
	case s == http.StatusTooManyRequests:
		return &provider.ThrottledError{RetryAfter: retryAfter(resp.Header, time.Now()), Err: errors.New(detail)}
	case s >= 500:
		return fmt.Errorf("%w: %s", provider.ErrUnreachable, detail)
	default:
		return errors.New(detail)
	}
}

// redact removes secret from s.
func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

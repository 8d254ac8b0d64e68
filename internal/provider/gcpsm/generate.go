// This file makes the values of ESO's GCRAccessToken generator: an OAuth2
// access token for the registry, with the credentials a store's
// spec.provider.gcpsm.auth names.

package gcpsm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/generator"
	"github.com/keyferry/keyferry/internal/provider"
)

const (
	// GCRUsername is the user name that goes with an access token in
	// `docker login` (ESO's "oauth2accesstoken").
	GCRUsername = "oauth2accesstoken"
	// cloudPlatformScope is the scope of GCRAccessToken's tokens, as ESO
	// asks for it.
	cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"
	// defaultUniverseDomain is the only universe whose token endpoint
	// grants access tokens for a service account key; elsewhere the SDK
	// would make a self-signed JWT instead.
	defaultUniverseDomain = "googleapis.com"
	// tokenRequestTimeout bounds one token request (and its exchange).
	tokenRequestTimeout = 30 * time.Second
)

// The keys of a GCRAccessToken's values, as ESO's.
const (
	GCRKeyUsername = "username"
	GCRKeyPassword = "password"
	GCRKeyExpiry   = "expiry"
)

var _ provider.Generator = (*Provider)(nil)

// Generate implements provider.Generator for GCRAccessToken: an OAuth2
// access token with the cloud-platform scope for the credentials of
// opts.Store's spec.provider.gcpsm.auth (a service account key through the
// JWT-bearer grant at the key's token_uri, GKE workload identity through
// STS, or application default credentials for a store Admit lets use the
// operator's identity). The values are ESO's: username
// "oauth2accesstoken", password the token, expiry its expiry in Unix
// seconds. Errors never hold the token, the key or the endpoint's answer.
func (p *Provider) Generate(ctx context.Context, opts provider.Options, req provider.GenerateRequest) (map[string][]byte, error) {
	out, err := p.generate(ctx, opts, req)
	if err != nil {
		return nil, &generatorError{err: err}
	}
	return out, nil
}

// generatorError names a generator's fields as the generator does
// (spec.auth, not spec.provider.gcpsm.auth), keeping what err wraps.
type generatorError struct{ err error }

func (e *generatorError) Error() string {
	return strings.ReplaceAll(e.err.Error(), "spec.provider.gcpsm.", "spec.")
}
func (e *generatorError) Unwrap() error { return e.err }

func (p *Provider) generate(ctx context.Context, opts provider.Options, req provider.GenerateRequest) (map[string][]byte, error) {
	if _, ok := req.Spec.(*generator.GCRAccessTokenSpec); !ok || opts.Store.Class != nil {
		return nil, fmt.Errorf("%w: the gcpsm provider makes no %s values", provider.ErrNotSupported, req.Kind)
	}
	// A token for a service account key needs no project: ESO accepts a
	// GCRAccessToken without projectID then.
	if err := validateStoreSpec(opts.Store, false); err != nil {
		return nil, err
	}
	g := opts.Store.Spec.Provider.GCPSM
	ctx, cancel := context.WithTimeout(ctx, tokenRequestTimeout)
	defer cancel()
	creds, err := p.tokenCredentials(ctx, g, opts)
	if err != nil {
		return nil, err
	}
	tok, err := creds.Token(ctx)
	if err != nil {
		return nil, tokenError(ctx, err)
	}
	if tok == nil || tok.Value == "" {
		return nil, fmt.Errorf("%w: the token endpoint answered without an access token", provider.ErrBadResponse)
	}
	return map[string][]byte{
		GCRKeyUsername: []byte(GCRUsername),
		GCRKeyPassword: []byte(tok.Value),
		GCRKeyExpiry:   []byte(strconv.FormatInt(tok.Expiry.UTC().Unix(), 10)),
	}, nil
}

// tokenCredentials returns credentials that make access tokens with the
// cloud-platform scope, in ESO's order: secretRef, workloadIdentity, then
// application default credentials (Admit refused those already for a store
// that may not use the operator's identity).
func (p *Provider) tokenCredentials(ctx context.Context, g *esv1.GCPSMProvider, opts provider.Options) (*auth.Credentials, error) {
	switch {
	case g.Auth.SecretRef != nil:
		return p.serviceAccountTokenCredentials(ctx, g.Auth.SecretRef.SecretAccessKey, opts)
	case g.Auth.WorkloadIdentity != nil:
		// The exchange's scope is Secret Manager's default, cloud-platform.
		wi, err := newWorkloadIdentity(ctx, g.Auth.WorkloadIdentity, opts)
		if err != nil {
			return nil, err
		}
		return wi.credentials()
	}
	creds, err := credentials.DetectDefault(&credentials.DetectOptions{
		Scopes: []string{cloudPlatformScope},
		Client: p.httpClient(),
		Logger: discardLogger(),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: no auth in spec.provider.gcpsm.auth and no application default credentials usable: %w",
			provider.ErrInvalidConfig, err)
	}
	return creds, nil
}

// serviceAccountTokenCredentials makes access tokens for a service account
// key with the JWT-bearer grant (RFC 7523) at the key's token_uri, which
// must be an https URL: the request carries an assertion signed with the
// key. The SDK's logger discards everything (its debug log would hold the
// assertion and the answer).
func (p *Provider) serviceAccountTokenCredentials(ctx context.Context, sel esv1.SecretKeySelector, opts provider.Options) (*auth.Credentials, error) {
	key, file, where, err := readServiceAccountKey(ctx, sel, opts)
	if err != nil {
		return nil, err
	}
	if err := checkTokenURI(file.TokenURI, p.tokenClient != nil); err != nil {
		return nil, fmt.Errorf("%w: %s: token_uri %w", provider.ErrInvalidConfig, where, err)
	}
	if file.UniverseDomain != "" && file.UniverseDomain != defaultUniverseDomain {
		return nil, fmt.Errorf("%w: %s: universe_domain must be %s: other universes grant no access token for a key",
			provider.ErrInvalidConfig, where, defaultUniverseDomain)
	}
	creds, err := credentials.NewCredentialsFromJSON(credentials.ServiceAccount, key, &credentials.DetectOptions{
		Scopes: []string{cloudPlatformScope},
		Client: p.httpClient(),
		Logger: discardLogger(),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: the private_key cannot be used", provider.ErrInvalidConfig, where)
	}
	return creds, nil
}

// googleTokenURIs are the token endpoints Google writes into service
// account keys.
var googleTokenURIs = map[string]bool{
	"https://oauth2.googleapis.com/token":        true,
	"https://accounts.google.com/o/oauth2/token": true,
	"https://www.googleapis.com/oauth2/v4/token": true,
}

// checkTokenURI accepts an empty token_uri (the SDK uses Google's) or one
// of Google's token endpoints: the key is a tenant's, and its token_uri is
// where the operator sends a request, so any other URL would let a tenant
// make the operator POST to a host of its choosing. A provider built for a
// private token endpoint (NewWithTokenClient: tests) accepts anyAllowed:
// any absolute https URL without user information. The message never
// quotes the URL.
func checkTokenURI(s string, anyAllowed bool) error {
	if s == "" || googleTokenURIs[s] {
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "https" || u.Host == "":
		return errors.New("must be an https URL")
	case u.User != nil:
		return errors.New("must not hold user information")
	case !anyAllowed:
		return errors.New("is not Google's token endpoint (https://oauth2.googleapis.com/token)")
	}
	return nil
}

func (p *Provider) httpClient() *http.Client {
	if p.tokenClient != nil {
		return p.tokenClient
	}
	return &http.Client{Timeout: tokenRequestTimeout}
}

// oauthErrorCode is the form of an OAuth2 error code (RFC 6749 5.2); a
// field that does not match is not repeated.
var oauthErrorCode = regexp.MustCompile(`^[a-z_]+$`) // and at most 64 long

// tokenError describes a failed token request by what happened, never by
// the endpoint's answer (which could echo the assertion or hold a token)
// or the SDK's message: the status and OAuth2 error code of a refusal, the
// transport failure of an unreachable endpoint.
func tokenError(ctx context.Context, err error) error {
	var ae *auth.Error
	if errors.As(err, &ae) && ae.Response != nil {
		code := ae.Response.StatusCode
		msg := fmt.Sprintf("the token endpoint refused the request with HTTP %d", code)
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(ae.Body, &body) == nil && len(body.Error) <= 64 && oauthErrorCode.MatchString(body.Error) {
			msg += " (" + body.Error + ")"
		}
		switch {
		case code == http.StatusTooManyRequests:
			return &provider.ThrottledError{Err: errors.New(msg)}
		case code == http.StatusBadRequest || code == http.StatusUnauthorized:
			return fmt.Errorf("%w: %s", provider.ErrUnauthenticated, msg)
		case code == http.StatusForbidden:
			return fmt.Errorf("%w: %s", provider.ErrForbidden, msg)
		case code >= http.StatusInternalServerError:
			return fmt.Errorf("%w: %s", provider.ErrUnreachable, msg)
		}
		return fmt.Errorf("%w: %s", provider.ErrBadResponse, msg)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: requesting an access token: %w", provider.ErrUnreachable, ctx.Err())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		host := ""
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		return fmt.Errorf("%w: requesting an access token from %s: %w", provider.ErrUnreachable, host, ue.Err)
	}
	return fmt.Errorf("%w: requesting an access token failed (the answer was not an access token)", provider.ErrBadResponse)
}

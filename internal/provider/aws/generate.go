package aws

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/aws/ecrtoken"
)

// The generators this provider serves (provider.Generator), with ESO's
// output keys.
const (
	// ECRScopePublic asks ECR Public for the token; "" and "private" ask
	// the private registry of the credentials' account.
	ECRScopePublic  = "public"
	ECRScopePrivate = "private"
)

var _ provider.Generator = (*Provider)(nil)

// Generate implements provider.Generator for ECRAuthorizationToken (ECR
// GetAuthorizationToken: username, password, proxy_endpoint, expires_at)
// and STSSessionToken (STS GetSessionToken: access_key_id,
// secret_access_key, session_token, expiration), with the credentials of
// opts.Store's spec.provider.aws (auth and role, as for a store).
func (p *Provider) Generate(ctx context.Context, opts provider.Options, req provider.GenerateRequest) (map[string][]byte, error) {
	out, err := p.generate(ctx, opts, req)
	if err != nil {
		return nil, &generatorError{err: err}
	}
	return out, nil
}

// generatorError names a generator's fields as the generator does
// (spec.role, not spec.provider.aws.role), keeping what err wraps.
type generatorError struct{ err error }

func (e *generatorError) Error() string {
	return strings.ReplaceAll(e.err.Error(), "spec.provider.aws.", "spec.")
}
func (e *generatorError) Unwrap() error { return e.err }

func (p *Provider) generate(ctx context.Context, opts provider.Options, req provider.GenerateRequest) (map[string][]byte, error) {
	spec, err := generatorSpec(opts.Store)
	if err != nil {
		return nil, err
	}
	switch g := req.Spec.(type) {
	case *genv1alpha1.ECRAuthorizationTokenSpec:
		switch g.Scope {
		case "", ECRScopePrivate, ECRScopePublic:
		default:
			return nil, fmt.Errorf("%w: spec.scope %q is not private or public", provider.ErrInvalidConfig, g.Scope)
		}
		cfg, err := p.config(ctx, spec, opts)
		if err != nil {
			return nil, err
		}
		if g.Scope == ECRScopePublic {
			return p.ecrPublicToken(ctx, cfg)
		}
		return p.ecrToken(ctx, cfg)
	case *genv1alpha1.STSSessionTokenSpec:
		if spec.Auth.JWTAuth != nil {
			return nil, fmt.Errorf("%w: spec.auth.jwt cannot be used by STSSessionToken: GetSessionToken needs long-term credentials, use spec.auth.secretRef", provider.ErrInvalidConfig)
		}
		cfg, err := p.config(ctx, spec, opts)
		if err != nil {
			return nil, err
		}
		return p.sessionToken(ctx, cfg, g.RequestParameters)
	default:
		return nil, fmt.Errorf("%w: the aws provider makes no %s values", provider.ErrNotSupported, req.Kind)
	}
}

// generatorSpec is the aws spec of a generator's store. A generator names
// no service (it calls ECR or STS), so the store rules that concern the
// service do not apply; every other rule (region, auth) does.
func generatorSpec(store provider.Store) (*esv1.AWSProvider, error) {
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.AWS == nil {
		return nil, fmt.Errorf("%w: no aws configuration", provider.ErrInvalidConfig)
	}
	spec := store.Spec.Provider.AWS
	check := *spec
	check.Service = esv1.AWSServiceSecretsManager
	if err := validateSpec(&check); err != nil {
		return nil, err
	}
	return spec, nil
}

// ecrToken asks ECR for an authorization token of the credentials'
// registry.
func (p *Provider) ecrToken(ctx context.Context, cfg aws.Config) (map[string][]byte, error) {
	c := ecr.NewFromConfig(cfg, func(o *ecr.Options) {
		if p.Endpoints.ECR != "" {
			o.BaseEndpoint = aws.String(p.Endpoints.ECR)
		}
	})
	out, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return nil, fmt.Errorf("ECR GetAuthorizationToken: %w", classify(err))
	}
	if len(out.AuthorizationData) != 1 {
		return nil, fmt.Errorf("%w: ECR GetAuthorizationToken returned %d authorization tokens, want 1", provider.ErrBadResponse, len(out.AuthorizationData))
	}
	d := out.AuthorizationData[0]
	if d.ProxyEndpoint == nil {
		return nil, fmt.Errorf("%w: ECR GetAuthorizationToken returned no proxy endpoint", provider.ErrBadResponse)
	}
	m, err := dockerLogin("ECR", d.AuthorizationToken, d.ExpiresAt)
	if err != nil {
		return nil, err
	}
	m["proxy_endpoint"] = []byte(*d.ProxyEndpoint)
	return m, nil
}

// ecrPublicToken asks ECR Public for an authorization token (ESO's keys
// without proxy_endpoint, which ECR Public does not return).
func (p *Provider) ecrPublicToken(ctx context.Context, cfg aws.Config) (map[string][]byte, error) {
	c := ecrpublic.NewFromConfig(cfg, func(o *ecrpublic.Options) {
		if p.Endpoints.ECRPublic != "" {
			o.BaseEndpoint = aws.String(p.Endpoints.ECRPublic)
		}
	})
	out, err := c.GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
	if err != nil {
		return nil, fmt.Errorf("ECR Public GetAuthorizationToken: %w", classify(err))
	}
	if out.AuthorizationData == nil {
		return nil, fmt.Errorf("%w: ECR Public GetAuthorizationToken returned no authorization data", provider.ErrBadResponse)
	}
	return dockerLogin("ECR Public", out.AuthorizationData.AuthorizationToken, out.AuthorizationData.ExpiresAt)
}

// dockerLogin splits an ECR authorization token (base64 of
// "username:password") into ESO's username, password and expires_at (Unix
// seconds). Its errors never hold the token.
func dockerLogin(service string, token *string, expires *time.Time) (map[string][]byte, error) {
	if token == nil || expires == nil {
		return nil, fmt.Errorf("%w: %s returned no authorization token or no expiry", provider.ErrBadResponse, service)
	}
	user, password, err := ecrtoken.Parse(*token)
	if err != nil {
		return nil, fmt.Errorf("%w: %s authorization token: %v", provider.ErrBadResponse, service, err)
	}
	return map[string][]byte{
		"username":   []byte(user),
		"password":   []byte(password),
		"expires_at": []byte(strconv.FormatInt(expires.UTC().Unix(), 10)),
	}, nil
}

// sessionToken asks STS for session credentials of the configured
// credentials (GetSessionToken), with ESO's requestParameters.
func (p *Provider) sessionToken(ctx context.Context, cfg aws.Config, params *genv1alpha1.STSSessionTokenRequestParameters) (map[string][]byte, error) {
	in := &sts.GetSessionTokenInput{}
	if params != nil {
		in.DurationSeconds, in.SerialNumber, in.TokenCode = params.SessionDuration, params.SerialNumber, params.TokenCode
	}
	out, err := p.stsClient(cfg, cfg.Credentials).GetSessionToken(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("STS GetSessionToken: %w", classify(err))
	}
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil {
		return nil, fmt.Errorf("%w: STS GetSessionToken returned incomplete credentials", provider.ErrBadResponse)
	}
	return map[string][]byte{
		"access_key_id":     []byte(*c.AccessKeyId),
		"secret_access_key": []byte(*c.SecretAccessKey),
		"session_token":     []byte(*c.SessionToken),
		"expiration":        []byte(strconv.FormatInt(c.Expiration.Unix(), 10)),
	}, nil
}

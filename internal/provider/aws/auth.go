package aws

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

const (
	// roleARNAnnotation names the role a ServiceAccount's token is
	// exchanged for (IRSA); audienceAnnotation overrides its token's audience.
	roleARNAnnotation  = "eks.amazonaws.com/role-arn"
	audienceAnnotation = "eks.amazonaws.com/audience"
	// defaultAudience is the audience STS expects of a web identity token.
	defaultAudience = "sts.amazonaws.com"
	// roleSessionName names keyferry's STS sessions in CloudTrail.
	roleSessionName = "keyferry"

	sessionTagsNone   = "None"
	sessionTagsSimple = "Simple"
	sessionTagsCustom = "Custom"

	tagNamespace = "esoNamespace"
	tagStoreName = "esoStoreName"
	tagStoreKind = "esoStoreKind"
)

// isReservedSessionTag says whether sessionTagsPolicy sets the tag k, which
// customSessionTags cannot override.
func isReservedSessionTag(k string) bool {
	return k == tagNamespace || k == tagStoreName || k == tagStoreKind
}

// credentials builds the store's credential chain: the base credentials
// (auth.jwt, auth.secretRef or the default chain), then each of
// additionalRoles, then role, each assumed with the credentials before it.
func (p *Provider) credentials(ctx context.Context, cfg aws.Config, spec *esv1.AWSProvider, opts provider.Options) (aws.CredentialsProvider, error) {
	var (
		creds    aws.CredentialsProvider
		roleUsed bool
		err      error
	)
	switch {
	case spec.Auth.JWTAuth != nil:
		creds, roleUsed, err = p.webIdentity(ctx, cfg, spec, opts)
		if err != nil {
			return nil, err
		}
	case spec.Auth.SecretRef != nil:
		creds, err = staticCredentials(ctx, spec.Auth.SecretRef, opts)
		if err != nil {
			return nil, err
		}
	default:
		creds = defaultChain{cfg.Credentials}
	}
	for _, role := range spec.AdditionalRoles {
		creds = p.assumeRole(cfg, creds, role, nil)
	}
	if spec.Role != "" && !roleUsed {
		creds = p.assumeRole(cfg, creds, spec.Role, func(o *stscreds.AssumeRoleOptions) {
			if spec.ExternalID != "" {
				o.ExternalID = aws.String(spec.ExternalID)
			}
			if tags := sessionTags(spec, opts); len(tags) > 0 {
				o.Tags = tags
				o.TransitiveTagKeys = spec.TransitiveTagKeys
			}
		})
	}
	return markCredentialErrors{creds}, nil
}

// staticCredentials reads an access key (and optional session token) from
// Secrets. Surrounding whitespace, such as the newline `echo` leaves, is
// dropped: AWS keys never contain any.
func staticCredentials(ctx context.Context, ref *esv1.AWSAuthSecretRef, opts provider.Options) (aws.CredentialsProvider, error) {
	id, err := opts.SecretKey(ctx, ref.AccessKeyID)
	if err != nil {
		return nil, fmt.Errorf("reading accessKeyIDSecretRef: %w", err)
	}
	secret, err := opts.SecretKey(ctx, ref.SecretAccessKey)
	if err != nil {
		return nil, fmt.Errorf("reading secretAccessKeySecretRef: %w", err)
	}
	var token []byte
	if ref.SessionToken != nil {
		if token, err = opts.SecretKey(ctx, *ref.SessionToken); err != nil {
			return nil, fmt.Errorf("reading sessionTokenSecretRef: %w", err)
		}
	}
	keyID, secretKey := strings.TrimSpace(string(id)), strings.TrimSpace(string(secret))
	if keyID == "" || secretKey == "" {
		return nil, fmt.Errorf("%w: the access key id or secret access key in auth.secretRef is empty", provider.ErrInvalidConfig)
	}
	return credentials.NewStaticCredentialsProvider(keyID, secretKey, strings.TrimSpace(string(token))), nil
}

// webIdentity exchanges a token of the ServiceAccount that auth.jwt names
// for credentials of a role (AssumeRoleWithWebIdentity). As in ESO, the role
// is the ServiceAccount's eks.amazonaws.com/role-arn annotation; without it,
// keyferry uses spec.provider.aws.role (and reports roleUsed so that role is
// not assumed a second time).
func (p *Provider) webIdentity(ctx context.Context, cfg aws.Config, spec *esv1.AWSProvider, opts provider.Options) (creds aws.CredentialsProvider, roleUsed bool, err error) {
	sel := *spec.Auth.JWTAuth.ServiceAccountRef
	ns := opts.NamespaceFor(sel.Namespace)
	if opts.Kube == nil {
		return nil, false, fmt.Errorf("%w: reading service account %s/%s: no Kubernetes client", provider.ErrInvalidConfig, ns, sel.Name)
	}
	var sa corev1.ServiceAccount
	if err := opts.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: sel.Name}, &sa); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, fmt.Errorf("%w: service account %s/%s not found", provider.ErrInvalidConfig, ns, sel.Name)
		}
		return nil, false, fmt.Errorf("reading service account %s/%s: %w", ns, sel.Name, err)
	}
	role := sa.Annotations[roleARNAnnotation]
	if role == "" {
		if spec.Role == "" {
			return nil, false, fmt.Errorf("%w: service account %s/%s has no %s annotation and spec.provider.aws.role is empty: set one of them to the role to assume with its token",
				provider.ErrInvalidConfig, ns, sel.Name, roleARNAnnotation)
		}
		role, roleUsed = spec.Role, true
	}
	// ESO's audiences: the annotation's (or STS's default) plus the listed ones.
	aud := sa.Annotations[audienceAnnotation]
	if aud == "" {
		aud = defaultAudience
	}
	sel.Audiences = append([]string{aud}, sel.Audiences...)

	return aws.NewCredentialsCache(&webIdentityProvider{
		sts:  p.stsClient(cfg, aws.AnonymousCredentials{}),
		role: role,
		token: func(ctx context.Context) (string, error) {
			return opts.ServiceAccountToken(ctx, sel)
		},
	}), roleUsed, nil
}

// assumeRole returns credentials of role, assumed with creds.
func (p *Provider) assumeRole(cfg aws.Config, creds aws.CredentialsProvider, role string, optFn func(*stscreds.AssumeRoleOptions)) aws.CredentialsProvider {
	return aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(p.stsClient(cfg, creds), role, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = roleSessionName
		if optFn != nil {
			optFn(o)
		}
	}))
}

func (p *Provider) stsClient(cfg aws.Config, creds aws.CredentialsProvider) *sts.Client {
	return sts.NewFromConfig(cfg, func(o *sts.Options) {
		o.Credentials = creds
		if p.Endpoints.STS != "" {
			o.BaseEndpoint = aws.String(p.Endpoints.STS)
		}
	})
}

// sessionTags are the STS session tags of the role assumption: sessionTags,
// then (policy Simple or Custom) the store's namespace, name and kind, then
// (policy Custom) customSessionTags, whose empty keys or values are ignored
// and which cannot override the store's tags.
func sessionTags(spec *esv1.AWSProvider, opts provider.Options) []ststypes.Tag {
	tags := map[string]string{}
	for _, t := range spec.SessionTags {
		if t != nil && t.Key != "" {
			tags[t.Key] = t.Value
		}
	}
	if spec.SessionTagsPolicy == sessionTagsCustom {
		for k, v := range spec.CustomSessionTags {
			if k != "" && v != "" && !isReservedSessionTag(k) {
				tags[k] = v
			}
		}
	}
	if spec.SessionTagsPolicy == sessionTagsSimple || spec.SessionTagsPolicy == sessionTagsCustom {
		ns := opts.Store.Namespace
		if ns == "" {
			ns = opts.Namespace
		}
		tags[tagNamespace] = ns
		tags[tagStoreName] = opts.Store.Name
		tags[tagStoreKind] = opts.Store.Kind
	}
	out := make([]ststypes.Tag, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, ststypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// webIdentityProvider exchanges a ServiceAccount token for role
// credentials. Unlike the SDK's stscreds.WebIdentityRoleProvider it requests
// the token with the caller's context.
type webIdentityProvider struct {
	sts   *sts.Client
	role  string
	token func(context.Context) (string, error)
}

func (w *webIdentityProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	token, err := w.token(ctx)
	if err != nil {
		return aws.Credentials{}, err
	}
	out, err := w.sts.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(w.role),
		RoleSessionName:  aws.String(roleSessionName),
		WebIdentityToken: aws.String(token),
	})
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("assuming role %s with a web identity: %w", w.role, err)
	}
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil {
		return aws.Credentials{}, fmt.Errorf("%w: AssumeRoleWithWebIdentity for role %s returned no credentials", provider.ErrBadResponse, w.role)
	}
	creds := aws.Credentials{
		AccessKeyID:     *c.AccessKeyId,
		SecretAccessKey: *c.SecretAccessKey,
		SessionToken:    aws.ToString(c.SessionToken),
		Source:          "keyferry:WebIdentity",
	}
	if c.Expiration != nil {
		creds.CanExpire, creds.Expires = true, *c.Expiration
	}
	return creds, nil
}

// credentialsError is a failure to obtain credentials (reading the default
// chain, assuming a role), as opposed to a refusal of the call they were
// obtained for.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "obtaining AWS credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// isCredentialsError says whether err is, or wraps, a credentialsError.
func isCredentialsError(err error) bool {
	var ce *credentialsError
	return errors.As(err, &ce)
}

// markCredentialErrors wraps the errors of a credential chain in a
// credentialsError.
type markCredentialErrors struct{ aws.CredentialsProvider }

func (m markCredentialErrors) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, &credentialsError{err: err}
	}
	return c, nil
}

// errNoCredentials marks a failure of the SDK's default credential chain.
var errNoCredentials = errors.New("no AWS credentials: set spec.provider.aws.auth, or give the operator credentials (IRSA, Pod Identity, environment)")

// defaultChain is the SDK's default credential chain, its failures marked
// as missing credentials (rather than, say, the instance metadata service
// being unreachable).
type defaultChain struct{ aws.CredentialsProvider }

func (d defaultChain) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if d.CredentialsProvider == nil {
		return aws.Credentials{}, errNoCredentials
	}
	c, err := d.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%w: %w", errNoCredentials, err)
	}
	return c, nil
}

// Package aws is keyferry's provider for AWS Secrets Manager and AWS Systems
// Manager Parameter Store, configured by ESO's spec.provider.aws.
//
// Credentials come from the store's auth (static keys in a Secret, or a
// ServiceAccount token exchanged through STS AssumeRoleWithWebIdentity) or,
// without auth, from the SDK's default chain; additionalRoles and role are
// then assumed in order. Secrets Manager clients fetch many values in one
// BatchGetSecretValue call (AWS bills per call); Parameter Store clients use
// GetParameters the same way.
//
// It also serves SecretProviderClasses with provider aws (class.go), as
// the AWS provider of the Secrets Store CSI driver reads them: a store
// whose Class is set reads the files of the class's `objects`.
package aws

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/go-logr/logr"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// Name is the provider's name: its field in SecretStore.spec.provider.
const Name = "aws"

// Environment variables that override the AWS endpoints, as in ESO.
const (
	EnvSecretsManagerEndpoint = "AWS_SECRETSMANAGER_ENDPOINT"
	EnvSSMEndpoint            = "AWS_SSM_ENDPOINT"
	EnvSTSEndpoint            = "AWS_STS_ENDPOINT"
	// The ECRAuthorizationToken generator's endpoints (generate.go).
	EnvECREndpoint       = "AWS_ECR_ENDPOINT"
	EnvECRPublicEndpoint = "AWS_ECR_PUBLIC_ENDPOINT"
)

// Endpoints override the endpoints of the AWS services (VPC or FIPS
// endpoints, a local test server). Empty fields use AWS's endpoint for the
// store's region.
type Endpoints struct {
	SecretsManager string
	SSM            string
	STS            string
	// ECR and ECRPublic serve the ECRAuthorizationToken generator.
	ECR, ECRPublic string
}

// EndpointsFromEnv reads ESO's endpoint variables (AWS_SECRETSMANAGER_ENDPOINT,
// AWS_SSM_ENDPOINT, AWS_STS_ENDPOINT, AWS_ECR_ENDPOINT, AWS_ECR_PUBLIC_ENDPOINT).
func EndpointsFromEnv() Endpoints {
	return Endpoints{
		SecretsManager: os.Getenv(EnvSecretsManagerEndpoint),
		SSM:            os.Getenv(EnvSSMEndpoint),
		STS:            os.Getenv(EnvSTSEndpoint),
		ECR:            os.Getenv(EnvECREndpoint),
		ECRPublic:      os.Getenv(EnvECRPublicEndpoint),
	}
}

// Provider builds AWS clients.
type Provider struct {
	// Endpoints override the services' endpoints.
	Endpoints Endpoints
	// HTTPClient sends every request to AWS (the services and STS); nil
	// uses the SDK's default client.
	HTTPClient aws.HTTPClient
	// DefaultRegion is the region of SecretProviderClasses that set none
	// (class.go).
	DefaultRegion string
	// PodIdentityAgent is the EKS Pod Identity agent's credentials endpoint
	// for SecretProviderClasses with usePodIdentity (classpodidentity.go);
	// empty means the agent's link-local address on the node.
	PodIdentityAgent string
}

var _ provider.Provider = (*Provider)(nil)

// New returns the provider registered under Name, with endpoints from the
// environment.
func New() provider.Provider {
	return &Provider{Endpoints: EndpointsFromEnv(), DefaultRegion: RegionFromEnv()}
}

// Shareable says whether stores with this configuration can share one
// client and cache across namespaces: only when the credentials do not
// depend on the store's namespace (the operator's own credentials, or a
// ClusterSecretStore naming the namespaces of its Secrets or ServiceAccount)
// and no session tag names the store.
func (p *Provider) Shareable(store provider.Store) bool {
	spec, err := awsSpec(store)
	if err != nil || spec.SessionTagsPolicy == sessionTagsSimple || spec.SessionTagsPolicy == sessionTagsCustom {
		return false
	}
	fixed := func(ns *string) bool { return store.IsCluster() && ns != nil && *ns != "" }
	switch {
	case spec.Auth.JWTAuth != nil:
		return fixed(spec.Auth.JWTAuth.ServiceAccountRef.Namespace)
	case spec.Auth.SecretRef != nil:
		s := spec.Auth.SecretRef
		return fixed(s.AccessKeyID.Namespace) && fixed(s.SecretAccessKey.Namespace) &&
			(s.SessionToken == nil || fixed(s.SessionToken.Namespace))
	default:
		return true
	}
}

// ValidateSpec checks spec.provider.aws without any I/O.
func (p *Provider) ValidateSpec(store provider.Store) error {
	if store.Class != nil {
		return validateClass(store)
	}
	_, err := awsSpec(store)
	return err
}

func awsSpec(store provider.Store) (*esv1.AWSProvider, error) {
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.AWS == nil {
		return nil, fmt.Errorf("%w: spec.provider.aws is not set", provider.ErrInvalidConfig)
	}
	spec := store.Spec.Provider.AWS
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	return spec, nil
}

func validateSpec(spec *esv1.AWSProvider) error {
	switch spec.Service {
	case esv1.AWSServiceSecretsManager, esv1.AWSServiceParameterStore:
	case esv1.AWSServiceCertificateManager:
		return fmt.Errorf("%w: spec.provider.aws.service CertificateManager is not supported by keyferry: use SecretsManager or ParameterStore", provider.ErrNotSupported)
	case "":
		return fmt.Errorf("%w: spec.provider.aws.service is required: SecretsManager or ParameterStore", provider.ErrInvalidConfig)
	default:
		return fmt.Errorf("%w: spec.provider.aws.service %q is not SecretsManager or ParameterStore", provider.ErrInvalidConfig, spec.Service)
	}
	if spec.Region == "" {
		return fmt.Errorf("%w: spec.provider.aws.region is required", provider.ErrInvalidConfig)
	}
	// ESO gives jwt precedence when both auth methods are set; so do we.
	if j := spec.Auth.JWTAuth; j != nil {
		if j.ServiceAccountRef == nil || j.ServiceAccountRef.Name == "" {
			return fmt.Errorf("%w: spec.provider.aws.auth.jwt.serviceAccountRef.name is required", provider.ErrInvalidConfig)
		}
	} else if s := spec.Auth.SecretRef; s != nil {
		if err := validateSelector("accessKeyIDSecretRef", s.AccessKeyID); err != nil {
			return err
		}
		if err := validateSelector("secretAccessKeySecretRef", s.SecretAccessKey); err != nil {
			return err
		}
		if s.SessionToken != nil {
			if err := validateSelector("sessionTokenSecretRef", *s.SessionToken); err != nil {
				return err
			}
		}
	}
	for i, r := range spec.AdditionalRoles {
		if r == "" {
			return fmt.Errorf("%w: spec.provider.aws.additionalRoles[%d] is empty", provider.ErrInvalidConfig, i)
		}
	}
	switch spec.SessionTagsPolicy {
	case "", sessionTagsNone, sessionTagsSimple, sessionTagsCustom:
	default:
		return fmt.Errorf("%w: spec.provider.aws.sessionTagsPolicy %q is not None, Simple or Custom", provider.ErrInvalidConfig, spec.SessionTagsPolicy)
	}
	for _, k := range slices.Sorted(maps.Keys(spec.CustomSessionTags)) {
		if isReservedSessionTag(k) {
			return fmt.Errorf("%w: spec.provider.aws.customSessionTags cannot set the reserved tag %q", provider.ErrInvalidConfig, k)
		}
	}
	for i, t := range spec.SessionTags {
		if t == nil || t.Key == "" {
			return fmt.Errorf("%w: spec.provider.aws.sessionTags[%d].key is empty", provider.ErrInvalidConfig, i)
		}
	}
	return nil
}

func validateSelector(field string, sel esv1.SecretKeySelector) error {
	if sel.Name == "" || sel.Key == "" {
		return fmt.Errorf("%w: spec.provider.aws.auth.secretRef.%s needs name and key", provider.ErrInvalidConfig, field)
	}
	return nil
}

// NewClient builds a Secrets Manager or Parameter Store client. It reads
// static credentials and the ServiceAccount now; STS calls happen when
// credentials are first needed and again when they expire.
func (p *Provider) NewClient(ctx context.Context, opts provider.Options) (provider.Client, error) {
	if opts.Store.Class != nil {
		return p.newClassClient(ctx, opts)
	}
	spec, err := awsSpec(opts.Store)
	if err != nil {
		return nil, err
	}
	cfg, err := p.config(ctx, spec, opts)
	if err != nil {
		return nil, err
	}
	b := base{cfg: cfg, prefix: spec.Prefix, deletion: spec.SecretsManager, log: opts.Log.WithValues("service", string(spec.Service), "region", spec.Region)}
	switch spec.Service {
	case esv1.AWSServiceParameterStore:
		return newParameterStore(b, ssm.NewFromConfig(cfg, func(o *ssm.Options) {
			if p.Endpoints.SSM != "" {
				o.BaseEndpoint = aws.String(p.Endpoints.SSM)
			}
		})), nil
	default:
		return newSecretsManager(b, secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
			if p.Endpoints.SecretsManager != "" {
				o.BaseEndpoint = aws.String(p.Endpoints.SecretsManager)
			}
		})), nil
	}
}

// config builds the SDK configuration: region, HTTP client, SDK retries
// only for dropped connections (newRetryer: the engine retries everything
// else with backoff, and every AWS call is billed) and the credential chain
// of the store.
func (p *Provider) config(ctx context.Context, spec *esv1.AWSProvider, opts provider.Options) (aws.Config, error) {
	load := []func(*config.LoadOptions) error{
		config.WithRegion(spec.Region),
		config.WithRetryer(newRetryer),
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("%w: loading the AWS configuration: %v", provider.ErrInvalidConfig, err)
	}
	// Set after loading: the loader would try to add AWS_CA_BUNDLE to it,
	// which only the SDK's own client supports.
	if p.HTTPClient != nil {
		cfg.HTTPClient = p.HTTPClient
	}
	creds, err := p.credentials(ctx, cfg, spec, opts)
	if err != nil {
		return aws.Config{}, err
	}
	cfg.Credentials = creds
	return cfg, nil
}

// base holds what both services' clients share.
type base struct {
	cfg    aws.Config
	prefix string
	// deletion is spec.provider.aws.secretsManager: how a push's
	// deletion deletes a Secrets Manager secret (push_secretsmanager.go).
	deletion *esv1.AWSSecretsManager
	log      logr.Logger
}

// id is the remote name a key reads: prefix+key, or the key itself when it
// is an ARN (a name can hold no ':', so no prefixed name starts with
// "arn:"). Finds list names outside the prefix and read them by ARN.
func (b *base) id(key string) string {
	if strings.HasPrefix(key, "arn:") {
		return key
	}
	return b.prefix + key
}

// listedRef is the ref that reads a listed name: the name relative to the
// store's prefix, or its ARN when the name is outside the prefix (finds
// ignore the prefix, as in ESO). It is false when neither works.
func (b *base) listedRef(name, arn string) (provider.Ref, bool) {
	if key, ok := strings.CutPrefix(name, b.prefix); ok {
		return provider.Ref{Key: key}, true
	}
	if strings.HasPrefix(arn, "arn:") {
		return provider.Ref{Key: arn}, true
	}
	return provider.Ref{}, false
}

// Validate obtains credentials (which assumes the configured roles). It
// does not read any secret: the store's role may not list or read anything
// without a key.
func (b *base) Validate(ctx context.Context) error {
	if _, err := b.cfg.Credentials.Retrieve(ctx); err != nil {
		return classify(err)
	}
	return nil
}

// Close releases nothing: the SDK's clients hold no resources that need it.
func (b *base) Close(context.Context) error { return nil }

package gcpsm

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"
	"cloud.google.com/go/auth/credentials/externalaccount"
	"cloud.google.com/go/compute/metadata"
	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

const (
	// gcpServiceAccountAnnotation on a Kubernetes ServiceAccount names the
	// Google service account it acts as under GKE workload identity.
	gcpServiceAccountAnnotation = "iam.gke.io/gcp-service-account"

	// stsTokenURL is Google's Security Token Service (RFC 8693 token
	// exchange).
	stsTokenURL = "https://sts.googleapis.com/v1/token"
	// jwtTokenType is the type of a Kubernetes ServiceAccount token in the
	// exchange.
	jwtTokenType = "urn:ietf:params:oauth:token-type:jwt"
	// impersonationURLFormat mints an access token for a Google service
	// account with the federated token.
	impersonationURLFormat = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/%s:generateAccessToken"

	// serviceAccountTokenExpiry is how long the ServiceAccount tokens
	// exchanged through STS live: the shortest the TokenRequest API grants,
	// since each is used once.
	serviceAccountTokenExpiry = 10 * time.Minute
	// metadataTimeout bounds each call to the GCE metadata server.
	metadataTimeout = 5 * time.Second
)

// gcpServiceAccountPattern keeps the annotation from changing the
// impersonation URL's path.
var gcpServiceAccountPattern = regexp.MustCompile(`^[a-zA-Z0-9._+-]+@[a-zA-Z0-9.-]+$`)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// credentialsFor returns the credentials the store's auth names, or nil to
// let the SDK use application default credentials. The order follows ESO:
// secretRef, then workloadIdentity.
func credentialsFor(ctx context.Context, g *esv1.GCPSMProvider, opts provider.Options) (*auth.Credentials, error) {
	switch {
	case g.Auth.SecretRef != nil:
		return serviceAccountKeyCredentials(ctx, g.Auth.SecretRef.SecretAccessKey, opts)
	case g.Auth.WorkloadIdentity != nil:
		wi, err := newWorkloadIdentity(ctx, g.Auth.WorkloadIdentity, opts)
		if err != nil {
			return nil, err
		}
		return wi.credentials()
	default:
		return nil, nil
	}
}

// serviceAccountKeyCredentials loads a service account key file from a
// Secret. Only keys of type service_account are accepted (an external_account
// or impersonated file could point token requests at any URL), and tokens are
// self-signed JWTs, so the key's token_uri is never contacted (only
// GCRAccessToken's access tokens are requested there: generate.go). Error
// messages name the Secret and key, never its content.
func serviceAccountKeyCredentials(ctx context.Context, sel esv1.SecretKeySelector, opts provider.Options) (*auth.Credentials, error) {
	key, _, where, err := readServiceAccountKey(ctx, sel, opts)
	if err != nil {
		return nil, err
	}
	creds, err := credentials.NewCredentialsFromJSON(credentials.ServiceAccount, key, &credentials.DetectOptions{
		Scopes:           secretmanager.DefaultAuthScopes(),
		UseSelfSignedJWT: true,
		Logger:           discardLogger(),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: the private_key cannot be used", provider.ErrInvalidConfig, where)
	}
	return creds, nil
}

// serviceAccountKeyFile is the part of a service account key file keyferry
// checks before handing it to the SDK.
type serviceAccountKeyFile struct {
	Type           string `json:"type"`
	ClientEmail    string `json:"client_email"`
	PrivateKey     string `json:"private_key"`
	TokenURI       string `json:"token_uri"`
	UniverseDomain string `json:"universe_domain"`
}

// readServiceAccountKey reads the service account key sel names and checks
// that it is one (type service_account, with client_email and
// private_key). It returns the key, its checked fields and where it was
// read, for messages. Error messages name the Secret and key, never its
// content.
func readServiceAccountKey(ctx context.Context, sel esv1.SecretKeySelector, opts provider.Options) ([]byte, serviceAccountKeyFile, string, error) {
	var file serviceAccountKeyFile
	if err := requireNamespace(opts, sel.Namespace, "auth.secretRef.secretAccessKeySecretRef"); err != nil {
		return nil, file, "", err
	}
	key, err := opts.SecretKey(ctx, sel)
	if err != nil {
		return nil, file, "", err
	}
	where := fmt.Sprintf("secret %s/%s key %q", opts.NamespaceFor(sel.Namespace), sel.Name, sel.Key)
	// The decoder's error could quote the content, so it is not included.
	if json.Unmarshal(key, &file) != nil {
		return nil, file, where, fmt.Errorf("%w: %s is not a JSON service account key", provider.ErrInvalidConfig, where)
	}
	if file.Type != string(credentials.ServiceAccount) {
		return nil, file, where, fmt.Errorf("%w: %s is not a service account key (its type must be %q)",
			provider.ErrInvalidConfig, where, credentials.ServiceAccount)
	}
	if file.ClientEmail == "" || file.PrivateKey == "" {
		return nil, file, where, fmt.Errorf("%w: %s has no client_email or private_key", provider.ErrInvalidConfig, where)
	}
	return key, file, where, nil
}

// requireNamespace fails when a reference has no namespace to resolve in:
// a ClusterSecretStore validated outside of any namespace.
func requireNamespace(opts provider.Options, ns *string, field string) error {
	if opts.NamespaceFor(ns) == "" {
		return fmt.Errorf("%w: %s has no namespace: set one, or use the store from a namespaced object", provider.ErrInvalidConfig, field)
	}
	return nil
}

// gkeCluster identifies the GKE cluster whose workload identity pool the
// ServiceAccount tokens belong to.
type gkeCluster struct {
	Project, Location, Name string
}

// workloadIdentityConfig is what a token exchange for one ServiceAccount
// needs.
type workloadIdentityConfig struct {
	// TokenAudiences are the audiences of the ServiceAccount token.
	TokenAudiences []string
	// STSAudience names the workload identity pool and its provider.
	STSAudience string
	// ImpersonationURL is set when the ServiceAccount is bound to a Google
	// service account; empty means the federated token is used directly.
	ImpersonationURL string
}

// newWorkloadIdentityConfig derives the exchange from the cluster, the
// ServiceAccount's iam.gke.io/gcp-service-account annotation (may be empty)
// and the extra audiences of serviceAccountRef.
func newWorkloadIdentityConfig(c gkeCluster, gcpServiceAccount string, extraAudiences []string) (workloadIdentityConfig, error) {
	pool := c.Project + ".svc.id.goog"
	idProvider := fmt.Sprintf("https://container.googleapis.com/v1/projects/%s/locations/%s/clusters/%s", c.Project, c.Location, c.Name)
	cfg := workloadIdentityConfig{
		TokenAudiences: append([]string{pool}, extraAudiences...),
		STSAudience:    "identitynamespace:" + pool + ":" + idProvider,
	}
	if gcpServiceAccount != "" {
		if !gcpServiceAccountPattern.MatchString(gcpServiceAccount) {
			return workloadIdentityConfig{}, fmt.Errorf("annotation %s %q is not a service account email", gcpServiceAccountAnnotation, gcpServiceAccount)
		}
		cfg.ImpersonationURL = fmt.Sprintf(impersonationURLFormat, gcpServiceAccount)
	}
	return cfg, nil
}

// workloadIdentity is the token exchange for one ServiceAccount: a
// TokenRequest token with the pool as audience goes to STS, and, when the
// ServiceAccount carries iam.gke.io/gcp-service-account, the federated token
// impersonates that Google service account.
type workloadIdentity struct {
	config workloadIdentityConfig
	tokens *serviceAccountTokenSource
}

// newWorkloadIdentity reads the ServiceAccount serviceAccountRef names and
// resolves the cluster it belongs to.
func newWorkloadIdentity(ctx context.Context, wi *esv1.GCPWorkloadIdentity, opts provider.Options) (*workloadIdentity, error) {
	sel := wi.ServiceAccountRef
	if err := requireNamespace(opts, sel.Namespace, "auth.workloadIdentity.serviceAccountRef"); err != nil {
		return nil, err
	}
	if opts.Tokens == nil {
		return nil, fmt.Errorf("%w: service account tokens are not available", provider.ErrInvalidConfig)
	}
	ns := opts.NamespaceFor(sel.Namespace)
	var sa corev1.ServiceAccount
	if err := opts.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: sel.Name}, &sa); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: service account %s/%s not found", provider.ErrInvalidConfig, ns, sel.Name)
		}
		return nil, fmt.Errorf("reading service account %s/%s: %w", ns, sel.Name, err)
	}
	cluster, err := resolveCluster(ctx, wi, newMetadataClient())
	if err != nil {
		return nil, err
	}
	cfg, err := newWorkloadIdentityConfig(cluster, sa.Annotations[gcpServiceAccountAnnotation], sel.Audiences)
	if err != nil {
		return nil, fmt.Errorf("%w: service account %s/%s: %w", provider.ErrInvalidConfig, ns, sel.Name, err)
	}
	return &workloadIdentity{
		config: cfg,
		tokens: &serviceAccountTokenSource{tokens: opts.Tokens, namespace: ns, name: sel.Name, audiences: cfg.TokenAudiences},
	}, nil
}

// credentials returns credentials that run the exchange whenever the access
// token needs refreshing, with a fresh ServiceAccount token each time.
func (w *workloadIdentity) credentials() (*auth.Credentials, error) {
	creds, err := externalaccount.NewCredentials(&externalaccount.Options{
		Audience:                       w.config.STSAudience,
		SubjectTokenType:               jwtTokenType,
		TokenURL:                       stsTokenURL,
		ServiceAccountImpersonationURL: w.config.ImpersonationURL,
		Scopes:                         secretmanager.DefaultAuthScopes(),
		SubjectTokenProvider:           w.tokens,
		Logger:                         discardLogger(),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: workload identity for service account %s/%s: %w",
			provider.ErrInvalidConfig, w.tokens.namespace, w.tokens.name, err)
	}
	return creds, nil
}

// serviceAccountTokenSource supplies ServiceAccount tokens to the STS
// exchange.
type serviceAccountTokenSource struct {
	tokens    provider.TokenRequester
	namespace string
	name      string
	audiences []string
}

// SubjectToken implements externalaccount.SubjectTokenProvider.
func (s *serviceAccountTokenSource) SubjectToken(ctx context.Context, _ *externalaccount.RequestOptions) (string, error) {
	tok, _, err := s.tokens.ServiceAccountToken(ctx, s.namespace, s.name, s.audiences, serviceAccountTokenExpiry)
	if err != nil {
		return "", fmt.Errorf("requesting a token for service account %s/%s: %w", s.namespace, s.name, err)
	}
	return tok, nil
}

// metadataSource is the part of the GCE metadata server keyferry reads.
type metadataSource interface {
	ProjectIDWithContext(ctx context.Context) (string, error)
	InstanceAttributeValueWithContext(ctx context.Context, attr string) (string, error)
}

func newMetadataClient() metadataSource {
	return metadata.NewClient(&http.Client{Timeout: metadataTimeout})
}

// resolveCluster fills what workloadIdentity leaves empty from the metadata
// server of the GKE node the operator runs on, as ESO documents.
func resolveCluster(ctx context.Context, wi *esv1.GCPWorkloadIdentity, md metadataSource) (gkeCluster, error) {
	c := gkeCluster{Project: wi.ClusterProjectID, Location: wi.ClusterLocation, Name: wi.ClusterName}
	var err error
	if c.Project == "" {
		if c.Project, err = md.ProjectIDWithContext(ctx); err != nil {
			return c, metadataError("auth.workloadIdentity.clusterProjectID", err)
		}
	}
	if c.Location == "" {
		if c.Location, err = md.InstanceAttributeValueWithContext(ctx, "cluster-location"); err != nil {
			return c, metadataError("auth.workloadIdentity.clusterLocation", err)
		}
	}
	if c.Name == "" {
		if c.Name, err = md.InstanceAttributeValueWithContext(ctx, "cluster-name"); err != nil {
			return c, metadataError("auth.workloadIdentity.clusterName", err)
		}
	}
	return c, nil
}

func metadataError(field string, err error) error {
	return fmt.Errorf("%w: %s is empty and the GCE metadata server did not provide it (set it in the store): %w",
		provider.ErrInvalidConfig, field, err)
}

// defaultProject is the project of a store without projectID: the cluster
// project of workload identity, else the metadata server's project.
func defaultProject(ctx context.Context, g *esv1.GCPSMProvider) (string, error) {
	if wi := g.Auth.WorkloadIdentity; wi != nil && wi.ClusterProjectID != "" {
		return wi.ClusterProjectID, nil
	}
	p, err := newMetadataClient().ProjectIDWithContext(ctx)
	if err != nil {
		return "", metadataError("projectID", err)
	}
	return p, nil
}

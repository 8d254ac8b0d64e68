// Package gcpsm reads GCP Secret Manager for SecretStores that set
// spec.provider.gcpsm, with External Secrets Operator's field names and
// meanings: projectID, location (regional secrets), secretVersionSelectionPolicy
// and three ways to authenticate (a service account key in a Secret, GKE
// workload identity through a ServiceAccount token, or the operator's
// application default credentials).
//
// Values are returned as the bytes Secret Manager stores; the engine applies
// properties, decoding and templates.
//
// It also serves SecretProviderClasses with provider gcp for SecretSyncs
// (class.go): a store whose Class is set reads the versions of the class's
// `secrets` parameter.
//
// It also makes the values of ESO's GCRAccessToken generator
// (provider.Generator, generate.go): an OAuth2 access token with the
// credentials of the store the engine builds from the generator's auth.
package gcpsm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"google.golang.org/api/option"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// Name is the provider's name: its field in SecretStore.spec.provider.
const Name = "gcpsm"

// Values of spec.provider.gcpsm.secretVersionSelectionPolicy.
const (
	// PolicyLatestOrFail reads "latest" and fails when that version is
	// disabled or destroyed. It is the default.
	PolicyLatestOrFail = "LatestOrFail"
	// PolicyLatestOrFetch falls back to the newest enabled version when
	// "latest" is disabled or destroyed and the reference names no version.
	PolicyLatestOrFetch = "LatestOrFetch"
)

// Provider builds clients for GCP Secret Manager stores.
type Provider struct {
	// clientOptions are appended after the options keyferry derives from the
	// store, so they win. They are not reachable from a SecretStore.
	clientOptions []option.ClientOption
	// metadata is the GCE metadata server SecretProviderClasses with auth
	// pod-adc learn the GKE cluster from; nil means the real one.
	metadata metadataSource
	// tokenClient makes the OAuth2 token requests of Generate; nil means
	// a client with the system's roots. It is not reachable from a
	// SecretStore.
	tokenClient *http.Client
}

var _ provider.Provider = (*Provider)(nil)

// New returns the provider registered under Name.
func New() provider.Provider { return &Provider{} }

// NewWithClientOptions returns a provider whose clients also get opts, after
// the options derived from the store (so an endpoint in opts replaces the
// regional one). Tests use it to reach a local emulator; it is not part of
// the user-facing API.
func NewWithClientOptions(opts ...option.ClientOption) *Provider {
	return &Provider{clientOptions: append([]option.ClientOption(nil), opts...)}
}

// NewWithTokenClient returns a provider whose OAuth2 token requests (the
// access tokens of GCRAccessToken, Generate) go through hc, and whose
// clients also get opts as with NewWithClientOptions. Tests use it to trust
// a local token server's certificate; it is not part of the user-facing
// API.
func NewWithTokenClient(hc *http.Client, opts ...option.ClientOption) *Provider {
	p := NewWithClientOptions(opts...)
	p.tokenClient = hc
	return p
}

// locationPattern and projectPattern keep user input from changing the
// endpoint host or the resource path.
var (
	locationPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	projectPattern  = regexp.MustCompile(`^[a-z0-9]([a-z0-9.:-]*[a-z0-9])?$`)
)

// ValidateSpec checks spec.provider.gcpsm without any I/O.
func (p *Provider) ValidateSpec(store provider.Store) error {
	if store.Class != nil {
		return validateClass(store)
	}
	return validateStoreSpec(store, true)
}

// validateStoreSpec checks spec.provider.gcpsm; projectWithKey says
// whether auth.secretRef needs projectID (Secret Manager's calls do; an
// access token made from the key does not).
func validateStoreSpec(store provider.Store, projectWithKey bool) error {
	g, err := gcpSpec(store)
	if err != nil {
		return err
	}
	var errs []error
	if g.ProjectID != "" && !projectPattern.MatchString(g.ProjectID) {
		errs = append(errs, fmt.Errorf("projectID %q is not a GCP project ID", g.ProjectID))
	}
	if g.Location != "" && !locationPattern.MatchString(g.Location) {
		errs = append(errs, fmt.Errorf("location %q is not a GCP location (for example europe-west1)", g.Location))
	}
	switch g.SecretVersionSelectionPolicy {
	case "", PolicyLatestOrFail, PolicyLatestOrFetch:
	default:
		errs = append(errs, fmt.Errorf("secretVersionSelectionPolicy %q must be %s or %s",
			g.SecretVersionSelectionPolicy, PolicyLatestOrFail, PolicyLatestOrFetch))
	}
	switch a := g.Auth; {
	case a.SecretRef != nil:
		sel := a.SecretRef.SecretAccessKey
		if sel.Name == "" || sel.Key == "" {
			errs = append(errs, errors.New("auth.secretRef.secretAccessKeySecretRef needs name and key"))
		}
		if projectWithKey && g.ProjectID == "" {
			errs = append(errs, errors.New("projectID is required with auth.secretRef"))
		}
	case a.WorkloadIdentity != nil:
		wi := a.WorkloadIdentity
		if wi.ServiceAccountRef.Name == "" {
			errs = append(errs, errors.New("auth.workloadIdentity.serviceAccountRef.name is required"))
		}
		if wi.ClusterProjectID != "" && !projectPattern.MatchString(wi.ClusterProjectID) {
			errs = append(errs, fmt.Errorf("auth.workloadIdentity.clusterProjectID %q is not a GCP project ID", wi.ClusterProjectID))
		}
		if wi.ClusterLocation != "" && !locationPattern.MatchString(wi.ClusterLocation) {
			errs = append(errs, fmt.Errorf("auth.workloadIdentity.clusterLocation %q is not a GCP location", wi.ClusterLocation))
		}
		if wi.ClusterName != "" && !locationPattern.MatchString(wi.ClusterName) {
			errs = append(errs, fmt.Errorf("auth.workloadIdentity.clusterName %q is not a GKE cluster name", wi.ClusterName))
		}
	case a.WorkloadIdentityFederation != nil:
		errs = append(errs, fmt.Errorf("%w: auth.workloadIdentityFederation (use auth.workloadIdentity, auth.secretRef or the operator's default credentials)", provider.ErrNotSupported))
	}
	// The one rule of every provider: a SecretStore's references stay in
	// its namespace.
	if err := provider.ReferencesStayInNamespace(store); err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", provider.ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

func gcpSpec(store provider.Store) (*esv1.GCPSMProvider, error) {
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.GCPSM == nil {
		return nil, fmt.Errorf("%w: spec.provider.gcpsm is not set", provider.ErrInvalidConfig)
	}
	return store.Spec.Provider.GCPSM, nil
}

// NewClient builds a Secret Manager client for the store: it resolves the
// project, reads the credentials the store names and, for a regional store,
// uses the regional endpoint.
func (p *Provider) NewClient(ctx context.Context, opts provider.Options) (provider.Client, error) {
	if opts.Store.Class != nil {
		return p.newClassClient(ctx, opts)
	}
	if err := p.ValidateSpec(opts.Store); err != nil {
		return nil, err
	}
	g := opts.Store.Spec.Provider.GCPSM

	creds, err := credentialsFor(ctx, g, opts)
	if err != nil {
		return nil, err
	}
	project := g.ProjectID
	if project == "" {
		if project, err = defaultProject(ctx, g); err != nil {
			return nil, err
		}
	}

	copts := []option.ClientOption{
		option.WithUserAgent("keyferry"),
		// The SDK can log requests and responses (payloads included) when
		// GOOGLE_SDK_GO_LOGGING_LEVEL is set; a secret value must never reach
		// a log, so its logger discards everything.
		option.WithLogger(discardLogger()),
	}
	if g.Location != "" {
		copts = append(copts, option.WithEndpoint(regionalEndpoint(g.Location)))
	}
	if creds != nil {
		copts = append(copts, option.WithAuthCredentials(creds))
	}
	copts = append(copts, p.clientOptions...)

	sm, err := secretmanager.NewClient(ctx, copts...)
	if err != nil {
		if creds == nil {
			return nil, fmt.Errorf("%w: no auth in spec.provider.gcpsm.auth and no application default credentials usable: %w",
				provider.ErrInvalidConfig, err)
		}
		return nil, fmt.Errorf("creating the Secret Manager client: %w", err)
	}
	return &Client{
		sm:     sm,
		creds:  creds,
		parent: parentName(project, g.Location),
		policy: g.SecretVersionSelectionPolicy,
	}, nil
}

// regionalEndpoint is the gRPC endpoint of Secret Manager's regional
// secrets in location.
func regionalEndpoint(location string) string {
	return "secretmanager." + location + ".rep.googleapis.com:443"
}

// parentName is the resource that holds the store's secrets.
func parentName(project, location string) string {
	if location == "" {
		return "projects/" + project
	}
	return "projects/" + project + "/locations/" + location
}

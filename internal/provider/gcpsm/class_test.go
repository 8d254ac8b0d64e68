package gcpsm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/api/option"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testserver/gcpsmemulator"
)

// classStore is a SecretProviderClass with provider gcp in ns, read as the
// ServiceAccount sa.
func classStore(ns, sa string, params map[string]string) provider.Store {
	return provider.Store{Kind: provider.ClassKind, Name: "app-secrets", Namespace: ns,
		Class: &provider.Class{Provider: ClassName, Parameters: params, ServiceAccount: sa}}
}

// newClassClientOf builds the client of a class store through the
// provider, and closes it when the test ends.
func newClassClientOf(t *testing.T, p *Provider, store provider.Store) provider.Client {
	t.Helper()
	if err := p.ValidateSpec(store); err != nil {
		t.Fatalf("ValidateSpec: %v", err)
	}
	c, err := p.NewClient(testContext(t), provider.Options{Store: store, Namespace: store.Namespace, Kube: kube, Tokens: tokenRequester{clientset}})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// The provider's examples (app-secrets and app-secrets-with-extract-key),
// read from the emulator: a version under two file names, a regional
// secret, and keys extracted from JSON and YAML payloads; each version is
// read once per call however many files name it.
func TestClassReadsTheProvidersExamples(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	srv.AddVersion(t, srv.CreateSecret(t, "projects/my-project", "testsecret", nil), []byte(`{"user":"global-`+canary+`","n":1}`))
	srv.AddVersion(t, srv.CreateSecret(t, "projects/my-project/locations/us-central1", "testsecret", nil), []byte(`{"user":"regional-`+canary+`"}`))
	yml := srv.CreateSecret(t, "projects/my-project", "config", nil)
	first := srv.AddVersion(t, yml, []byte("user: yaml-v1\n"))
	srv.AddVersion(t, yml, []byte("user: yaml-v2\nport: 8080\n"))
	front := srv.TLS(t)
	p := NewWithClientOptions(append(front.ClientOptions(), option.WithoutAuthentication())...)
	ns := newNamespace(t)
	store := classStore(ns, "default", map[string]string{"auth": "provider-adc", "secrets": `- resourceName: "projects/my-project/secrets/testsecret/versions/latest"
  path: "good1.txt"
- resourceName: "projects/my-project/secrets/testsecret/versions/latest"
  path: "good2.txt"
- resourceName: "projects/my-project/secrets/testsecret/versions/latest"
  path: "user.txt"
  extractJSONKey: "user"
- resourceName: "projects/my-project/locations/us-central1/secrets/testsecret/versions/latest"
  path: "regional.txt"
  extractJSONKey: "user"
- resourceName: "projects/my-project/secrets/config/versions/` + first + `"
  fileName: "pinned.txt"
  extractYAMLKey: "user"
- resourceName: "projects/my-project/secrets/config/versions/latest"
  path: "port.txt"
  extractYAMLKey: "port"
- resourceName: "projects/my-project/secrets/missing/versions/latest"
  path: "missing.txt"
- resourceName: "projects/my-project/secrets/testsecret/versions/latest"
  path: "nokey.txt"
  extractJSONKey: "password"
- resourceName: "projects/my-project/secrets/testsecret/versions/latest"
  path: "number.txt"
  extractJSONKey: "n"
`})
	objs, err := p.ClassObjects(store.Class.Parameters)
	if err != nil {
		t.Fatalf("ClassObjects: %v", err)
	}
	if len(objs) != 9 || objs[0].File != "good1.txt" {
		t.Fatalf("ClassObjects = %+v, want 9 files sorted by name", objs)
	}
	c := newClassClientOf(t, p, store)
	refs := make([]provider.Ref, len(objs))
	for i, o := range objs {
		refs[i] = o.Ref
	}
	before := len(front.Authorizations())
	vals, errs := c.(provider.BatchGetter).GetSecrets(testContext(t), refs)
	want := map[string]string{
		"good1.txt":    `{"user":"global-` + canary + `","n":1}`,
		"good2.txt":    `{"user":"global-` + canary + `","n":1}`,
		"user.txt":     "global-" + canary,
		"regional.txt": "regional-" + canary,
		"pinned.txt":   "yaml-v1",
	}
	for file, w := range want {
		if got := vals[provider.Ref{Key: file}]; string(got.Data) != w {
			t.Errorf("%s = %q (err %v), want %q", file, got.Data, errs[provider.Ref{Key: file}], w)
		}
	}
	if got := vals[provider.Ref{Key: "good1.txt"}].Version; got != "1" {
		t.Errorf("good1.txt version = %q, want 1", got)
	}
	for file, wantErr := range map[string]error{
		"missing.txt": provider.ErrNotFound,
		"nokey.txt":   provider.ErrNotFound,
		"number.txt":  provider.ErrBadResponse,
		"port.txt":    provider.ErrBadResponse, // 8080 is not a string
	} {
		err := errs[provider.Ref{Key: file}]
		if !errors.Is(err, wantErr) {
			t.Errorf("%s: got %v, want %v", file, err, wantErr)
		}
		assertNoCanary(t, err)
	}
	// Five distinct versions: testsecret (global), testsecret (regional),
	// config/1, config/latest, missing.
	if n := len(front.Authorizations()) - before; n != 5 {
		t.Errorf("the batch made %d requests, want 5 (one per distinct version)", n)
	}

	if _, err := c.GetSecret(testContext(t), provider.Ref{Key: "nope.txt"}); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Errorf("GetSecret of a file the class does not provide: got %v, want ErrInvalidConfig", err)
	}
	if _, err := c.GetSecret(testContext(t), objs[0].CertRef); !errors.Is(err, provider.ErrBadResponse) {
		t.Errorf("GetSecret of tls.crt of a JSON file: got %v, want ErrBadResponse", err)
	}
}

// A kubernetes.io/tls SecretSync takes a file's certificates into tls.crt
// and its private key into tls.key.
func TestClassSplitsAPEMFileForTLS(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	const key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"
	const cert = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n"
	srv.AddVersion(t, srv.CreateSecret(t, "projects/p", "tls", nil), []byte(key+cert))
	p := NewWithClientOptions(srv.ClientOptions()...)
	store := classStore(newNamespace(t), "default", map[string]string{"auth": "provider-adc",
		"secrets": "- resourceName: projects/p/secrets/tls/versions/latest\n  path: tls.pem\n"})
	objs, err := p.ClassObjects(store.Class.Parameters)
	if err != nil || len(objs) != 1 {
		t.Fatalf("ClassObjects = %+v, %v", objs, err)
	}
	c := newClassClientOf(t, p, store)
	for ref, want := range map[provider.Ref]string{objs[0].Ref: key + cert, objs[0].CertRef: cert, objs[0].KeyRef: key} {
		if v, err := c.GetSecret(testContext(t), ref); err != nil || string(v.Data) != want {
			t.Errorf("%s = %q, %v; want %q", ref, v.Data, err, want)
		}
	}
}

// auth provider-adc is keyferry's own identity: a namespaced class using
// it is refused before any client is built, unless the operator grants it;
// pod-adc (the default) is the SecretSync's ServiceAccount.
func TestClassProviderADCIsTheOperatorsIdentity(t *testing.T) {
	const secrets = "- resourceName: projects/p/secrets/s/versions/1\n  path: a\n"
	p := New()
	for _, tc := range []struct {
		name   string
		params map[string]string
		policy provider.Policy
		want   error
	}{
		{name: "pod-adc", params: map[string]string{"secrets": secrets}},
		{name: "provider-adc", params: map[string]string{"secrets": secrets, "auth": "provider-adc"}, want: provider.ErrOperatorIdentity},
		{name: "provider-adc granted", params: map[string]string{"secrets": secrets, "auth": "provider-adc"},
			policy: provider.Policy{AmbientIdentities: []provider.IdentityGrant{{Identity: provider.IdentityGCP, Namespace: "team-a"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := provider.Admit(p, provider.Options{Store: classStore("team-a", "app", tc.params), Namespace: "team-a", Policy: tc.policy})
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Admit = %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), "parameters.auth") {
				t.Errorf("the refusal does not name parameters.auth: %v", err)
			}
		})
	}
}

// metadataServer is what the GCE metadata server of a GKE node answers.
type metadataServer struct {
	project, location, cluster string
	err                        error
}

func (m metadataServer) ProjectIDWithContext(context.Context) (string, error) {
	return m.project, m.err
}
func (m metadataServer) InstanceAttributeValueWithContext(_ context.Context, attr string) (string, error) {
	switch attr {
	case "cluster-location":
		return m.location, m.err
	case "cluster-name":
		return m.cluster, m.err
	}
	return "", errors.New("no such attribute")
}

// pod-adc exchanges tokens of the SecretSync's ServiceAccount whose only
// audience is the workload identity pool of the cluster the metadata
// server names, and impersonates the ServiceAccount's Google service
// account. The exchange at STS itself is not tested: there is no local STS.
func TestClassPodADCUsesTheServiceAccountsWorkloadIdentity(t *testing.T) {
	ns := newNamespace(t)
	createServiceAccount(t, ns, "app", map[string]string{gcpServiceAccountAnnotation: "app@p1.iam.gserviceaccount.com"})
	createServiceAccount(t, ns, "delegating", map[string]string{gcpDelegatesAnnotation: `["x@p.iam.gserviceaccount.com"]`})
	ctx := testContext(t)
	params := map[string]string{"secrets": "- resourceName: projects/p1/secrets/s/versions/latest\n  path: s\n"}
	p := NewWithClientOptions(option.WithEndpoint("127.0.0.1:1"))
	p.metadata = metadataServer{project: "cluster-project", location: "europe-west1", cluster: "prod"}
	opts := provider.Options{Store: classStore(ns, "app", params), Namespace: ns, Kube: kube, Tokens: tokenRequester{clientset}}

	wi, err := p.classWorkloadIdentity(ctx, opts)
	if err != nil {
		t.Fatalf("classWorkloadIdentity: %v", err)
	}
	if want := "identitynamespace:cluster-project.svc.id.goog:https://container.googleapis.com/v1/projects/cluster-project/locations/europe-west1/clusters/prod"; wi.config.STSAudience != want {
		t.Errorf("STS audience = %q, want %q", wi.config.STSAudience, want)
	}
	if !strings.Contains(wi.config.ImpersonationURL, "/serviceAccounts/app@p1.iam.gserviceaccount.com:generateAccessToken") {
		t.Errorf("impersonation URL = %q", wi.config.ImpersonationURL)
	}
	tok, err := wi.tokens.SubjectToken(ctx, nil)
	if err != nil {
		t.Fatalf("SubjectToken: %v", err)
	}
	review, err := clientset.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: tok, Audiences: []string{"cluster-project.svc.id.goog"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenReview: %v", err)
	}
	if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:"+ns+":app" {
		t.Fatalf("the token is not the ServiceAccount's for the pool: %+v", review.Status)
	}
	if got := review.Status.Audiences; len(got) != 1 || got[0] != "cluster-project.svc.id.goog" {
		t.Errorf("token audiences = %v, want only the pool", got)
	}
	// The whole client builds without any call to Google.
	if c := newClassClientOf(t, p, opts.Store); c.(*classClient).creds == nil {
		t.Error("a pod-adc client has no credentials")
	}

	for name, tc := range map[string]struct {
		sa string
		md metadataServer
	}{
		"service account missing":  {sa: "nope", md: metadataServer{project: "cp", location: "l", cluster: "c"}},
		"delegates":                {sa: "delegating", md: metadataServer{project: "cp", location: "l", cluster: "c"}},
		"not on GKE":               {sa: "app", md: metadataServer{err: errors.New("metadata: not defined")}},
		"cluster name not allowed": {sa: "app", md: metadataServer{project: "cp", location: "l", cluster: "a/b"}},
	} {
		p.metadata = tc.md
		_, err := p.NewClient(ctx, provider.Options{Store: classStore(ns, tc.sa, params), Namespace: ns, Kube: kube, Tokens: tokenRequester{clientset}})
		if !errors.Is(err, provider.ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
	}
}

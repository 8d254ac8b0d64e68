package gcpsm

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"google.golang.org/api/option"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testserver/gcpsmemulator"
)

// serviceAccountKey returns a service account key file for a new RSA key,
// and the key.
func serviceAccountKey(t *testing.T) ([]byte, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return keyFile(t, map[string]string{
		"type":           "service_account",
		"project_id":     "p1",
		"private_key_id": "k1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "keyferry@p1.iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      "https://oauth2.googleapis.com/token",
	}), key
}

func keyFile(t *testing.T, fields map[string]string) []byte {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func createSecret(t *testing.T, ns, name string, data map[string][]byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	if err := kube.Create(context.Background(), s); err != nil {
		t.Fatalf("creating secret %s/%s: %v", ns, name, err)
	}
}

func secretRefStore(name, key string) *esv1.GCPSMProvider {
	return &esv1.GCPSMProvider{
		ProjectID: "p1",
		Auth: esv1.GCPSMAuth{SecretRef: &esv1.GCPSMAuthSecretRef{
			SecretAccessKey: esv1.SecretKeySelector{Name: name, Key: key},
		}},
	}
}

// newClientIn builds a client of store g used from namespace ns.
func newClientIn(ctx context.Context, ns string, g *esv1.GCPSMProvider, opts ...option.ClientOption) (provider.Client, error) {
	store := gcpStore(g)
	store.Namespace = ns
	return NewWithClientOptions(opts...).NewClient(ctx, provider.Options{
		Store:     store,
		Namespace: ns,
		Kube:      kube,
		Tokens:    tokenRequester{clientset},
	})
}

// A service account key read from a Secret authenticates real gRPC calls:
// each request carries a JWT signed with that key, for the service account
// and Secret Manager's scope.
func TestServiceAccountKeyFromSecret(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	srv.AddVersion(t, srv.CreateSecret(t, "projects/p1", "db", nil), []byte("hunter2"))
	front := srv.TLS(t)
	ns := newNamespace(t)
	keyJSON, key := serviceAccountKey(t)
	createSecret(t, ns, "gcpsm-secret", map[string][]byte{"secret-access-credentials": keyJSON})
	ctx := testContext(t)

	c, err := newClientIn(ctx, ns, secretRefStore("gcpsm-secret", "secret-access-credentials"), front.ClientOptions()...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer c.Close(ctx)
	if err := c.Validate(ctx); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	v, err := c.GetSecret(ctx, provider.Ref{Key: "db"})
	if err != nil || string(v.Data) != "hunter2" {
		t.Fatalf("GetSecret with a service account key = (%q, %v), want \"hunter2\"", v.Data, err)
	}

	auths := front.Authorizations()
	if len(auths) == 0 {
		t.Fatal("the TLS front saw no request")
	}
	for _, a := range auths {
		claims := verifyJWT(t, strings.TrimPrefix(a, "Bearer "), &key.PublicKey)
		if claims["iss"] != "keyferry@p1.iam.gserviceaccount.com" {
			t.Errorf("JWT issuer = %v, want the key's client_email", claims["iss"])
		}
		if scope, _ := claims["scope"].(string); !strings.Contains(scope, "https://www.googleapis.com/auth/cloud-platform") {
			t.Errorf("JWT scope = %q, want cloud-platform", scope)
		}
	}
}

// verifyJWT checks an RS256 JWT's signature and returns its claims.
func verifyJWT(t *testing.T, token string, pub *rsa.PublicKey) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("authorization %q is not a bearer JWT", token)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("JWT signature: %v", err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("the JWT is not signed by the service account key: %v", err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("JWT claims: %v", err)
	}
	return claims
}

// credentialErrors provokes NewClient errors with credential Secrets that
// hold value (broken keys, wrong types) and returns them.
func credentialErrors(t *testing.T, value string) []error {
	t.Helper()
	ns := newNamespace(t)
	cases := map[string][]byte{
		"not-json":    []byte("not json " + value),
		"wrong-type":  keyFile(t, map[string]string{"type": "authorized_user", "refresh_token": value, "client_secret": value}),
		"bad-key":     keyFile(t, map[string]string{"type": "service_account", "client_email": "a@p1.iam.gserviceaccount.com", "private_key": "-----BEGIN PRIVATE KEY-----\n" + value + "\n-----END PRIVATE KEY-----\n"}),
		"no-key":      keyFile(t, map[string]string{"type": "service_account", "client_email": "a@p1.iam.gserviceaccount.com", "private_key_id": value}),
		"quoted-json": []byte(`{"type": "` + value + `"}`),
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		createSecret(t, ns, name, map[string][]byte{"key": cases[name]})
		_, err := newClientIn(testContext(t), ns, secretRefStore(name, "key"), option.WithEndpoint("127.0.0.1:1"))
		if !errors.Is(err, provider.ErrInvalidConfig) {
			t.Errorf("credential secret %s: got %v, want ErrInvalidConfig", name, err)
		}
		errs = append(errs, err)
	}
	return errs
}

func TestServiceAccountKeyErrors(t *testing.T) {
	for _, err := range credentialErrors(t, canary) {
		assertNoCanary(t, err)
	}

	ns := newNamespace(t)
	createSecret(t, ns, "creds", map[string][]byte{"other": []byte("x")})
	for name, store := range map[string]*esv1.GCPSMProvider{
		"missing secret": secretRefStore("nope", "key"),
		"missing key":    secretRefStore("creds", "key"),
	} {
		_, err := newClientIn(testContext(t), ns, store)
		if !errors.Is(err, provider.ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
	}
}

func workloadIdentityStore(sa string, audiences ...string) *esv1.GCPSMProvider {
	return &esv1.GCPSMProvider{
		ProjectID: "p1",
		Auth: esv1.GCPSMAuth{WorkloadIdentity: &esv1.GCPWorkloadIdentity{
			ServiceAccountRef: esv1.ServiceAccountSelector{Name: sa, Audiences: audiences},
			ClusterProjectID:  "cluster-project",
			ClusterLocation:   "europe-west1",
			ClusterName:       "prod",
		}},
	}
}

func createServiceAccount(t *testing.T, ns, name string, annotations map[string]string) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations}}
	if err := kube.Create(context.Background(), sa); err != nil {
		t.Fatalf("creating service account %s/%s: %v", ns, name, err)
	}
}

// Workload identity reads the ServiceAccount from the API server and
// exchanges TokenRequest tokens for it whose audience is the cluster's
// workload identity pool. The exchange at STS itself is not tested: there is
// no local STS.
func TestWorkloadIdentityServiceAccountTokens(t *testing.T) {
	ns := newNamespace(t)
	createServiceAccount(t, ns, "team-a", map[string]string{gcpServiceAccountAnnotation: "keyferry@p1.iam.gserviceaccount.com"})
	store := workloadIdentityStore("team-a", "extra-audience")
	ctx := testContext(t)
	opts := provider.Options{Store: gcpStore(store), Namespace: ns, Kube: kube, Tokens: tokenRequester{clientset}}
	opts.Store.Namespace = ns

	wi, err := newWorkloadIdentity(ctx, store.Auth.WorkloadIdentity, opts)
	if err != nil {
		t.Fatalf("newWorkloadIdentity: %v", err)
	}
	wantImpersonation := "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/keyferry@p1.iam.gserviceaccount.com:generateAccessToken"
	if wi.config.ImpersonationURL != wantImpersonation {
		t.Errorf("impersonation URL = %q, want %q", wi.config.ImpersonationURL, wantImpersonation)
	}

	tok, err := wi.tokens.SubjectToken(ctx, nil)
	if err != nil {
		t.Fatalf("SubjectToken: %v", err)
	}
	for _, aud := range []string{"cluster-project.svc.id.goog", "extra-audience"} {
		review, err := clientset.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: tok, Audiences: []string{aud}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("TokenReview: %v", err)
		}
		if !review.Status.Authenticated {
			t.Fatalf("the token is not valid for audience %q: %s", aud, review.Status.Error)
		}
		if want := "system:serviceaccount:" + ns + ":team-a"; review.Status.User.Username != want {
			t.Errorf("token subject = %q, want %q", review.Status.User.Username, want)
		}
	}

	// The whole client builds without any call to Google.
	c, err := newClientIn(ctx, ns, store, option.WithEndpoint("127.0.0.1:1"))
	if err != nil {
		t.Fatalf("NewClient with workload identity: %v", err)
	}
	if c.(*Client).creds == nil {
		t.Error("a workload identity client has no credentials")
	}
	_ = c.Close(ctx)
}

func TestWorkloadIdentityErrors(t *testing.T) {
	ns := newNamespace(t)
	createServiceAccount(t, ns, "bad-annotation", map[string]string{gcpServiceAccountAnnotation: "not/an/email"})
	ctx := testContext(t)

	for name, tc := range map[string]struct {
		store  *esv1.GCPSMProvider
		tokens provider.TokenRequester
	}{
		"service account missing": {workloadIdentityStore("nope"), tokenRequester{clientset}},
		"annotation not an email": {workloadIdentityStore("bad-annotation"), tokenRequester{clientset}},
		"no token requester":      {workloadIdentityStore("bad-annotation"), nil},
	} {
		store := gcpStore(tc.store)
		store.Namespace = ns
		_, err := New().NewClient(ctx, provider.Options{Store: store, Namespace: ns, Kube: kube, Tokens: tc.tokens})
		if !errors.Is(err, provider.ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "%!") {
			t.Errorf("%s: badly formatted error %q", name, err)
		}
	}
}

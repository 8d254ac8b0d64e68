package aws_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/go-logr/logr/testr"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/provider"
	awsprovider "github.com/keyferry/keyferry/internal/provider/aws"
	"github.com/keyferry/keyferry/internal/testing/testserver/motoserver"
)

const (
	region = "eu-central-1"
	// ns holds the credential Secrets and ServiceAccounts of the tests.
	ns = "aws-test"
	// credsSecret holds the static credentials every store uses unless a
	// test says otherwise; moto accepts any key.
	credsSecret = "aws-creds"
	accessKeyID = "AKIAKEYFERRYTEST0001"
	// secretKeyCanary is the secret access key: a credential that must
	// never show up in an error.
	secretKeyCanary = "canary-secret-access-key-5c1d"
	// valueCanary is stored in secrets next to the ones tests fail to read:
	// it must never show up in an error either.
	valueCanary = "canary-value-9f3e2a"
)

// env is what TestMain starts once for the package.
var env struct {
	kube   client.Client
	cs     kubernetes.Interface
	moto   *motoserver.Server
	tokens tokenRequester
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	flag.Parse()
	if fuzzing() {
		// The fuzz targets need no servers; each fuzz worker runs TestMain.
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster, err := devcluster.Start(ctx, devcluster.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the control plane: %v\n", err)
		return 1
	}
	defer func() { _ = cluster.Stop() }()
	moto, err := motoserver.Run(ctx, motoserver.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting moto: %v\n", err)
		return 1
	}
	defer moto.Stop()
	env.moto = moto

	if env.kube, err = client.New(cluster.Config, client.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if env.cs, err = kubernetes.NewForConfig(cluster.Config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.tokens = tokenRequester{cs: env.cs}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credsSecret},
			Data: map[string][]byte{
				"access-key":        []byte(accessKeyID + "\n"),
				"secret-access-key": []byte(secretKeyCanary),
			},
		},
	} {
		if err := env.kube.Create(ctx, obj); err != nil {
			fmt.Fprintf(os.Stderr, "creating %T: %v\n", obj, err)
			return 1
		}
	}
	return m.Run()
}

// fuzzing says whether the binary runs (or is a worker of) go test -fuzz.
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// tokenRequester requests ServiceAccount tokens from the control plane.
type tokenRequester struct{ cs kubernetes.Interface }

func (r tokenRequester) ServiceAccountToken(ctx context.Context, namespace, name string, audiences []string, expiry time.Duration) (string, time.Time, error) {
	req := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{Audiences: audiences}}
	if expiry > 0 {
		secs := int64(expiry / time.Second)
		req.Spec.ExpirationSeconds = &secs
	}
	out, err := r.cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, err
	}
	return out.Status.Token, out.Status.ExpirationTimestamp.Time, nil
}

// secretRefAuth is auth.secretRef over the package's credential Secret.
func secretRefAuth() esv1.AWSAuth {
	return esv1.AWSAuth{SecretRef: &esv1.AWSAuthSecretRef{
		AccessKeyID:     esv1.SecretKeySelector{Name: credsSecret, Key: "access-key"},
		SecretAccessKey: esv1.SecretKeySelector{Name: credsSecret, Key: "secret-access-key"},
	}}
}

// store is a SecretStore in ns with spec as its AWS provider.
func store(spec esv1.AWSProvider) provider.Store {
	return provider.Store{
		Kind:      esv1.SecretStoreKind,
		Name:      "aws",
		Namespace: ns,
		Spec:      &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{AWS: &spec}},
	}
}

// recorder is an HTTP client that records every request it sends.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
	rt   http.RoundTripper
}

type recorded struct {
	// Action is the API operation: X-Amz-Target's operation for the JSON
	// services, the Action form field for STS.
	Action string
	// Form is the request body of form-encoded (query protocol) requests.
	Form url.Values
	// Body is the request body of the JSON services' requests.
	Body []byte
	// AccessKey is the access key id that signed the request.
	AccessKey string
}

func newRecorder() *recorder { return &recorder{rt: http.DefaultTransport} }

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	rec := recorded{AccessKey: signingKey(req.Header.Get("Authorization"))}
	if target := req.Header.Get("X-Amz-Target"); target != "" {
		rec.Action = target[strings.LastIndex(target, ".")+1:]
		if req.Body != nil {
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return nil, err
			}
			_ = req.Body.Close()
			req.Body = io.NopCloser(bytes.NewReader(body))
			rec.Body = body
		}
	} else if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil {
			rec.Form, rec.Action = form, form.Get("Action")
		}
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	return (&http.Client{Transport: r.rt}).Do(req)
}

// calls returns the recorded requests of action.
func (r *recorder) calls(action string) []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recorded
	for _, rec := range r.reqs {
		if rec.Action == action {
			out = append(out, rec)
		}
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.reqs = nil
	r.mu.Unlock()
}

// signingKey extracts the access key id from a SigV4 Authorization header.
func signingKey(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(cred, "/")
	return key
}

// motoProvider is the provider pointed at the package's moto, sending
// through rec when it is not nil.
func motoProvider(rec *recorder) *awsprovider.Provider {
	p := &awsprovider.Provider{Endpoints: awsprovider.Endpoints{
		SecretsManager: env.moto.Endpoint(),
		SSM:            env.moto.Endpoint(),
		STS:            env.moto.Endpoint(),
	}}
	if rec != nil {
		p.HTTPClient = rec
	}
	return p
}

// newClient builds a client for spec with the package's credentials unless
// spec has its own auth.
func newClient(t *testing.T, p *awsprovider.Provider, spec esv1.AWSProvider) provider.Client {
	t.Helper()
	if spec.Region == "" {
		spec.Region = region
	}
	if spec.Auth.SecretRef == nil && spec.Auth.JWTAuth == nil {
		spec.Auth = secretRefAuth()
	}
	ctx := context.Background()
	st := store(spec)
	if err := p.ValidateSpec(st); err != nil {
		t.Fatalf("ValidateSpec: %v", err)
	}
	c, err := p.NewClient(ctx, provider.Options{
		Store: st, Namespace: ns, Kube: env.kube, Tokens: env.tokens, Log: testr.New(t),
	})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(ctx) })
	return c
}

// admin clients set moto up for the tests, as an operator of the account
// would.
func adminConfig() aws.Config {
	return aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAADMIN", "admin", ""),
	}
}

func adminSM() *secretsmanager.Client {
	return secretsmanager.NewFromConfig(adminConfig(), func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(env.moto.Endpoint())
	})
}

func adminSSM() *ssm.Client {
	return ssm.NewFromConfig(adminConfig(), func(o *ssm.Options) {
		o.BaseEndpoint = aws.String(env.moto.Endpoint())
	})
}

// assertNoCanary fails the test if err's message holds a canary: a secret
// value, a credential or a token.
func assertNoCanary(t *testing.T, err error, canaries ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, c := range append([]string{valueCanary, secretKeyCanary}, canaries...) {
		if c != "" && strings.Contains(err.Error(), c) {
			t.Fatalf("error leaks a secret (%q): %v", c, err)
		}
	}
}

package azurekv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testflags"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

// canary is part of every secret value and credential the tests use; no
// error may ever contain it.
const canary = "kf-canary-5b1e7c"

// The real Kubernetes API server the tests read credentials from and
// request ServiceAccount tokens of; started once in TestMain.
var (
	kubeConfig *rest.Config
	kube       client.Client
	clientset  *kubernetes.Clientset
	nsCounter  atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testflags.OnlyFuzzing() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, err := devcluster.Start(ctx, devcluster.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "azurekv tests need the local control plane (make control-plane): %v\n", err)
		return 1
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
		}
	}()
	kubeConfig = cluster.Config
	if kube, err = client.New(kubeConfig, client.Options{}); err != nil {
		fmt.Fprintf(os.Stderr, "kubernetes client: %v\n", err)
		return 1
	}
	if clientset, err = kubernetes.NewForConfig(kubeConfig); err != nil {
		fmt.Fprintf(os.Stderr, "kubernetes clientset: %v\n", err)
		return 1
	}
	return m.Run()
}

// tokenRequester requests ServiceAccount tokens through the TokenRequest API
// and counts them.
type tokenRequester struct{ calls atomic.Int64 }

func (r *tokenRequester) ServiceAccountToken(ctx context.Context, ns, name string, aud []string, expiry time.Duration) (string, time.Time, error) {
	r.calls.Add(1)
	req := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{Audiences: aud}}
	if expiry > 0 {
		s := int64(expiry.Seconds())
		req.Spec.ExpirationSeconds = &s
	}
	resp, err := clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, err
	}
	return resp.Status.Token, resp.Status.ExpirationTimestamp.Time, nil
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace creates a namespace of its own for a test.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("azkv-%d", nsCounter.Add(1))
	if err := kube.Create(testContext(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}

func createSecret(t *testing.T, ns, name string, data map[string][]byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	if err := kube.Create(testContext(t), s); err != nil {
		t.Fatalf("creating secret %s/%s: %v", ns, name, err)
	}
}

func createServiceAccount(t *testing.T, ns, name string, annotations map[string]string) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations}}
	if err := kube.Create(testContext(t), sa); err != nil {
		t.Fatalf("creating service account %s/%s: %v", ns, name, err)
	}
}

// newServer starts a test vault with small pages, so listing pages.
func newServer(t *testing.T) *kvserver.Server {
	t.Helper()
	return kvserver.New(t, kvserver.Options{PageSize: 3})
}

// providerFor returns the provider pointed at srv, as the lead's end-to-end
// tests and `keyferry dev` build it. The operator's environment is env.
func providerFor(srv *kvserver.Server, env map[string]string) *Provider {
	return NewWithOptions(Options{
		Transport:                            srv.HTTPClient(),
		AuthorityHost:                        srv.AuthorityHost(),
		DisableChallengeResourceVerification: true,
		LookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
	})
}

func clusterStore(spec *esv1.AzureKVProvider) provider.Store {
	return provider.Store{Kind: esv1.ClusterSecretStoreKind, Name: "azure-keyvault-cluster-store",
		Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{AzureKV: spec}}}
}

func namespacedStore(ns string, spec *esv1.AzureKVProvider) provider.Store {
	return provider.Store{Kind: esv1.SecretStoreKind, Name: "azure-keyvault-ns-store", Namespace: ns,
		Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{AzureKV: spec}}}
}

func options(store provider.Store, ns string, tokens provider.TokenRequester) provider.Options {
	return provider.Options{Store: store, Namespace: ns, Kube: kube, Tokens: tokens}
}

func mustClient(t *testing.T, p *Provider, opts provider.Options) *Client {
	t.Helper()
	c, err := p.NewClient(testContext(t), opts)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	noCanary(t, err)
	return c.(*Client)
}

// noCanary fails the test when err carries a secret value or credential.
func noCanary(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Fatalf("an error leaks a secret value or credential: %v", err)
	}
}

// wantErr checks that err wraps want and leaks nothing.
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one wrapping %q", want)
	}
	noCanary(t, err)
	if !errors.Is(err, want) {
		t.Fatalf("error %q does not wrap %q", err, want)
	}
	t.Logf("expected error: %v", err)
}

func getValue(t *testing.T, c provider.Client, key, version string) provider.Value {
	t.Helper()
	v, err := c.GetSecret(testContext(t), provider.Ref{Key: key, Version: version})
	if err != nil {
		noCanary(t, err)
		t.Fatalf("GetSecret(%q, %q): %v", key, version, err)
	}
	return v
}

func ptr[T any](v T) *T { return &v }

// selfSigned returns a certificate and its key.
func selfSigned(t *testing.T, cn string) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// pemBundle is a certificate and its private key as Azure's portal and ESO
// users keep them: PEM, key and certificate in one file.
func pemBundle(t *testing.T, cert *x509.Certificate, key *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
}

package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testflags"
	"github.com/keyferry/keyferry/internal/testing/testserver/vaultserver"
)

// cluster is the Kubernetes API server of this package's tests: it holds the
// credential Secrets, issues ServiceAccount tokens and reviews them for
// Vault's kubernetes auth.
var cluster struct {
	*devcluster.Cluster
	kube crclient.Client
	cs   kubernetes.Interface
}

var (
	// scheme holds the Kubernetes and external-secrets.io types.
	scheme *runtime.Scheme
	// repoRoot is the repository's root directory.
	repoRoot string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testflags.OnlyFuzzing() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := devcluster.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = root
	scheme = runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := esv1.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The CRDs let the documentation's manifests be applied as they are.
	c, err := devcluster.Start(ctx, devcluster.Options{CRDDirs: []string{filepath.Join(root, "config", "crd")}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the control plane: %v\n", err)
		return 1
	}
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
		}
	}()
	cluster.Cluster = c
	if cluster.kube, err = crclient.New(c.Config, crclient.Options{Scheme: scheme}); err != nil {
		fmt.Fprintf(os.Stderr, "kube client: %v\n", err)
		return 1
	}
	if cluster.cs, err = kubernetes.NewForConfig(c.Config); err != nil {
		fmt.Fprintf(os.Stderr, "kube clientset: %v\n", err)
		return 1
	}
	return m.Run()
}

// tokenRequester requests ServiceAccount tokens through the TokenRequest API.
type tokenRequester struct{ cs kubernetes.Interface }

func (r tokenRequester) ServiceAccountToken(ctx context.Context, ns, name string, aud []string, expiry time.Duration) (string, time.Time, error) {
	req := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{Audiences: aud}}
	if expiry > 0 {
		s := int64(expiry / time.Second)
		req.Spec.ExpirationSeconds = &s
	}
	out, err := r.cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, err
	}
	return out.Status.Token, out.Status.ExpirationTimestamp.Time, nil
}

// env is one test's world: a Vault dev server, a namespace, the secrets the
// test must never see in an error or a log line, and the logs.
type env struct {
	t       *testing.T
	vault   *vaultserver.Server
	ns      string
	secrets []string
	logs    *logBuffer
}

func newEnv(t *testing.T, vopts ...vaultserver.Options) *env {
	t.Helper()
	var o vaultserver.Options
	if len(vopts) > 0 {
		o = vopts[0]
	}
	e := &env{t: t, vault: vaultserver.StartWithOptions(t, o), ns: "t-" + randomHex(4), logs: &logBuffer{}}
	if len(e.vault.RootToken) >= 8 {
		e.secrets = append(e.secrets, e.vault.RootToken)
	}
	createNamespace(t, e.ns)
	t.Cleanup(func() {
		for _, s := range e.secrets {
			if s != "" && strings.Contains(e.logs.String(), s) {
				t.Errorf("a secret value appeared in the provider's logs:\n%s", e.logs.String())
			}
		}
	})
	return e
}

func createNamespace(t *testing.T, ns string) {
	t.Helper()
	if err := cluster.kube.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatalf("creating namespace %s: %v", ns, err)
	}
}

// canary returns a fresh secret value the test must never see in an error.
func (e *env) canary() string {
	c := "canary-" + randomHex(8)
	e.secrets = append(e.secrets, c)
	return c
}

// secret creates a Secret in the test's namespace, registering its values
// as secrets.
func (e *env) secret(name string, data map[string]string) {
	e.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, StringData: data}
	for _, v := range data {
		if len(v) >= 8 {
			e.secrets = append(e.secrets, v)
		}
	}
	ctx := context.Background()
	if err := cluster.kube.Create(ctx, s); err != nil {
		e.t.Fatalf("creating secret %s: %v", name, err)
	}
}

// updateSecret replaces the data of a Secret.
func (e *env) updateSecret(name string, data map[string]string) {
	e.t.Helper()
	ctx := context.Background()
	var s corev1.Secret
	if err := cluster.kube.Get(ctx, crclient.ObjectKey{Namespace: e.ns, Name: name}, &s); err != nil {
		e.t.Fatal(err)
	}
	s.Data, s.StringData = nil, data
	for _, v := range data {
		e.secrets = append(e.secrets, v)
	}
	if err := cluster.kube.Update(ctx, &s); err != nil {
		e.t.Fatalf("updating secret %s: %v", name, err)
	}
}

// store is a SecretStore in the test's namespace with the given provider.
func (e *env) store(v *esv1.VaultProvider) provider.Store {
	return provider.Store{
		Kind:      esv1.SecretStoreKind,
		Name:      "vault",
		Namespace: e.ns,
		Spec:      &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Vault: v}},
	}
}

// spec is a provider on the test's server with the given auth, reading the
// KV v2 engine at secret/.
func (e *env) spec(auth *esv1.VaultAuth) *esv1.VaultProvider {
	return &esv1.VaultProvider{Server: e.vault.Addr, Path: ptr("secret"), Version: esv1.VaultKVStoreV2, Auth: auth, CABundle: e.vault.CACert}
}

// rootAuth stores the root token in a Secret and returns the auth using it.
func (e *env) rootAuth() *esv1.VaultAuth {
	e.t.Helper()
	return e.tokenAuth("root-token", e.vault.RootToken)
}

func (e *env) tokenAuth(secretName, token string) *esv1.VaultAuth {
	e.t.Helper()
	e.secret(secretName, map[string]string{"token": token})
	return &esv1.VaultAuth{TokenSecretRef: &esv1.SecretKeySelector{Name: secretName, Key: "token"}}
}

func (e *env) options(store provider.Store) provider.Options {
	return provider.Options{
		Store:     store,
		Namespace: e.ns,
		Kube:      cluster.kube,
		Tokens:    tokenRequester{cluster.cs},
		Log:       e.logs.logger(),
	}
}

// client builds a client for v and closes it when the test ends.
func (e *env) client(v *esv1.VaultProvider) *client {
	e.t.Helper()
	c, err := e.newClient(v)
	if err != nil {
		e.t.Fatalf("NewClient: %v", err)
	}
	return c
}

func (e *env) newClient(v *esv1.VaultProvider) (*client, error) {
	e.t.Helper()
	ctx := context.Background()
	store := e.store(v)
	p := New()
	if err := p.ValidateSpec(store); err != nil {
		e.t.Fatalf("ValidateSpec: %v", err)
	}
	pc, err := p.NewClient(ctx, e.options(store))
	if err != nil {
		e.noLeak(err)
		return nil, err
	}
	e.t.Cleanup(func() {
		if err := pc.Close(context.Background()); err != nil {
			e.t.Errorf("Close: %v", err)
		}
	})
	return pc.(*client), nil
}

// get reads key and fails the test on error.
func (e *env) get(c provider.Client, key string) provider.Value {
	e.t.Helper()
	v, err := c.GetSecret(context.Background(), provider.Ref{Key: key})
	if err != nil {
		e.noLeak(err)
		e.t.Fatalf("GetSecret(%s): %v", key, err)
	}
	return v
}

// wantErr checks that err wraps target and carries no secret value.
func (e *env) wantErr(err, target error) {
	e.t.Helper()
	if err == nil {
		e.t.Fatalf("want an error wrapping %v, got none", target)
	}
	e.noLeak(err)
	if !errors.Is(err, target) {
		e.t.Fatalf("want an error wrapping %q, got: %v", target, err)
	}
	e.t.Logf("expected error: %v", err)
}

// noLeak fails the test when err's message holds a secret value.
func (e *env) noLeak(err error) {
	e.t.Helper()
	if err == nil {
		return
	}
	for _, s := range e.secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			e.t.Fatalf("error message leaks a secret value: %v", err)
		}
	}
}

// logBuffer collects the provider's logs at every verbosity.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		fmt.Fprintln(&b.buf, prefix, args)
	}, funcr.Options{Verbosity: 10})
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func ptr[T any](v T) *T { return &v }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

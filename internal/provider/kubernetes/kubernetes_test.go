package kubernetes_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
	k8sprovider "github.com/keyferry/keyferry/internal/provider/kubernetes"
	"github.com/keyferry/keyferry/internal/testing/testflags"
)

// canary is part of secret values and credentials; it must never appear in
// an error.
const canary = "kf-canary-5c0ffee"

const (
	storeNS  = "kf-store" // where the stores and their credentials live
	allowNS  = "team-a"   // the reader may get and list secrets here
	deniedNS = "team-b"   // the reader has no access here
	reader   = "reader"   // ServiceAccount in storeNS
	certUser = "cert-reader"
)

// fixture is what TestMain sets up once on the real API server.
type fixture struct {
	cluster *devcluster.Cluster
	admin   clientset.Interface
	kube    client.Client
	// readerToken is a TokenRequest token of storeNS/reader.
	readerToken string
}

var fx fixture

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
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	c, err := devcluster.Start(ctx, devcluster.Options{CRDDirs: []string{filepath.Join(root, "config", "crd")}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the Kubernetes control plane: %v\n", err)
		return 1
	}
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
		}
	}()
	if err := setup(ctx, c); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: setting up the fixture: %v\n", err)
		return 1
	}
	return m.Run()
}

// dbData is the data of team-a/db and team-b/db: binary, HTML-ish and
// canary-bearing values.
func dbData() map[string][]byte {
	return map[string][]byte{
		"username": []byte("admin"),
		"password": []byte(canary + "-pw"),
		"bin":      {0xff, 0x00, 0xfe},
		"html":     []byte("<a&b>"),
	}
}

func setup(ctx context.Context, c *devcluster.Cluster) error {
	admin, err := clientset.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	kube, err := client.New(c.Config, client.Options{})
	if err != nil {
		return err
	}
	fx = fixture{cluster: c, admin: admin, kube: kube}

	for _, ns := range []string{storeNS, allowNS, deniedNS} {
		if err := kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	remote := []*corev1.Secret{
		secret(allowNS, "db", map[string]string{"app": "shop"}, dbData()),
		secret(allowNS, "db-replica", map[string]string{"app": "shop", "tier": "replica"}, map[string][]byte{"password": []byte(canary + "-replica")}),
		secret(allowNS, "cache", map[string]string{"app": "cache"}, map[string][]byte{"url": []byte("redis://cache")}),
		secret(allowNS, "empty", nil, nil),
		secret(deniedNS, "db", map[string]string{"app": "shop"}, dbData()),
	}
	for _, s := range remote {
		if err := kube.Create(ctx, s); err != nil {
			return err
		}
	}

	// The reader ServiceAccount and the certificate user may read team-a.
	if err := kube.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: storeNS, Name: reader}}); err != nil {
		return err
	}
	if err := kube.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: allowNS, Name: "secret-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}},
	}); err != nil {
		return err
	}
	if err := kube.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: allowNS, Name: "secret-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secret-reader"},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.ServiceAccountKind, Namespace: storeNS, Name: reader},
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: certUser},
		},
	}); err != nil {
		return err
	}

	// Credentials the stores name, all in storeNS.
	tok, _, err := (&tokenRequester{cs: admin}).ServiceAccountToken(ctx, storeNS, reader, nil, time.Hour)
	if err != nil {
		return err
	}
	fx.readerToken = tok
	certCfg, err := c.AddUser(certUser)
	if err != nil {
		return err
	}
	kubeconfig, err := kubeconfigFor(certCfg)
	if err != nil {
		return err
	}
	creds := []client.Object{
		// A trailing newline, as `kubectl create secret --from-file` leaves.
		secret(storeNS, "reader-token", nil, map[string][]byte{"token": []byte(tok + "\n")}),
		secret(storeNS, "wrong-token", nil, map[string][]byte{"token": []byte(canary + "-token")}),
		secret(storeNS, "reader-cert", nil, map[string][]byte{"tls.crt": certCfg.CertData, "tls.key": certCfg.KeyData}),
		secret(storeNS, "bad-cert", nil, map[string][]byte{"tls.crt": []byte(canary + "-cert"), "tls.key": []byte(canary + "-key")}),
		secret(storeNS, "remote-kubeconfig", nil, map[string][]byte{
			"kubeconfig": kubeconfig,
			"garbage":    []byte("apiVersion: v1\nkind: Config\nusers: " + canary + ": [\n"),
			"exec": []byte(`apiVersion: v1
kind: Config
current-context: x
contexts: [{name: x, context: {cluster: x, user: x}}]
clusters: [{name: x, cluster: {server: "` + c.Config.Host + `"}}]
users: [{name: x, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: [-c, "echo ` + canary + `"]}}}]
`),
		}),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: storeNS, Name: "cluster-ca"}, Data: map[string]string{"ca.crt": string(c.Config.CAData)}},
	}
	for _, o := range creds {
		if err := kube.Create(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

func secret(ns, name string, labels map[string]string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, Data: data}
}

func kubeconfigFor(cfg *rest.Config) ([]byte, error) {
	return clientcmd.Write(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"remote": {Server: cfg.Host, CertificateAuthorityData: cfg.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"reader": {ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}},
		Contexts:       map[string]*clientcmdapi.Context{"remote": {Cluster: "remote", AuthInfo: "reader"}},
		CurrentContext: "remote",
	})
}

// tokenRequester requests ServiceAccount tokens from the real API server.
// With expired set it reports each token as already expired, so a client
// must request a new one for every call.
type tokenRequester struct {
	cs      clientset.Interface
	expired bool
	calls   atomic.Int32
}

func (r *tokenRequester) ServiceAccountToken(ctx context.Context, ns, name string, audiences []string, expiry time.Duration) (string, time.Time, error) {
	r.calls.Add(1)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences}}
	if expiry > 0 {
		secs := int64(expiry / time.Second)
		req.Spec.ExpirationSeconds = &secs
	}
	res, err := r.cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, err
	}
	if r.expired {
		return res.Status.Token, time.Now(), nil
	}
	return res.Status.Token, res.Status.ExpirationTimestamp.Time, nil
}

// options returns provider options for a store of the given kind in
// storeNS (a ClusterSecretStore is used from storeNS).
func options(kind string, spec esv1.KubernetesProvider, tokens provider.TokenRequester) provider.Options {
	st := provider.Store{Kind: kind, Name: "k8s", Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Kubernetes: &spec}}}
	if kind == esv1.SecretStoreKind {
		st.Namespace = storeNS
	}
	if tokens == nil {
		tokens = &tokenRequester{cs: fx.admin}
	}
	return provider.Options{Store: st, Namespace: storeNS, Kube: fx.kube, Tokens: tokens, Log: logr.Discard()}
}

// remoteServer is server.url and caBundle of the test cluster.
func remoteServer() esv1.KubernetesServer {
	return esv1.KubernetesServer{URL: fx.cluster.Config.Host, CABundle: fx.cluster.Config.CAData}
}

func tokenAuth(secretName string) *esv1.KubernetesAuth {
	return &esv1.KubernetesAuth{Token: &esv1.TokenAuth{BearerToken: esv1.SecretKeySelector{Name: secretName, Key: "token"}}}
}

func newClient(t *testing.T, p provider.Provider, opts provider.Options) provider.Client {
	t.Helper()
	ctx := context.Background()
	c, err := p.NewClient(ctx, opts)
	if err != nil {
		assertClean(t, err)
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// assertClean fails when err carries a secret value or a credential.
func assertClean(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{canary, fx.readerToken} {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error leaks a secret value or credential: %v", err)
		}
	}
}

// wantErr checks that err wraps want and leaks nothing.
func wantErr(t *testing.T, err, want error, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error wrapping %q, got none", want)
	}
	assertClean(t, err)
	t.Logf("error: %v", err)
	if !errors.Is(err, want) {
		t.Fatalf("want an error wrapping %q, got: %v", want, err)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error should mention %q: %v", s, err)
		}
	}
}

// checkDB checks a value read from a db Secret: exact bytes in Fields, and
// ESO's JSON (sorted keys, no HTML escaping) in Data.
func checkDB(t *testing.T, v provider.Value) {
	t.Helper()
	want := dbData()
	if len(v.Fields) != len(want) {
		t.Fatalf("fields: got %d keys, want %d", len(v.Fields), len(want))
	}
	for k, w := range want {
		if got, ok := v.Fields[k]; !ok || string(got) != string(w) {
			t.Errorf("field %q: got %q, want %q", k, got, w)
		}
	}
	wantJSON := `{"bin":"\ufffd\u0000\ufffd","html":"<a&b>","password":"` + canary + `-pw","username":"admin"}`
	if string(v.Data) != wantJSON {
		t.Errorf("data:\n got %s\nwant %s", v.Data, wantJSON)
	}
	if v.Version != "" {
		t.Errorf("version: got %q, want none", v.Version)
	}
}

func TestSameClusterReadsWithOwnIdentity(t *testing.T) {
	ctx := context.Background()
	p := k8sprovider.New(fx.cluster.Config)

	t.Run("SecretStore reads its own namespace", func(t *testing.T) {
		opts := options(esv1.SecretStoreKind, esv1.KubernetesProvider{RemoteNamespace: allowNS}, nil)
		opts.Store.Namespace, opts.Namespace = allowNS, allowNS
		c := newClient(t, p, opts)
		v, err := c.GetSecret(ctx, provider.Ref{Key: "db"})
		if err != nil {
			assertClean(t, err)
			t.Fatal(err)
		}
		checkDB(t, v)
		if err := c.Validate(ctx); err != nil {
			t.Fatalf("Validate: %v", err)
		}
	})

	t.Run("ClusterSecretStore reads any namespace", func(t *testing.T) {
		c := newClient(t, p, options(esv1.ClusterSecretStoreKind, esv1.KubernetesProvider{RemoteNamespace: deniedNS, Server: esv1.KubernetesServer{URL: "kubernetes.default"}}, nil))
		v, err := c.GetSecret(ctx, provider.Ref{Key: "db"})
		if err != nil {
			assertClean(t, err)
			t.Fatal(err)
		}
		checkDB(t, v)
	})

	t.Run("SecretStore may not read another namespace", func(t *testing.T) {
		_, err := p.NewClient(ctx, options(esv1.SecretStoreKind, esv1.KubernetesProvider{RemoteNamespace: allowNS}, nil))
		wantErr(t, err, provider.ErrInvalidConfig, storeNS, allowNS)
	})

	t.Run("without its own configuration", func(t *testing.T) {
		_, err := k8sprovider.New(nil).NewClient(ctx, options(esv1.ClusterSecretStoreKind, esv1.KubernetesProvider{RemoteNamespace: allowNS}, nil))
		wantErr(t, err, provider.ErrInvalidConfig)
	})
}

func TestTokenAuth(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, esv1.KubernetesProvider{
		Server: remoteServer(), Auth: tokenAuth("reader-token"), RemoteNamespace: allowNS,
	}, nil))
	v, err := c.GetSecret(ctx, provider.Ref{Key: "db"})
	if err != nil {
		assertClean(t, err)
		t.Fatal(err)
	}
	checkDB(t, v)
	if err := c.Validate(ctx); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

// After the API server refuses a token, the next call reads the Secret
// again, so rotating the token needs no new client.
func TestRotatedTokenIsPickedUp(t *testing.T) {
	ctx := context.Background()
	s := secret(storeNS, "rotating-token", nil, map[string][]byte{"token": []byte(canary + "-old")})
	if err := fx.kube.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, esv1.KubernetesProvider{
		Server: remoteServer(), Auth: tokenAuth("rotating-token"), RemoteNamespace: allowNS,
	}, nil))
	_, err := c.GetSecret(ctx, provider.Ref{Key: "db"})
	wantErr(t, err, provider.ErrUnauthenticated)

	s.Data = map[string][]byte{"token": []byte(fx.readerToken)}
	if err := fx.kube.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	v, err := c.GetSecret(ctx, provider.Ref{Key: "db"})
	if err != nil {
		assertClean(t, err)
		t.Fatalf("the rotated token was not used: %v", err)
	}
	checkDB(t, v)
}

// The reader may read team-a; a store pointing it at team-b is denied, and
// says who was denied what.
func TestCrossNamespaceReadIsForbidden(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, esv1.KubernetesProvider{
		Server: remoteServer(), Auth: tokenAuth("reader-token"), RemoteNamespace: deniedNS,
	}, nil))
	_, err := c.GetSecret(ctx, provider.Ref{Key: "db"})
	wantErr(t, err, provider.ErrForbidden, `"db"`, `namespace "team-b"`, "system:serviceaccount:kf-store:reader", "cannot get", "token from secret kf-store/reader-token")
	_, err = fetch.FindIn(ctx, c, provider.Find{Name: ".*"})
	wantErr(t, err, provider.ErrForbidden, "cannot list", deniedNS)
	err = c.Validate(ctx)
	wantErr(t, err, provider.ErrForbidden, "may not get secrets", deniedNS)
}

func TestServiceAccountAuth(t *testing.T) {
	ctx := context.Background()
	spec := esv1.KubernetesProvider{
		Server:          remoteServer(),
		Auth:            &esv1.KubernetesAuth{ServiceAccount: &esv1.ServiceAccountSelector{Name: reader}},
		RemoteNamespace: allowNS,
	}

	t.Run("reads", func(t *testing.T) {
		c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, spec, nil))
		v, err := c.GetSecret(ctx, provider.Ref{Key: "db"})
		if err != nil {
			assertClean(t, err)
			t.Fatal(err)
		}
		checkDB(t, v)
		if err := c.Validate(ctx); err != nil {
			t.Fatalf("Validate: %v", err)
		}
	})

	t.Run("renews an expiring token", func(t *testing.T) {
		tokens := &tokenRequester{cs: fx.admin, expired: true}
		c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, spec, tokens))
		for i := range 2 {
			before := tokens.calls.Load()
			if _, err := c.GetSecret(ctx, provider.Ref{Key: "db"}); err != nil {
				assertClean(t, err)
				t.Fatalf("read %d: %v", i, err)
			}
			if after := tokens.calls.Load(); after <= before {
				t.Fatalf("read %d used an expired token: %d token requests before, %d after", i, before, after)
			}
		}
	})

	t.Run("missing service account", func(t *testing.T) {
		missing := spec
		missing.Auth = &esv1.KubernetesAuth{ServiceAccount: &esv1.ServiceAccountSelector{Name: "nobody"}}
		_, err := k8sprovider.New(nil).NewClient(ctx, options(esv1.SecretStoreKind, missing, nil))
		if err == nil || !strings.Contains(err.Error(), "service account kf-store/nobody") {
			t.Fatalf("want an error naming the service account, got %v", err)
		}
		assertClean(t, err)
	})
}

func TestCertAuth(t *testing.T) {
	ctx := context.Background()
	cert := &esv1.KubernetesAuth{Cert: &esv1.CertAuth{
		ClientCert: esv1.SecretKeySelector{Name: "reader-cert", Key: "tls.crt"},
		ClientKey:  esv1.SecretKeySelector{Name: "reader-cert", Key: "tls.key"},
	}}
	// The CA comes from a ConfigMap through caProvider.
	server := esv1.KubernetesServer{URL: fx.cluster.Config.Host, CAProvider: &esv1.CAProvider{Type: esv1.CAProviderTypeConfigMap, Name: "cluster-ca", Key: "ca.crt"}}

	t.Run("reads", func(t *testing.T) {
		c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, esv1.KubernetesProvider{Server: server, Auth: cert, RemoteNamespace: allowNS}, nil))
		v, err := c.GetSecret(ctx, provider.Ref{Key: "db"})
		if err != nil {
			assertClean(t, err)
			t.Fatal(err)
		}
		checkDB(t, v)
		if err := c.Validate(ctx); err != nil {
			t.Fatalf("Validate: %v", err)
		}
	})

	t.Run("denied in another namespace", func(t *testing.T) {
		c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, esv1.KubernetesProvider{Server: server, Auth: cert, RemoteNamespace: deniedNS}, nil))
		_, err := c.GetSecret(ctx, provider.Ref{Key: "db"})
		wantErr(t, err, provider.ErrForbidden, `User "cert-reader"`)
	})

	t.Run("invalid certificate material", func(t *testing.T) {
		bad := &esv1.KubernetesAuth{Cert: &esv1.CertAuth{
			ClientCert: esv1.SecretKeySelector{Name: "bad-cert", Key: "tls.crt"},
			ClientKey:  esv1.SecretKeySelector{Name: "bad-cert", Key: "tls.key"},
		}}
		_, err := k8sprovider.New(nil).NewClient(ctx, options(esv1.SecretStoreKind, esv1.KubernetesProvider{Server: server, Auth: bad, RemoteNamespace: allowNS}, nil))
		wantErr(t, err, provider.ErrInvalidConfig, "kf-store/bad-cert")
	})
}

func TestAuthRefKubeconfig(t *testing.T) {
	ctx := context.Background()
	ref := func(key string) esv1.KubernetesProvider {
		return esv1.KubernetesProvider{AuthRef: &esv1.SecretKeySelector{Name: "remote-kubeconfig", Key: key}, RemoteNamespace: allowNS}
	}

	t.Run("reads", func(t *testing.T) {
		c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, ref("kubeconfig"), nil))
		v, err := c.GetSecret(ctx, provider.Ref{Key: "db"})
		if err != nil {
			assertClean(t, err)
			t.Fatal(err)
		}
		checkDB(t, v)
		if err := c.Validate(ctx); err != nil {
			t.Fatalf("Validate: %v", err)
		}
	})

	t.Run("not a kubeconfig", func(t *testing.T) {
		_, err := k8sprovider.New(nil).NewClient(ctx, options(esv1.SecretStoreKind, ref("garbage"), nil))
		wantErr(t, err, provider.ErrInvalidConfig, "kf-store/remote-kubeconfig", `"garbage"`)
	})

	t.Run("exec plugins are refused", func(t *testing.T) {
		_, err := k8sprovider.New(nil).NewClient(ctx, options(esv1.SecretStoreKind, ref("exec"), nil))
		wantErr(t, err, provider.ErrInvalidConfig, "exec credential plugin")
	})

	t.Run("missing key", func(t *testing.T) {
		_, err := k8sprovider.New(nil).NewClient(ctx, options(esv1.SecretStoreKind, ref("nope"), nil))
		wantErr(t, err, provider.ErrInvalidConfig, `"nope"`)
	})
}

func TestGetSecret(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, esv1.KubernetesProvider{
		Server: remoteServer(), Auth: tokenAuth("reader-token"), RemoteNamespace: allowNS,
	}, nil))

	t.Run("not found", func(t *testing.T) {
		_, err := c.GetSecret(ctx, provider.Ref{Key: "missing"})
		wantErr(t, err, provider.ErrNotFound, `"missing"`, allowNS)
	})

	t.Run("a version is not supported", func(t *testing.T) {
		_, err := c.GetSecret(ctx, provider.Ref{Key: "db", Version: "1"})
		wantErr(t, err, provider.ErrNotSupported, "version")
	})

	t.Run("a Secret without data is an empty object", func(t *testing.T) {
		v, err := c.GetSecret(ctx, provider.Ref{Key: "empty"})
		if err != nil {
			t.Fatal(err)
		}
		if string(v.Data) != "{}" || v.Fields == nil || len(v.Fields) != 0 {
			t.Fatalf("got data %s fields %v, want {} and no fields", v.Data, v.Fields)
		}
	})
}

func TestFind(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, esv1.KubernetesProvider{
		Server: remoteServer(), Auth: tokenAuth("reader-token"), RemoteNamespace: allowNS,
	}, nil))
	tests := []struct {
		name string
		find provider.Find
		want []string
	}{
		{"everything", provider.Find{}, []string{"cache", "db", "db-replica", "empty"}},
		{"name regexp", provider.Find{Name: "^db"}, []string{"db", "db-replica"}},
		{"name regexp anywhere in the name", provider.Find{Name: "ach"}, []string{"cache"}},
		{"tags are labels", provider.Find{Tags: map[string]string{"app": "shop"}}, []string{"db", "db-replica"}},
		{"all tags must match", provider.Find{Tags: map[string]string{"app": "shop", "tier": "replica"}}, []string{"db-replica"}},
		{"name and tags together", provider.Find{Name: "^db$", Tags: map[string]string{"app": "shop"}}, []string{"db"}},
		{"path is a name prefix", provider.Find{Path: "db-"}, []string{"db-replica"}},
		{"nothing matches", provider.Find{Tags: map[string]string{"app": "none"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fetch.FindIn(ctx, c, tt.find)
			if err != nil {
				assertClean(t, err)
				t.Fatal(err)
			}
			names := make([]string, 0, len(got))
			for n := range got {
				names = append(names, n)
			}
			sort.Strings(names)
			if strings.Join(names, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, want %v", names, tt.want)
			}
			if d, ok := got["db-replica"]; ok && string(d) != `{"password":"`+canary+`-replica"}` {
				t.Errorf("db-replica: got %s", d)
			}
		})
	}

	t.Run("invalid regexp", func(t *testing.T) {
		_, err := fetch.FindIn(ctx, c, provider.Find{Name: "("})
		wantErr(t, err, provider.ErrInvalidConfig)
	})
	t.Run("invalid tag", func(t *testing.T) {
		_, err := fetch.FindIn(ctx, c, provider.Find{Tags: map[string]string{"not a label": "x"}})
		wantErr(t, err, provider.ErrInvalidConfig)
	})
}

func TestMissingCredentialSecret(t *testing.T) {
	_, err := k8sprovider.New(nil).NewClient(context.Background(), options(esv1.SecretStoreKind, esv1.KubernetesProvider{
		Server: remoteServer(), Auth: tokenAuth("no-such-secret"), RemoteNamespace: allowNS,
	}, nil))
	wantErr(t, err, provider.ErrInvalidConfig, "auth.token.bearerToken", "kf-store/no-such-secret")
}

func TestWrongTokenIsUnauthenticated(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, esv1.KubernetesProvider{
		Server: remoteServer(), Auth: tokenAuth("wrong-token"), RemoteNamespace: allowNS,
	}, nil))
	_, err := c.GetSecret(ctx, provider.Ref{Key: "db"})
	wantErr(t, err, provider.ErrUnauthenticated, "kf-store/wrong-token")
	wantErr(t, c.Validate(ctx), provider.ErrUnauthenticated)
}

func TestUnreachableServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A port that was just free and is now closed refuses connections.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, esv1.KubernetesProvider{
		Server: esv1.KubernetesServer{URL: "https://" + addr, CABundle: fx.cluster.Config.CAData}, Auth: tokenAuth("reader-token"), RemoteNamespace: allowNS,
	}, nil))
	_, err = c.GetSecret(ctx, provider.Ref{Key: "db"})
	wantErr(t, err, provider.ErrUnreachable, addr)
	wantErr(t, c.Validate(ctx), provider.ErrUnreachable)
}

func TestUntrustedServerCertificate(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, esv1.KubernetesProvider{
		Server: esv1.KubernetesServer{URL: fx.cluster.Config.Host, CABundle: otherCA(t)}, Auth: tokenAuth("reader-token"), RemoteNamespace: allowNS,
	}, nil))
	_, err := c.GetSecret(ctx, provider.Ref{Key: "db"})
	wantErr(t, err, provider.ErrInvalidConfig, "caBundle")
}

// otherCA returns a PEM CA certificate that did not sign the test cluster's.
func otherCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "unrelated CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// Package azure holds keyferry's end-to-end tests of the Azure Key Vault
// provider: the real kube-apiserver and etcd, the operator in-process with
// the azurekv provider, and the in-repo Key Vault + Entra ID test server
// (internal/testing/testserver/azurekv) that the official Azure SDK talks to
// unchanged. Manifests name real vault URLs such as
// https://zaldre.vault.azure.net/; a transport sends those hosts to the
// test vault, as DNS sends them to Azure.
package azure

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/kube"
	"github.com/keyferry/keyferry/internal/manifest"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/azurekv"
	"github.com/keyferry/keyferry/internal/provider/fake"
	"github.com/keyferry/keyferry/internal/testing/maintb"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

const (
	// tenantID is the tenant of examples/azure-key-vault and of the test
	// server.
	tenantID = "9b05fdb9-40c0-4f4a-a654-386013ae7d6a"
	// vaultURL is the vault of examples/azure-key-vault; stores written by
	// the tests use it too.
	vaultURL = "https://zaldre.vault.azure.net/"
	// exampleDir is applied as it is.
	exampleDir = "examples/azure-key-vault"

	// canary is part of every value the vault holds and of every
	// credential the tests create: it must never appear in the operator's
	// logs, an Event or a status.
	canary = "kf-akv-canary-3f9d2c"

	// The operator's own workload identity (AZURE_CLIENT_ID,
	// AZURE_FEDERATED_TOKEN_FILE), used by the example's WorkloadIdentity
	// SecretStore, which has no serviceAccountRef.
	operatorNamespace      = "keyferry-system"
	operatorServiceAccount = "keyferry"
	operatorClientID       = "0c7d2f4e-5b8a-4e61-9f3d-2a1b6c8e7d90"
)

var (
	env    *testenv.Env
	srv    *kvserver.Server
	router *kvserver.Router
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tb := &maintb.TB{}
	defer tb.RunCleanups()
	tokenDir, err := os.MkdirTemp("", "keyferry-azure-identity-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the token directory:", err)
		return 1
	}
	defer os.RemoveAll(tokenDir)
	tokenFile := filepath.Join(tokenDir, "azure-identity-token")
	operatorEnv := map[string]string{
		"AZURE_CLIENT_ID":            operatorClientID,
		"AZURE_FEDERATED_TOKEN_FILE": tokenFile,
	}

	if err := tb.Do(func() {
		// Small pages, so that listing (dataFrom.find) follows nextLinks.
		srv = kvserver.New(tb, kvserver.Options{TenantID: tenantID, VaultName: "zaldre", PageSize: 5})
	}); err != nil {
		fmt.Fprintln(os.Stderr, "starting the Key Vault test server:", err)
		return 1
	}
	router = srv.Router()
	reg := provider.NewRegistry()
	reg.Register("fake", fake.New())
	reg.Register(azurekv.Name, azurekv.NewWithOptions(azurekv.Options{
		Transport:     router,
		AuthorityHost: srv.AuthorityHost(),
		LookupEnv: func(k string) (string, bool) {
			v, ok := operatorEnv[k]
			return v, ok
		},
	}))

	env, err = testenv.Start(testenv.Options{Registry: reg, ControllerManager: false, Operator: func(o *operator.Options) {
		// The post's WorkloadIdentity SecretStore in my-namespace uses the
		// operator's own identity: the platform allows that namespace only.
		o.StorePolicy.AmbientIdentities = []provider.IdentityGrant{{Identity: provider.IdentityAzure, Namespace: "my-namespace"}}
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test environment:", err)
		return 1
	}
	defer env.Stop()
	if err := setup(tb, tokenFile); err != nil {
		fmt.Fprintln(os.Stderr, "setting up Entra ID principals:", err)
		return 1
	}
	return m.Run()
}

// setup registers the principals examples/azure-key-vault uses and gives
// the operator its workload identity token, as the Azure workload identity
// webhook would in the operator's pod.
func setup(tb *maintb.TB, tokenFile string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The post's azure-credentials Secret, as applied. Its placeholders are
	// under data:, so Kubernetes reads them as base64 ("YOURCLIENTID" is
	// valid base64 for 9 bytes): register the service principal those bytes
	// name.
	objs, err := manifest.Read(filepath.Join(env.Root, exampleDir, "10-azure-credentials.yaml"))
	if err != nil {
		return err
	}
	if len(objs) != 1 {
		return fmt.Errorf("10-azure-credentials.yaml holds %d objects, want 1", len(objs))
	}
	data, _, _ := unstructuredStringMap(objs[0].Object, "data")
	clientID, err := base64.StdEncoding.DecodeString(data["client-id"])
	if err != nil {
		return fmt.Errorf("decoding client-id: %w", err)
	}
	clientSecret, err := base64.StdEncoding.DecodeString(data["client-secret"])
	if err != nil {
		return fmt.Errorf("decoding client-secret: %w", err)
	}
	srv.AddApp(kvserver.App{ClientID: string(clientID), ClientSecret: string(clientSecret), Access: kvserver.ReadAll})
	// The vault knows a caller by its access token's appid claim, which is
	// JSON: bytes that are not UTF-8 come back as U+FFFD. Grant that
	// spelling the same access (no credential: it cannot sign in).
	if alias := jsonRoundTrip(string(clientID)); alias != string(clientID) {
		srv.AddApp(kvserver.App{ClientID: alias, Access: kvserver.ReadAll})
	}

	// The operator's workload identity.
	var issuer string
	if err := tb.Do(func() { issuer = srv.TrustKubernetesIssuer(ctx, tb, env.Cluster.Config) }); err != nil {
		return err
	}
	srv.AddApp(kvserver.App{
		ClientID:  operatorClientID,
		Federated: []kvserver.FederatedCredential{{Issuer: issuer, Subject: serviceAccountSubject(operatorNamespace, operatorServiceAccount)}},
		Access:    kvserver.ReadAll,
	})
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}); err != nil {
		return err
	}
	if err := env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: operatorServiceAccount}}); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(env.Cluster.Config)
	if err != nil {
		return err
	}
	tokens := &kube.TokenRequester{Client: cs}
	tok, _, err := tokens.ServiceAccountToken(ctx, operatorNamespace, operatorServiceAccount, []string{azurekv.TokenExchangeAudience}, time.Hour)
	if err != nil {
		return fmt.Errorf("requesting the operator's token: %w", err)
	}
	return os.WriteFile(tokenFile, []byte(tok), 0o600)
}

func serviceAccountSubject(ns, name string) string {
	return "system:serviceaccount:" + ns + ":" + name
}

func jsonRoundTrip(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

func unstructuredStringMap(obj map[string]any, field string) (map[string]string, bool, error) {
	raw, ok := obj[field].(map[string]any)
	if !ok {
		return nil, false, nil
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		s, ok := v.(string)
		if !ok {
			return nil, true, fmt.Errorf("%s.%s is not a string", field, k)
		}
		out[k] = s
	}
	return out, true, nil
}

// --- helpers ---------------------------------------------------------------

// assertNoLeak fails when the canary appears in the operator's logs, in
// the Events about the ExternalSecrets named, or in their status.
func assertNoLeak(t *testing.T, ns string, names ...string) {
	t.Helper()
	env.AssertNoLeak(t, canary)
	ctx := context.Background()
	for _, name := range names {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			t.Fatalf("listing Events of %s/%s: %v", ns, name, err)
		}
		for _, ev := range evs {
			if strings.Contains(ev.Note, canary) || strings.Contains(ev.Reason, canary) {
				t.Fatalf("a secret value appeared in Event %s of %s/%s", ev.Reason, ns, name)
			}
		}
		var es esv1.ExternalSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &es); err != nil {
			t.Fatalf("reading ExternalSecret %s/%s: %v", ns, name, err)
		}
		b, err := json.Marshal(es.Status)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), canary) {
			t.Fatalf("a secret value appeared in the status of %s/%s", ns, name)
		}
	}
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// newClientID returns a fresh client ID (a UUID, as Entra ID's).
func newClientID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := fmt.Sprintf("%x", b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// servicePrincipalStore registers a service principal with a client
// secret and returns its client ID and the manifests of its credentials
// Secret and a SecretStore named name that uses them.
func servicePrincipalStore(t *testing.T, name string, access kvserver.Access) (string, string) {
	t.Helper()
	clientID := newClientID()
	secret := "s3cret-" + canary + "-" + name
	srv.AddApp(kvserver.App{ClientID: clientID, ClientSecret: secret, Access: access})
	return clientID, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %[1]s-credentials
type: Opaque
stringData:
  client-id: %[2]s
  client-secret: %[3]s
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: %[1]s
spec:
  provider:
    azurekv:
      tenantId: %[4]q
      vaultUrl: %[5]q
      authSecretRef:
        clientId: {name: %[1]s-credentials, key: client-id}
        clientSecret: {name: %[1]s-credentials, key: client-secret}
`, name, clientID, secret, tenantID, vaultURL)
}

// selfSigned returns a certificate and its private key.
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

// pemBundle is a private key and its certificate in one PEM file, as
// authSecretRef.clientCertificate holds them.
func pemBundle(t *testing.T, cert *x509.Certificate, key *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
}

// indent indents every line of s by n spaces (for block scalars in YAML).
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n")
}

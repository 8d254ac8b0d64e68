// Package providers holds keyferry's end-to-end tests of the AWS, GCP and
// Vault providers: the real kube-apiserver and etcd, the operator
// in-process, and for each provider the real server its tests use — moto
// for AWS Secrets Manager and STS, the GCP Secret Manager emulator, and a
// HashiCorp Vault dev server. The examples in examples/aws, examples/gcp and
// examples/vault, taken from ESO's documentation, are applied as they are.
//
// Manifests name real endpoints (AWS regions, Google's Secret Manager,
// http://my.vault.server:8200); the providers are built with test-only
// options that send those to the local servers, as DNS sends them to the
// real services. A server binary that is missing fails the package.
package providers

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/provider"
	awsprovider "github.com/keyferry/keyferry/internal/provider/aws"
	"github.com/keyferry/keyferry/internal/provider/azurekv"
	"github.com/keyferry/keyferry/internal/provider/fake"
	"github.com/keyferry/keyferry/internal/provider/gcpsm"
	kubeprovider "github.com/keyferry/keyferry/internal/provider/kubernetes"
	"github.com/keyferry/keyferry/internal/provider/vault"
	"github.com/keyferry/keyferry/internal/provider/webhook"
	"github.com/keyferry/keyferry/internal/testing/maintb"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	"github.com/keyferry/keyferry/internal/testing/testserver/gcpsmemulator"
	"github.com/keyferry/keyferry/internal/testing/testserver/motoserver"
	"github.com/keyferry/keyferry/internal/testing/testserver/vaultserver"
)

// canary is part of every value the servers hold and of every credential
// the tests create: it must never appear in the operator's logs, an Event or
// a status.
const canary = "kf-providers-canary-8d2f"

const synced = "SecretSynced"

var (
	env *testenv.Env
	cs  kubernetes.Interface

	// moto serves AWS; awsRoutes sends each region to its moto.
	moto, enforcingMoto *motoserver.Server
	awsRoutes           *awsRouter

	// gcp is the Secret Manager emulator, gcpFront its TLS front (what the
	// provider talks to); adcKey signs the operator's default credentials.
	gcp      *gcpsmemulator.Server
	gcpFront *gcpsmemulator.Front
	adcKey   *rsa.PrivateKey

	// vaultSrv is the Vault dev server; vaultRoutes reaches it for the
	// manifests' server and counts requests.
	vaultSrv    *vaultserver.Server
	vaultRoutes *vaultProxy

	// leaks are strings besides canary that must never be seen: the
	// examples' credentials and the tokens and keys the tests create.
	leaksMu sync.Mutex
	leaks   []string
)

// secretMustNotLeak adds s to the strings assertNoLeak looks for.
func secretMustNotLeak(s string) {
	leaksMu.Lock()
	defer leaksMu.Unlock()
	leaks = append(leaks, s)
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tb := &maintb.TB{}
	defer tb.RunCleanups()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	reg := provider.NewRegistry()
	reg.Register("fake", fake.New())
	// Registered for the rules every store passes (identity_test.go).
	reg.Register(azurekv.Name, azurekv.New())
	// Webhook stores reach hosts of webhookRoutes at local servers
	// (webhook_push_test.go).
	reg.Register("webhook", webhook.NewWithOptions(webhook.Options{MapAddr: webhookRoutes.mapAddr}))
	reg.Register("kubernetes", kubeprovider.New(nil))

	// AWS: one open moto, and one that enforces IAM for the region
	// forbiddenRegion. Each fails with the way to install moto when
	// moto_server is missing.
	var err error
	if moto, err = motoserver.Run(ctx, motoserver.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "starting moto (AWS):", err)
		return 1
	}
	defer moto.Stop()
	if enforcingMoto, err = motoserver.Run(ctx, motoserver.Options{Env: []string{fmt.Sprintf("INITIAL_NO_AUTH_ACTION_COUNT=%d", enforcingSetupCalls)}}); err != nil {
		fmt.Fprintln(os.Stderr, "starting moto (AWS, enforcing IAM):", err)
		return 1
	}
	defer enforcingMoto.Stop()
	if err := setupEnforcingMoto(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "setting up IAM in moto:", err)
		return 1
	}
	awsRoutes = newAWSRouter(moto, enforcingMoto)
	agent := startPodIdentityAgent()
	defer agent.Close()
	reg.Register(awsprovider.Name, &awsprovider.Provider{
		Endpoints:  awsprovider.Endpoints{SecretsManager: moto.Endpoint(), SSM: moto.Endpoint(), STS: moto.Endpoint()},
		HTTPClient: awsRoutes,
		// The AWS CSI provider's examples set no region and may use EKS Pod
		// Identity (aws_secretsync_test.go).
		DefaultRegion:    awsRegion,
		PodIdentityAgent: agent.URL,
	})
	reg.RegisterClass(awsprovider.ClassName, awsprovider.Name)

	// GCP: the emulator behind a TLS front, so that the stores' credentials
	// are sent (and recorded) as they are to Google.
	if err := tb.Do(func() {
		gcp = gcpsmemulator.Start(tb)
		gcpFront = gcp.TLS(tb)
	}); err != nil {
		fmt.Fprintln(os.Stderr, "starting the GCP Secret Manager emulator:", err)
		return 1
	}
	if err := setupApplicationDefaultCredentials(tb); err != nil {
		fmt.Fprintln(os.Stderr, "writing the operator's GCP application default credentials:", err)
		return 1
	}
	reg.Register(gcpsm.Name, gcpsm.NewWithClientOptions(gcpFront.ClientOptions()...))
	reg.RegisterClass(gcpsm.ClassName, gcpsm.Name)

	// Vault: a dev server whose root token is "root", the token of ESO's
	// example, reached for http://my.vault.server:8200.
	if err := tb.Do(func() {
		vaultSrv = vaultserver.StartWithOptions(tb, vaultserver.Options{RootToken: "root"})
		vaultRoutes = newVaultProxy(tb, vaultSrv.Addr)
	}); err != nil {
		fmt.Fprintln(os.Stderr, "starting the Vault dev server:", err)
		return 1
	}
	reg.Register("vault", vault.NewWithOptions(vault.Options{DialContext: vaultRoutes.DialContext}))
	reg.RegisterClass(vault.ClassName, "vault")

	env, err = testenv.Start(testenv.Options{Registry: reg, Operator: func(o *operator.Options) {
		// The examples reach Vault at http://my.vault.server:8200, and the
		// GCP stores without auth use the operator's default credentials:
		// both need the platform's opt-in (docs/security.md).
		o.StorePolicy = provider.Policy{
			AllowInsecureHTTP: true,
			AmbientIdentities: []provider.IdentityGrant{{Identity: provider.IdentityGCP}},
		}
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test environment:", err)
		return 1
	}
	defer env.Stop()
	if cs, err = kubernetes.NewForConfig(env.Cluster.Config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// setupApplicationDefaultCredentials gives the operator's process
// application default credentials, as GOOGLE_APPLICATION_CREDENTIALS does
// on a pod: a service account key that stores without auth use.
func setupApplicationDefaultCredentials(tb *maintb.TB) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	adcKey = key
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	file, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "kf-adc",
		"private_key_id": "adc-1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   adcServiceAccount,
		"client_id":      "1",
		// Never called: Secret Manager clients sign their own tokens.
		"token_uri": "https://oauth2.googleapis.com/token",
	})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "keyferry-gcp-adc-")
	if err != nil {
		return err
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "application_default_credentials.json")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		return err
	}
	return os.Setenv("GOOGLE_APPLICATION_CREDENTIALS", path)
}

// --- waiting and checking ---------------------------------------------------

// assertUnchanged fails when the Secret was written since before.
func assertUnchanged(t *testing.T, before *corev1.Secret) {
	t.Helper()
	after := env.GetSecret(t, before.Namespace, before.Name)
	if after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("Secret %s/%s was written after the failure (resourceVersion %s → %s)", before.Namespace, before.Name, before.ResourceVersion, after.ResourceVersion)
	}
	if ok, msg := testenv.HasData(stringData(before))(after); !ok {
		t.Fatalf("Secret %s/%s changed after the failure: %s", before.Namespace, before.Name, msg)
	}
}

func stringData(s *corev1.Secret) map[string]string {
	out := make(map[string]string, len(s.Data))
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out
}

// waitWarning waits for a Warning Event with reason about an object.
func waitWarning(t *testing.T, ns, name, reason string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("a Warning Event %s about %s/%s", reason, ns, name), func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			if ev.Type == corev1.EventTypeWarning && ev.Reason == reason {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d Events, none a Warning %s", len(evs), reason)
	})
}

// assertNoLeak fails when the canary, or a credential registered with
// secretMustNotLeak, appears in the operator's logs, in the Events about
// the ExternalSecrets named, or in their status.
func assertNoLeak(t *testing.T, ns string, names ...string) {
	t.Helper()
	leaksMu.Lock()
	secrets := append([]string{canary}, leaks...)
	leaksMu.Unlock()
	for _, s := range secrets {
		env.AssertNoLeak(t, s)
	}
	ctx := context.Background()
	for _, name := range names {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			t.Fatalf("listing Events of %s/%s: %v", ns, name, err)
		}
		var es esv1.ExternalSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &es); err != nil {
			t.Fatalf("reading ExternalSecret %s/%s: %v", ns, name, err)
		}
		status, err := json.Marshal(es.Status)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			for _, ev := range evs {
				if strings.Contains(ev.Note, s) || strings.Contains(ev.Reason, s) {
					t.Fatalf("a secret value appeared in Event %s of %s/%s", ev.Reason, ns, name)
				}
			}
			if strings.Contains(string(status), s) {
				t.Fatalf("a secret value appeared in the status of %s/%s", ns, name)
			}
		}
	}
}

// deleteOnCleanup deletes ExternalSecrets when the test ends, so the fast
// refreshes of one test do not keep running through the next ones.
func deleteOnCleanup(t *testing.T, ns string, names ...string) {
	t.Cleanup(func() {
		for _, name := range names {
			es := &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
			if err := client.IgnoreNotFound(env.Client.Delete(context.Background(), es)); err != nil {
				t.Errorf("deleting ExternalSecret %s/%s: %v", ns, name, err)
			}
		}
	})
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// getExternalSecret reads an ExternalSecret; nil when it cannot be read.
func getExternalSecret(ctx context.Context, ns, name string) *esv1.ExternalSecret {
	es := &esv1.ExternalSecret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, es); err != nil {
		return nil
	}
	return es
}

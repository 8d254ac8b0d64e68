package webhook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/provider"
)

// The real API server the tests share holds the Secrets and ConfigMaps
// with credentials. It starts once per package, when the first test needs
// it (the JSONPath tests and the fuzzer do not), and stops in TestMain.
var (
	clusterOnce sync.Once
	cluster     *devcluster.Cluster
	kubeClient  client.Client
	clusterErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
		}
	}
	os.Exit(code)
}

// kubeFor returns an admin client of the shared API server, starting it on
// first use; it fails the test loudly when the control plane cannot start.
func kubeFor(t *testing.T) client.Client {
	t.Helper()
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if cluster, clusterErr = devcluster.Start(ctx, devcluster.Options{}); clusterErr != nil {
			return
		}
		kubeClient, clusterErr = client.New(cluster.Config, client.Options{})
	})
	if clusterErr != nil {
		t.Fatalf("starting the local control plane (the webhook tests read credentials from a real API server): %v", clusterErr)
	}
	return kubeClient
}

// canary is planted in every credential, response body and template value
// the tests use; it must never show in an error.
const canary = "CANARY-d41d8cd98f00b204"

func assertNoCanary(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Fatalf("error leaks a secret value: %v", err)
	}
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "webhook-"}}
	if err := kubeFor(t).Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

func createSecret(t *testing.T, ns, name string, labels map[string]string, data map[string]string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, StringData: data}
	if err := kubeFor(t).Create(context.Background(), s); err != nil {
		t.Fatalf("creating secret %s/%s: %v", ns, name, err)
	}
}

var webhookLabel = map[string]string{SecretTypeLabel: SecretTypeLabelValue}

// storeOpts are the options the engine would pass for a SecretStore (or,
// with cluster set, a ClusterSecretStore used from ns).
func storeOpts(t *testing.T, ns string, spec *esv1.WebhookProvider, cluster bool) provider.Options {
	store := provider.Store{Kind: esv1.SecretStoreKind, Name: "webhook", Namespace: ns,
		Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Webhook: spec}}}
	if cluster {
		store.Kind, store.Namespace = esv1.ClusterSecretStoreKind, ""
	}
	return provider.Options{Store: store, Namespace: ns, Kube: kubeFor(t), Log: testr.New(t)}
}

// newClient validates spec as the engine does and builds a client.
func newClient(t *testing.T, ns string, spec *esv1.WebhookProvider) (provider.Client, error) {
	t.Helper()
	opts := storeOpts(t, ns, spec, false)
	if err := New().ValidateSpec(opts.Store); err != nil {
		return nil, err
	}
	c, err := New().NewClient(context.Background(), opts)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("closing the client: %v", err)
		}
	})
	return c, nil
}

func mustClient(t *testing.T, ns string, spec *esv1.WebhookProvider) provider.Client {
	t.Helper()
	c, err := newClient(t, ns, spec)
	assertNoCanary(t, err)
	if err != nil {
		t.Fatalf("building the client: %v", err)
	}
	return c
}

func get(t *testing.T, c provider.Client, key string) (string, error) {
	t.Helper()
	v, err := c.GetSecret(context.Background(), provider.Ref{Key: key})
	assertNoCanary(t, err)
	return string(v.Data), err
}

func mustGet(t *testing.T, c provider.Client, key string) string {
	t.Helper()
	v, err := get(t, c, key)
	if err != nil {
		t.Fatalf("GetSecret(%q): %v", key, err)
	}
	return v
}

// wantErr fails unless err wraps target.
func wantErr(t *testing.T, err, target error) {
	t.Helper()
	assertNoCanary(t, err)
	if err == nil {
		t.Fatalf("got no error, want one wrapping %q", target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("got %q, want an error wrapping %q", err, target)
	}
	t.Logf("error as the user sees it: %v", err)
}

package gcpsm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/testing/testflags"
)

// The control plane holds the credential Secrets and ServiceAccounts; one
// serves the whole package.
var (
	kube      client.Client
	clientset kubernetes.Interface
	repoRoot  string
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
	repoRoot = root
	if err != nil {
		fmt.Fprintf(os.Stderr, "finding the repository: %v\n", err)
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
	if kube, err = client.New(c.Config, client.Options{}); err != nil {
		fmt.Fprintf(os.Stderr, "creating a client: %v\n", err)
		return 1
	}
	if clientset, err = kubernetes.NewForConfig(c.Config); err != nil {
		fmt.Fprintf(os.Stderr, "creating a clientset: %v\n", err)
		return 1
	}
	return m.Run()
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gcpsm-"}}
	if err := kube.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// tokenRequester implements provider.TokenRequester with the TokenRequest
// API.
type tokenRequester struct{ cs kubernetes.Interface }

func (r tokenRequester) ServiceAccountToken(ctx context.Context, namespace, name string, audiences []string, expiry time.Duration) (string, time.Time, error) {
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences}}
	if expiry > 0 {
		secs := int64(expiry.Seconds())
		req.Spec.ExpirationSeconds = &secs
	}
	tr, err := r.cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, err
	}
	return tr.Status.Token, tr.Status.ExpirationTimestamp.Time, nil
}

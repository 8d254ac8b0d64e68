package kubernetes_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/provider"
	k8sprovider "github.com/keyferry/keyferry/internal/provider/kubernetes"
)

// docManifests returns the YAML documents of the provider's page.
func docManifests(t *testing.T) []string {
	t.Helper()
	root, err := devcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "providers", "kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	parts := strings.Split(string(b), "```yaml\n")
	for _, part := range parts[1:] {
		block, _, ok := strings.Cut(part, "```")
		if !ok {
			t.Fatalf("unterminated yaml block in docs/providers/kubernetes.md")
		}
		for _, d := range strings.Split(block, "\n---\n") {
			if strings.TrimSpace(d) != "" {
				docs = append(docs, d)
			}
		}
	}
	if len(docs) == 0 {
		t.Fatal("docs/providers/kubernetes.md holds no yaml manifests")
	}
	return docs
}

// Every manifest of docs/providers/kubernetes.md applies, as it is, to a
// real API server with keyferry's CRDs (unknown fields refused), and every
// store in it passes the provider's own checks.
func TestDocumentedManifestsApply(t *testing.T) {
	ctx := context.Background()
	if err := fx.kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}); err != nil {
		t.Fatal(err)
	}
	stores := 0
	for i, doc := range docManifests(t) {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("manifest %d does not parse: %v\n%s", i, err, doc)
		}
		if err := fx.kube.Create(ctx, u, client.FieldValidation("Strict")); err != nil {
			t.Fatalf("manifest %d (%s %s) does not apply: %v", i, u.GetKind(), u.GetName(), err)
		}
		if u.GetKind() != esv1.SecretStoreKind && u.GetKind() != esv1.ClusterSecretStoreKind {
			continue
		}
		var spec struct {
			Spec esv1.SecretStoreSpec `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &spec); err != nil {
			t.Fatal(err)
		}
		st := provider.Store{Kind: u.GetKind(), Name: u.GetName(), Namespace: u.GetNamespace(), Spec: &spec.Spec}
		if err := k8sprovider.New(nil).ValidateSpec(st); err != nil {
			t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
		stores++
	}
	if stores == 0 {
		t.Fatal("the page shows no store")
	}
}

package test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/preview"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// keyferry render shows what the operator writes: the quickstart rendered
// offline from the values its fake store holds is the Secret the operator
// wrote for it on the real API server — same data, type, labels and data
// hash.
func TestRenderMatchesTheOperator(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, "examples/quickstart")
	env.WaitReady(t, ns, "database", metav1.ConditionTrue, "SecretSynced")
	want := env.WaitSecret(t, ns, "database-credentials", testenv.HasData(map[string]string{"username": "app"}))

	// The values the quickstart's data entries fetch from its fake store,
	// by secretKey.
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte("username: app\npassword: quickstart-not-a-real-password\nhost: db.demo.svc:5432\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := preview.Render(context.Background(), preview.Options{
		Manifests: []string{filepath.Join(root, "examples/quickstart/quickstart.yaml")},
		Values:    []string{values},
		Namespace: ns,
	})
	if err != nil {
		t.Fatal(err)
	}
	var got corev1.Secret
	if err := yaml.UnmarshalStrict(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != want.Name || got.Namespace != want.Namespace || got.Type != want.Type {
		t.Fatalf("rendered %s/%s (%s), the operator wrote %s/%s (%s)", got.Namespace, got.Name, got.Type, want.Namespace, want.Name, want.Type)
	}
	if len(got.Data) != len(want.Data) {
		t.Fatalf("rendered keys %v, the operator wrote %v", renderParityKeys(got.Data), renderParityKeys(want.Data))
	}
	for k, v := range want.Data {
		if string(got.Data[k]) != string(v) {
			t.Errorf("key %s differs from the operator's Secret", k)
		}
	}
	for k, v := range want.Labels {
		if got.Labels[k] != v {
			t.Errorf("label %s = %q, the operator wrote %q", k, got.Labels[k], v)
		}
	}
	if h := want.Annotations[engine.AnnotationDataHash]; h == "" || got.Annotations[engine.AnnotationDataHash] != h {
		t.Errorf("data hash %q, the operator wrote %q", got.Annotations[engine.AnnotationDataHash], h)
	}
}

func renderParityKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

package gcpsm

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// The manifests in docs/providers/gcp.md, taken from ESO's documentation,
// apply unchanged: the API server accepts them with strict field validation,
// they decode strictly into keyferry's types, and their stores are valid.
func TestDocumentationManifestsApply(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "providers", "gcp.md"))
	if err != nil {
		t.Fatalf("reading the documentation: %v", err)
	}
	ns := newNamespace(t)
	ctx := testContext(t)
	stores := 0
	for _, block := range yamlBlock.FindAllSubmatch(doc, -1) {
		r := utilyaml.NewYAMLReader(bufioReader(block[1]))
		for {
			raw, err := r.Read()
			if err != nil {
				break
			}
			if len(bytes.TrimSpace(raw)) == 0 {
				continue
			}
			var u unstructured.Unstructured
			if err := yaml.Unmarshal(raw, &u.Object); err != nil {
				t.Fatalf("parsing a manifest: %v\n%s", err, raw)
			}
			u.SetNamespace(ns)
			if err := kube.Create(ctx, &u, client.FieldValidation("Strict")); err != nil {
				t.Fatalf("applying %s %s: %v", u.GetKind(), u.GetName(), err)
			}
			switch u.GetKind() {
			case esv1.SecretStoreKind:
				var s esv1.SecretStore
				if err := yaml.UnmarshalStrict(raw, &s); err != nil {
					t.Fatalf("decoding SecretStore %s: %v", u.GetName(), err)
				}
				store := provider.Store{Kind: esv1.SecretStoreKind, Name: s.Name, Namespace: ns, Spec: &s.Spec}
				if err := New().ValidateSpec(store); err != nil {
					t.Errorf("SecretStore %s: ValidateSpec: %v", s.Name, err)
				}
				stores++
			case "ExternalSecret":
				var es esv1.ExternalSecret
				if err := yaml.UnmarshalStrict(raw, &es); err != nil {
					t.Fatalf("decoding ExternalSecret %s: %v", u.GetName(), err)
				}
			}
		}
	}
	if stores == 0 {
		t.Fatal("the documentation holds no SecretStore")
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

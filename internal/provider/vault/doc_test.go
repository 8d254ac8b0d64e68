package vault

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/serializer"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testserver/vaultserver"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// The manifests of docs/providers/vault.md are ESO's: they decode strictly
// into keyferry's types, the API server accepts them as they are, and the
// first example's store reads the first example's value (only the server
// address changes, to where the test's Vault runs).
func TestDocExamplesApplyUnchanged(t *testing.T) {
	e := newEnv(t, vaultserver.Options{RootToken: "root"})
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "providers", "vault.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := yamlBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) == 0 {
		t.Fatal("no yaml example in docs/providers/vault.md")
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	ctx := context.Background()
	for i, block := range blocks {
		ns := e.ns
		if i > 0 {
			ns = e.ns + "-" + string(rune('a'+i))
			createNamespace(t, ns)
		}
		for _, manifest := range strings.Split(block[1], "\n---\n") {
			obj, _, err := decoder.Decode([]byte(manifest), nil, nil)
			if err != nil {
				t.Fatalf("example %d does not decode strictly: %v\n%s", i+1, err, manifest)
			}
			co, ok := obj.(crclient.Object)
			if !ok {
				t.Fatalf("example %d: %T is not an object", i+1, obj)
			}
			co.SetNamespace(ns)
			if err := cluster.kube.Create(ctx, co); err != nil {
				t.Fatalf("example %d: the API server refuses %s: %v", i+1, co.GetObjectKind().GroupVersionKind().Kind, err)
			}
		}
	}

	// vault kv put secret/foo my-value=s3cr3t
	e.vault.PutKV(t, "secret", 2, "foo", map[string]any{"my-value": "s3cr3t"})
	var store esv1.SecretStore
	if err := cluster.kube.Get(ctx, crclient.ObjectKey{Namespace: e.ns, Name: "vault-backend"}, &store); err != nil {
		t.Fatal(err)
	}
	var es esv1.ExternalSecret
	if err := cluster.kube.Get(ctx, crclient.ObjectKey{Namespace: e.ns, Name: "vault-example"}, &es); err != nil {
		t.Fatal(err)
	}
	store.Spec.Provider.Vault.Server = e.vault.Addr
	ps := provider.Store{Kind: esv1.SecretStoreKind, Name: store.Name, Namespace: store.Namespace, Spec: &store.Spec}
	if err := New().ValidateSpec(ps); err != nil {
		t.Fatalf("ValidateSpec: %v", err)
	}
	c, err := New().NewClient(ctx, e.options(ps))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	ref := es.Spec.Data[0].RemoteRef
	v, err := c.GetSecret(ctx, provider.Ref{Key: ref.Key, Version: ref.Version})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(v.Fields[ref.Property]); got != "s3cr3t" {
		t.Fatalf("property %s of %s = %q, want s3cr3t", ref.Property, ref.Key, got)
	}
}

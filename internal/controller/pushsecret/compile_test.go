package pushsecret

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/provider"
)

const base = `
spec:
  secretStoreRefs: [{name: s}]
  selector: {secret: {name: src}}
  data:
    - match: {secretKey: k, remoteRef: {remoteKey: r, property: p}}
`

func parse(t testing.TB, doc string) *esv1alpha1.PushSecret {
	t.Helper()
	var ps esv1alpha1.PushSecret
	if err := yaml.Unmarshal([]byte(doc), &ps); err != nil {
		t.Fatal(err)
	}
	ps.Namespace = "ns"
	return &ps
}

func TestCompileChecks(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		// want is part of the InvalidSpec message; empty: compiles.
		want string
	}{
		{"a named Secret pushed to a named store compiles", base, ""},
		{"sourceIsOneNamedSecret: a generator", `
spec: {secretStoreRefs: [{name: s}], selector: {generatorRef: {kind: Password, name: g}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "spec.selector.generatorRef"},
		{"sourceIsOneNamedSecret: a label selector", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {selector: {matchLabels: {a: b}}}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "spec.selector.secret.selector"},
		{"sourceIsOneNamedSecret: no selector", `
spec: {secretStoreRefs: [{name: s}], data: [{match: {remoteRef: {remoteKey: r}}}]}`, "spec.selector.secret is not set"},
		{"storesAreNamed: none", `
spec: {selector: {secret: {name: src}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "spec.secretStoreRefs is empty"},
		{"storesAreNamed: a label selector", `
spec: {secretStoreRefs: [{labelSelector: {}}], selector: {secret: {name: src}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "spec.secretStoreRefs[0].labelSelector"},
		{"storesAreNamed: another kind", `
spec: {secretStoreRefs: [{name: s, kind: SecretProviderClass}], selector: {secret: {name: src}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "neither SecretStore nor ClusterSecretStore"},
		{"dataToIsNotUsed", base + "  dataTo: [{storeRef: {name: s}}]\n", "spec.dataTo"},
		{"templateIsNotUsed", base + "  template: {data: {a: b}}\n", "spec.template"},
		{"dataEntriesAreSupported: no data", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {name: src}}}`, "spec.data is empty"},
		{"dataEntriesAreSupported: no remote key", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {name: src}}, data: [{match: {secretKey: k, remoteRef: {remoteKey: ""}}}]}`, "remoteRef.remoteKey is empty"},
		{"dataEntriesAreSupported: metadata", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {name: src}}, data: [{metadata: {a: b}, match: {remoteRef: {remoteKey: r}}}]}`, "spec.data[0].metadata"},
		{"dataEntriesAreSupported: ReverseUnicode", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {name: src}}, data: [{conversionStrategy: ReverseUnicode, match: {remoteRef: {remoteKey: r}}}]}`, "ReverseUnicode"},
		{"remoteRefsAreUnique", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {name: src}}, data: [{match: {secretKey: a, remoteRef: {remoteKey: r, property: p}}}, {match: {secretKey: b, remoteRef: {remoteKey: r, property: p}}}]}`, `the same remote ref "r/p"`},
		{"policiesAreKnown: updatePolicy", base + "  updatePolicy: Merge\n", "spec.updatePolicy"},
		{"policiesAreKnown: deletionPolicy", base + "  deletionPolicy: Orphan\n", "spec.deletionPolicy"},
		{"refreshIntervalIsADuration", base + "  refreshInterval: soon\n", "spec.refreshInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(parse(t, tt.doc))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				return
			}
			var ee *engine.Error
			if !errors.As(err, &ee) || ee.Reason != engine.ReasonInvalidSpec || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compile = %v; want InvalidSpec naming %q", err, tt.want)
			}
		})
	}
}

func TestCompileDefaultsAndPushes(t *testing.T) {
	spec, err := Compile(parse(t, base+"  secretStoreRefs: [{name: a}, {name: b, kind: ClusterSecretStore}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if spec.UpdatePolicy != esv1alpha1.PushSecretUpdatePolicyReplace || spec.DeletionPolicy != esv1alpha1.PushSecretDeletionPolicyNone || spec.Refresh != DefaultRefreshInterval {
		t.Fatalf("defaults = %s %s %s; want ESO's Replace, None, 1h", spec.UpdatePolicy, spec.DeletionPolicy, spec.Refresh)
	}
	if len(spec.Pushes) != 2 || StoreKey(spec.Pushes[0].Store) != "SecretStore/a" || StoreKey(spec.Pushes[1].Store) != "ClusterSecretStore/b" {
		t.Fatalf("pushes = %+v", spec.Pushes)
	}
	if got := RemoteKey(spec.Pushes[0].Ref); got != "r/p" {
		t.Fatalf("RemoteKey = %q; want ESO's r/p", got)
	}
	if got := RemoteKey(provider.PushRef{RemoteKey: "r"}); got != "r" {
		t.Fatalf("RemoteKey = %q", got)
	}
}

// FuzzCompile: any PushSecret, however malformed, compiles or is refused
// with InvalidSpec; Compile never panics.
func FuzzCompile(f *testing.F) {
	f.Add(`{"spec":{"secretStoreRefs":[{"name":"s"}],"selector":{"secret":{"name":"x"}},"data":[{"match":{"secretKey":"k","remoteRef":{"remoteKey":"r"}}}]}}`)
	f.Add(`{"spec":{"selector":{},"data":[{"match":{"remoteRef":{"remoteKey":""}}}],"refreshInterval":"x"}}`)
	f.Add(`{"spec":{"secretStoreRefs":[{}],"selector":{"secret":{}},"dataTo":[{}],"template":{}}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var ps esv1alpha1.PushSecret
		if json.Unmarshal([]byte(doc), &ps) != nil {
			return
		}
		if _, err := Compile(&ps); err != nil {
			var ee *engine.Error
			if !errors.As(err, &ee) || ee.Reason != engine.ReasonInvalidSpec {
				t.Fatalf("Compile = %v; want an InvalidSpec refusal", err)
			}
		}
	})
}

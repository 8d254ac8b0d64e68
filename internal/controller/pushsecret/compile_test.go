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
		{"sourceIsSet: a generator compiles", `
spec: {secretStoreRefs: [{name: s}], selector: {generatorRef: {kind: Password, name: g}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, ""},
		{"sourceIsSet: a generator of ESO's apiVersion compiles", `
spec: {secretStoreRefs: [{name: s}], selector: {generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: Password, name: g}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, ""},
		{"sourceIsSet: a generator of another apiVersion", `
spec: {secretStoreRefs: [{name: s}], selector: {generatorRef: {apiVersion: v1, kind: Password, name: g}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "spec.selector.generatorRef.apiVersion"},
		{"sourceIsSet: a generator without kind", `
spec: {secretStoreRefs: [{name: s}], selector: {generatorRef: {name: g}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "spec.selector.generatorRef.kind is empty"},
		{"sourceIsSet: a generator without name", `
spec: {secretStoreRefs: [{name: s}], selector: {generatorRef: {kind: UUID}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "spec.selector.generatorRef.name is empty"},
		{"sourceIsSet: a Secret and a generator", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {name: src}, generatorRef: {kind: UUID, name: g}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "both secret and generatorRef"},
		{"sourceIsSet: a label selector compiles", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {selector: {matchLabels: {a: b}}}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, ""},
		{"sourceIsSet: a label selector that does not parse", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {selector: {matchExpressions: [{key: a, operator: Near}]}}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "spec.selector.secret.selector"},
		{"sourceIsSet: no selector", `
spec: {secretStoreRefs: [{name: s}], data: [{match: {remoteRef: {remoteKey: r}}}]}`, "spec.selector.secret is not set"},
		{"sourceIsSet: neither name nor selector", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "neither name nor selector"},
		{"storesAreNamedOrSelected: none", `
spec: {selector: {secret: {name: src}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "spec.secretStoreRefs is empty"},
		{"storesAreNamedOrSelected: a label selector compiles", `
spec: {secretStoreRefs: [{labelSelector: {matchLabels: {a: b}}, kind: ClusterSecretStore}], selector: {secret: {name: src}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, ""},
		{"storesAreNamedOrSelected: a label selector that does not parse", `
spec: {secretStoreRefs: [{labelSelector: {matchExpressions: [{key: a, operator: In}]}}], selector: {secret: {name: src}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "spec.secretStoreRefs[0].labelSelector"},
		{"storesAreNamedOrSelected: neither name nor selector", `
spec: {secretStoreRefs: [{kind: SecretStore}], selector: {secret: {name: src}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "spec.secretStoreRefs[0] sets neither name nor labelSelector"},
		{"storesAreNamedOrSelected: another kind", `
spec: {secretStoreRefs: [{name: s, kind: SecretProviderClass}], selector: {secret: {name: src}}, data: [{match: {remoteRef: {remoteKey: r}}}]}`, "neither SecretStore nor ClusterSecretStore"},
		{"dataToEntriesAreValid: a dataTo compiles", base + "  dataTo: [{storeRef: {name: s}, match: {regexp: '^db-'}, rewrite: [{regexp: {source: '^db-', target: x/}}, {transform: {template: '{{ .value | upper }}'}}], conversionStrategy: ReverseUnicode}, {storeRef: {labelSelector: {matchLabels: {a: b}}}, remoteKey: bundle}]\n", ""},
		{"dataToEntriesAreValid: a dataTo alone compiles", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {name: src}}, dataTo: [{storeRef: {name: s}}]}`, ""},
		{"dataToEntriesAreValid: no storeRef", base + "  dataTo: [{remoteKey: r}]\n", "spec.dataTo[0].storeRef is required"},
		{"dataToEntriesAreValid: a storeRef naming nothing", base + "  dataTo: [{storeRef: {kind: SecretStore}}]\n", "spec.dataTo[0].storeRef sets neither name nor labelSelector"},
		{"dataToEntriesAreValid: a store spec.secretStoreRefs does not name", base + "  dataTo: [{storeRef: {name: other}}]\n", `names SecretStore "other", which spec.secretStoreRefs does not name`},
		{"dataToEntriesAreValid: the same name of another kind", base + "  dataTo: [{storeRef: {name: s, kind: ClusterSecretStore}}]\n", `names ClusterSecretStore "s"`},
		{"dataToEntriesAreValid: a label selector that does not parse", base + "  dataTo: [{storeRef: {labelSelector: {matchExpressions: [{key: a, operator: Exists, values: [x]}]}}}]\n", "spec.dataTo[0].storeRef.labelSelector"},
		{"dataToEntriesAreValid: a match regexp that does not compile", base + "  dataTo: [{storeRef: {name: s}, match: {regexp: '(' }}]\n", "spec.dataTo[0].match.regexp"},
		{"dataToEntriesAreValid: remoteKey and rewrite", base + "  dataTo: [{storeRef: {name: s}, remoteKey: r2, rewrite: [{regexp: {source: a, target: b}}]}]\n", "mutually exclusive"},
		{"dataToEntriesAreValid: a rewrite with neither", base + "  dataTo: [{storeRef: {name: s}, rewrite: [{}]}]\n", "spec.dataTo[0].rewrite[0] must set exactly one"},
		{"dataToEntriesAreValid: a rewrite with both", base + "  dataTo: [{storeRef: {name: s}, rewrite: [{regexp: {source: a, target: b}, transform: {template: x}}]}]\n", "exactly one of regexp and transform"},
		{"dataToEntriesAreValid: a rewrite regexp that does not compile", base + "  dataTo: [{storeRef: {name: s}, rewrite: [{regexp: {source: '[', target: b}}]}]\n", "spec.dataTo[0].rewrite[0].regexp.source"},
		{"dataToEntriesAreValid: a transform that does not parse", base + "  dataTo: [{storeRef: {name: s}, rewrite: [{transform: {template: '{{ .value '}}]}]\n", "spec.dataTo[0].rewrite[0].transform"},
		{"dataToEntriesAreValid: an unknown conversionStrategy", base + "  dataTo: [{storeRef: {name: s}, conversionStrategy: Unicode}]\n", "spec.dataTo[0].conversionStrategy"},
		{"templateIsValid: a template compiles", base + "  template: {data: {a: '{{ .k | upper }}'}, templateFrom: [{configMap: {name: c, items: [{key: x}]}}, {literal: 'y: z'}]}\n", ""},
		{"templateIsValid: engine v1", base + "  template: {engineVersion: v1, data: {a: b}}\n", "spec.template.engineVersion"},
		{"templateIsValid: a template that does not parse", base + "  template: {data: {a: '{{ .k '}}\n", "spec.template.data.a"},
		{"templateIsValid: a label template that does not parse", base + "  template: {metadata: {labels: {a: '{{ nope }}'}}}\n", "spec.template.metadata.labels.a"},
		{"templateIsValid: a templateFrom target", base + "  template: {templateFrom: [{target: Spec, literal: 'a: b'}]}\n", "templateFrom[0].target"},
		{"templateIsValid: a templateFrom with no source", base + "  template: {templateFrom: [{target: Data}]}\n", "sets none of configMap, secret and literal"},
		{"templateIsValid: a templateFrom ConfigMap without a name", base + "  template: {templateFrom: [{configMap: {items: [{key: x}]}}]}\n", "names no ConfigMap or Secret"},
		{"templateIsValid: valuesDecodingStrategy", base + "  template: {templateFrom: [{literal: 'a: b', valuesDecodingStrategy: Base64}]}\n", "valuesDecodingStrategy"},
		{"somethingIsPushed: neither data nor dataTo", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {name: src}}}`, "spec.data and spec.dataTo are both empty"},
		{"dataEntriesAreSupported: no remote key", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {name: src}}, data: [{match: {secretKey: k, remoteRef: {remoteKey: ""}}}]}`, "remoteRef.remoteKey is empty"},
		{"dataEntriesAreSupported: ReverseUnicode compiles", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {name: src}}, data: [{conversionStrategy: ReverseUnicode, match: {remoteRef: {remoteKey: r}}}]}`, ""},
		{"dataEntriesAreSupported: an unknown conversionStrategy", `
spec: {secretStoreRefs: [{name: s}], selector: {secret: {name: src}}, data: [{conversionStrategy: Unicode, match: {remoteRef: {remoteKey: r}}}]}`, `spec.data[0].conversionStrategy "Unicode"`},
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
	if len(spec.Stores) != 2 || StoreKey(spec.Stores[0].Ref) != "SecretStore/a" || StoreKey(spec.Stores[1].Ref) != "ClusterSecretStore/b" {
		t.Fatalf("stores = %+v", spec.Stores)
	}
	pushes, err := spec.pushesFor(Target{Store: spec.Stores[1].Ref}, map[string][]byte{"k": []byte("v")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pushes) != 1 || StoreKey(pushes[0].Store) != "ClusterSecretStore/b" || pushes[0].SecretKey != "k" {
		t.Fatalf("pushes = %+v", pushes)
	}
	if got := RemoteKey(pushes[0].Ref); got != "r/p" {
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
	f.Add(`{"spec":{"secretStoreRefs":[{"labelSelector":{"matchLabels":{"a":"b"}}},{"name":"s"}],"selector":{"secret":{"selector":{"matchExpressions":[{"key":"a","operator":"In","values":["x"]}]}}},` +
		`"dataTo":[{"storeRef":{"name":"s"},"match":{"regexp":"^db-"},"rewrite":[{"regexp":{"source":"^db-","target":"x/"}},{"transform":{"template":"{{ .value | upper }}"}}],"conversionStrategy":"ReverseUnicode"},` +
		`{"storeRef":{"labelSelector":{"matchLabels":{"a":"b"}}},"remoteKey":"bundle"}],` +
		`"data":[{"conversionStrategy":"ReverseUnicode","match":{"secretKey":"a/b","remoteRef":{"remoteKey":"r","property":"p"}}}],` +
		`"template":{"type":"Opaque","data":{"k":"{{ .a }}"},"templateFrom":[{"literal":"x: y"},{"configMap":{"name":"c","items":[{"key":"k"}]}}],"metadata":{"labels":{"l":"{{ .a }}"}}}}}`)
	f.Add(`{"spec":{"secretStoreRefs":[{"name":"s"}],"selector":{"secret":{"name":"x"}},"dataTo":[{"storeRef":{"name":"s"},"remoteKey":"r","rewrite":[{}]}]}}`)
	data := map[string][]byte{"db-host": nil, "a_U002f_b": nil, "a/b": nil, "k": nil}
	f.Fuzz(func(t *testing.T, doc string) {
		var ps esv1alpha1.PushSecret
		if json.Unmarshal([]byte(doc), &ps) != nil {
			return
		}
		spec, err := Compile(&ps)
		if err != nil {
			var ee *engine.Error
			if !errors.As(err, &ee) || ee.Reason != engine.ReasonInvalidSpec {
				t.Fatalf("Compile = %v; want an InvalidSpec refusal", err)
			}
			return
		}
		// What compiles expands, for any store, without panicking, or is
		// refused with a reason.
		for _, sel := range spec.Stores {
			st := Target{Store: sel.Ref, Labels: map[string]string{"a": "b"}}
			if st.Store.Name == "" {
				st.Store.Name = "selected"
			}
			if _, err := spec.pushesFor(st, data, testRewriters); err != nil {
				var ee *engine.Error
				if !errors.As(err, &ee) || ee.Reason == "" {
					t.Fatalf("pushesFor = %v; want an error with a reason", err)
				}
			}
		}
	})
}

package externalsecret

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
)

func es(mut func(*esv1.ExternalSecretSpec)) *esv1.ExternalSecret {
	e := &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", UID: "uid-1"}}
	e.Spec.SecretStoreRef = esv1.SecretStoreRef{Name: "store"}
	e.Spec.Data = []esv1.ExternalSecretData{{SecretKey: "k", RemoteRef: esv1.ExternalSecretDataRemoteRef{Key: "remote", Property: "p", Version: "3"}}}
	if mut != nil {
		mut(&e.Spec)
	}
	return e
}

func TestCompile(t *testing.T) {
	tests := []struct {
		name    string
		es      *esv1.ExternalSecret
		check   func(*testing.T, engine.Plan)
		invalid string // substring of the InvalidSpec message
	}{
		{name: "defaults follow ESO", es: es(nil), check: func(t *testing.T, p engine.Plan) {
			if p.Target.Name != "app" || p.Target.CreationPolicy != esv1.CreatePolicyOwner || p.Target.DeletionPolicy != esv1.DeletionPolicyRetain || !p.Target.SetOwnerReference {
				t.Errorf("target = %+v", p.Target)
			}
			if p.MaxAge != time.Hour {
				t.Errorf("MaxAge = %s, want ESO's default 1h", p.MaxAge)
			}
			d := p.Sources[0].Data
			if p.Sources[0].Store != (engine.StoreRef{Kind: "SecretStore", Name: "store"}) || d.Ref.Key != "remote" || d.Ref.Version != "3" || d.Property != "p" {
				t.Errorf("source = %+v %+v", p.Sources[0].Store, d)
			}
		}},
		{name: "rewrite merge gets ESO's defaults, after the regexp before it", es: es(func(s *esv1.ExternalSecretSpec) {
			s.DataFrom = []esv1.ExternalSecretDataFromRemoteRef{{Find: &esv1.ExternalSecretFind{Path: ptrTo("p")}, Rewrite: []esv1.ExternalSecretRewrite{
				{Regexp: &esv1.ExternalSecretRewriteRegexp{Source: "a", Target: "b"}},
				{Merge: &esv1.ExternalSecretRewriteMerge{Priority: []string{"x"}}},
			}}}
		}), check: func(t *testing.T, p engine.Plan) {
			rws := p.Sources[1].Find.Rewrite
			if len(rws) != 2 || rws[0].RegexpSource != "a" || rws[1].Merge == nil {
				t.Fatalf("rewrites = %+v", rws)
			}
			if m := rws[1].Merge; m.Strategy != "Extract" || m.ConflictPolicy != "Error" || m.PriorityPolicy != "Strict" || len(m.Priority) != 1 {
				t.Errorf("merge = %+v", m)
			}
		}},
		{name: "rewrite merge JSON needs into", es: es(func(s *esv1.ExternalSecretSpec) {
			s.DataFrom = []esv1.ExternalSecretDataFromRemoteRef{{Find: &esv1.ExternalSecretFind{Path: ptrTo("p")}, Rewrite: []esv1.ExternalSecretRewrite{{Merge: &esv1.ExternalSecretRewriteMerge{Strategy: "JSON"}}}}}
		}), invalid: "spec.dataFrom[0].rewrite[0].merge.into: strategy JSON merges into this key; it is required"},
		{name: "rewrite merge into an invalid key", es: es(func(s *esv1.ExternalSecretSpec) {
			s.DataFrom = []esv1.ExternalSecretDataFromRemoteRef{{Find: &esv1.ExternalSecretFind{Path: ptrTo("p")}, Rewrite: []esv1.ExternalSecretRewrite{{Merge: &esv1.ExternalSecretRewriteMerge{Strategy: "JSON", Into: "a b"}}}}}
		}), invalid: `spec.dataFrom[0].rewrite[0].merge.into: "a b" is not a valid Secret key`},
		{name: "rewrite merge strategy unknown", es: es(func(s *esv1.ExternalSecretSpec) {
			s.DataFrom = []esv1.ExternalSecretDataFromRemoteRef{{Find: &esv1.ExternalSecretFind{Path: ptrTo("p")}, Rewrite: []esv1.ExternalSecretRewrite{{Merge: &esv1.ExternalSecretRewriteMerge{Strategy: "Deep"}}}}}
		}), invalid: `merge.strategy "Deep" is not Extract or JSON`},
		{name: "orphan sets no owner reference", es: es(func(s *esv1.ExternalSecretSpec) { s.Target.CreationPolicy = esv1.CreatePolicyOrphan }), check: func(t *testing.T, p engine.Plan) {
			if p.Target.SetOwnerReference || p.Target.ManagedBy != "ExternalSecret/app" {
				t.Errorf("target = %+v", p.Target)
			}
		}},
		{name: "sourceRef overrides the store", es: es(func(s *esv1.ExternalSecretSpec) {
			s.Data[0].SourceRef = &esv1.StoreSourceRef{SecretStoreRef: esv1.SecretStoreRef{Name: "other", Kind: "ClusterSecretStore"}}
		}), check: func(t *testing.T, p engine.Plan) {
			if p.Sources[0].Store != (engine.StoreRef{Kind: "ClusterSecretStore", Name: "other"}) {
				t.Errorf("store = %+v", p.Sources[0].Store)
			}
		}},
		{name: "template metadata renders into labels", es: es(func(s *esv1.ExternalSecretSpec) {
			s.Target.Template = &esv1.ExternalSecretTemplate{Type: "kubernetes.io/tls", Metadata: esv1.ExternalSecretTemplateMetadata{Labels: map[string]string{"app": "{{ .k }}"}}}
		}), check: func(t *testing.T, p engine.Plan) {
			if p.Target.Type != "kubernetes.io/tls" || len(p.Template.Items) != 1 || p.Template.Items[0].Target != "Labels" {
				t.Errorf("template = %+v", p.Template)
			}
		}},
		{name: "nothing to write", es: es(func(s *esv1.ExternalSecretSpec) { s.Data = nil }), invalid: "nothing to write"},
		{name: "no store", es: es(func(s *esv1.ExternalSecretSpec) { s.SecretStoreRef = esv1.SecretStoreRef{} }), invalid: "spec.data[0]: no store"},
		{name: "generators are refused", es: es(func(s *esv1.ExternalSecretSpec) {
			s.Data[0].SourceRef = &esv1.StoreSourceRef{GeneratorRef: &esv1.GeneratorRef{Kind: "Password", Name: "p"}}
		}), invalid: "generatorRef"},
		{name: "bad find regexp", es: es(func(s *esv1.ExternalSecretSpec) {
			s.DataFrom = []esv1.ExternalSecretDataFromRemoteRef{{Find: &esv1.ExternalSecretFind{Name: &esv1.FindName{RegExp: "("}}}}
		}), invalid: "spec.dataFrom[0].find.name.regexp"},
		{name: "bad template", es: es(func(s *esv1.ExternalSecretSpec) {
			s.Target.Template = &esv1.ExternalSecretTemplate{Data: map[string]string{"x": "{{ .k "}}
		}), invalid: "spec.target.template.data.x"},
		{name: "unknown template function", es: es(func(s *esv1.ExternalSecretSpec) {
			s.Target.Template = &esv1.ExternalSecretTemplate{Data: map[string]string{"x": `{{ env "HOME" }}`}}
		}), invalid: "env"},
		{name: "Delete with Merge", es: es(func(s *esv1.ExternalSecretSpec) {
			s.Target.CreationPolicy, s.Target.DeletionPolicy = esv1.CreatePolicyMerge, esv1.DeletionPolicyDelete
		}), invalid: "deletionPolicy Delete cannot be combined"},
		{name: "refreshInterval that is not a duration", es: es(func(s *esv1.ExternalSecretSpec) {
			s.RefreshInterval = durationAsWritten(`"1d"`)
		}), invalid: `spec.refreshInterval: "1d" is not a duration`},
		{name: "refreshInterval 0 disables the timer", es: es(func(s *esv1.ExternalSecretSpec) {
			s.RefreshInterval = durationAsWritten(`"0"`)
		}), check: func(t *testing.T, p engine.Plan) {
			if p.MaxAge != 0 {
				t.Errorf("MaxAge = %s, want 0", p.MaxAge)
			}
		}},
		{name: "extract and find together", es: es(func(s *esv1.ExternalSecretSpec) {
			s.DataFrom = []esv1.ExternalSecretDataFromRemoteRef{{Extract: &esv1.ExternalSecretDataRemoteRef{Key: "a"}, Find: &esv1.ExternalSecretFind{Path: new(string)}}}
		}), invalid: "both extract and find"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.es)
			if tt.invalid != "" {
				var ee *engine.Error
				if !errors.As(err, &ee) || ee.Reason != engine.ReasonInvalidSpec || !strings.Contains(ee.Error(), tt.invalid) {
					t.Fatalf("err = %v, want InvalidSpec mentioning %q", err, tt.invalid)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
}

func TestVersionChangesWithSpecAndMetadata(t *testing.T) {
	a := es(nil)
	a.Generation = 1
	v1 := Version(a)
	a.Annotations = map[string]string{esv1.AnnotationForceSync: "now"}
	if Version(a) == v1 {
		t.Error("force-sync annotation did not change the version")
	}
	a.Generation = 2
	if !strings.HasPrefix(Version(a), "2-") {
		t.Errorf("version %q does not start with the generation", Version(a))
	}
}

// durationAsWritten decodes a JSON value the way the informer does; it never
// fails, whatever the value.
func durationAsWritten(v string) *esv1.Duration {
	d := &esv1.Duration{}
	_ = json.Unmarshal([]byte(v), d)
	return d
}

func ptrTo[T any](v T) *T { return &v }

package externalsecret

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
)

func genES(mut func(*esv1.ExternalSecret)) *esv1.ExternalSecret {
	e := &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "password", UID: "uid-1", Generation: 4,
		Annotations: map[string]string{esv1.AnnotationForceSync: "t1"}}}
	e.Spec.RefreshInterval = &esv1.Duration{Duration: 30 * time.Minute}
	e.Spec.Target.Name = "password-secret"
	e.Spec.DataFrom = []esv1.ExternalSecretDataFromRemoteRef{{SourceRef: &esv1.StoreSourceRef{
		GeneratorRef: &esv1.GeneratorRef{APIVersion: "generators.external-secrets.io/v1alpha1", Kind: "Password", Name: "my-password"},
	}}}
	if mut != nil {
		mut(e)
	}
	return e
}

func TestCompileGeneratorRef(t *testing.T) {
	tests := []struct {
		name    string
		es      *esv1.ExternalSecret
		check   func(*testing.T, engine.Plan)
		invalid string
	}{
		{name: "ESO's Password example needs no store", es: genES(nil), check: func(t *testing.T, p engine.Plan) {
			if len(p.Sources) != 1 || p.Sources[0].Generator == nil {
				t.Fatalf("sources = %+v", p.Sources)
			}
			g := p.Sources[0].Generator
			if g.Kind != "Password" || g.Name != "my-password" || g.Field != "spec.dataFrom[0].sourceRef.generatorRef" {
				t.Errorf("generator = %+v", g)
			}
			if p.Generation != (engine.Generation{Generation: 4, ForceSync: "t1", Interval: 30 * time.Minute}) {
				t.Errorf("generation = %+v", p.Generation)
			}
		}},
		{name: "apiVersion defaults", es: genES(func(e *esv1.ExternalSecret) { e.Spec.DataFrom[0].SourceRef.GeneratorRef.APIVersion = "" }), check: func(t *testing.T, p engine.Plan) {
			if p.Sources[0].Generator == nil {
				t.Fatal("no generator source")
			}
		}},
		{name: "rewrite applies to generated keys", es: genES(func(e *esv1.ExternalSecret) {
			e.Spec.DataFrom[0].Rewrite = []esv1.ExternalSecretRewrite{{Regexp: &esv1.ExternalSecretRewriteRegexp{Source: "password", Target: "db-password"}}}
		}), check: func(t *testing.T, p engine.Plan) {
			if rw := p.Sources[0].Generator.Rewrite; len(rw) != 1 || rw[0].RegexpTarget != "db-password" {
				t.Errorf("rewrite = %+v", rw)
			}
		}},
		{name: "refreshInterval 0 generates once", es: genES(func(e *esv1.ExternalSecret) { e.Spec.RefreshInterval = &esv1.Duration{} }), check: func(t *testing.T, p engine.Plan) {
			if p.Generation.Interval != 0 {
				t.Errorf("interval = %s", p.Generation.Interval)
			}
		}},
		{name: "refreshPolicy OnChange never regenerates on a timer", es: genES(func(e *esv1.ExternalSecret) { e.Spec.RefreshPolicy = esv1.RefreshPolicyOnChange }), check: func(t *testing.T, p engine.Plan) {
			if p.Generation.Interval != 0 {
				t.Errorf("interval = %s", p.Generation.Interval)
			}
		}},
		{name: "a generator mixed with store entries", es: genES(func(e *esv1.ExternalSecret) {
			e.Spec.SecretStoreRef = esv1.SecretStoreRef{Name: "store"}
			e.Spec.Data = []esv1.ExternalSecretData{{SecretKey: "user", RemoteRef: esv1.ExternalSecretDataRemoteRef{Key: "db-user"}}}
		}), check: func(t *testing.T, p engine.Plan) {
			if len(p.Sources) != 2 || p.Sources[0].Data == nil || p.Sources[1].Generator == nil {
				t.Errorf("sources = %+v", p.Sources)
			}
		}},
		{name: "ClusterGenerator compiles; its kind is checked at sync", es: genES(func(e *esv1.ExternalSecret) { e.Spec.DataFrom[0].SourceRef.GeneratorRef.Kind = "ClusterGenerator" }), check: func(t *testing.T, p engine.Plan) {
			if p.Sources[0].Generator.Kind != "ClusterGenerator" {
				t.Errorf("generator = %+v", p.Sources[0].Generator)
			}
		}},
		{name: "data[] generatorRef is refused as in ESO", es: genES(func(e *esv1.ExternalSecret) {
			e.Spec.Data = []esv1.ExternalSecretData{{SecretKey: "k", SourceRef: &esv1.StoreSourceRef{GeneratorRef: &esv1.GeneratorRef{Kind: "Password", Name: "p"}}}}
		}), invalid: "spec.data[0].sourceRef.generatorRef: generators are not implemented in spec.data[]"},
		{name: "other apiVersion", es: genES(func(e *esv1.ExternalSecret) {
			e.Spec.DataFrom[0].SourceRef.GeneratorRef.APIVersion = "generators.external-secrets.io/v2"
		}), invalid: "spec.dataFrom[0].sourceRef.generatorRef.apiVersion"},
		{name: "no name", es: genES(func(e *esv1.ExternalSecret) { e.Spec.DataFrom[0].SourceRef.GeneratorRef.Name = "" }), invalid: "generatorRef.name is empty"},
		{name: "no kind", es: genES(func(e *esv1.ExternalSecret) { e.Spec.DataFrom[0].SourceRef.GeneratorRef.Kind = "" }), invalid: "generatorRef.kind is empty"},
		{name: "generator with extract", es: genES(func(e *esv1.ExternalSecret) { e.Spec.DataFrom[0].Extract = &esv1.ExternalSecretDataRemoteRef{Key: "k"} }), invalid: "with extract or find"},
		{name: "generator and store in one sourceRef", es: genES(func(e *esv1.ExternalSecret) { e.Spec.DataFrom[0].SourceRef.SecretStoreRef.Name = "store" }), invalid: "both storeRef and generatorRef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.es)
			if tt.invalid != "" {
				var ee *engine.Error
				if !errors.As(err, &ee) || ee.Reason != engine.ReasonInvalidSpec || !strings.Contains(err.Error(), tt.invalid) {
					t.Fatalf("err = %v, want InvalidSpec containing %q", err, tt.invalid)
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

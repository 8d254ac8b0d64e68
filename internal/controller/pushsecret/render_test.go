package pushsecret

import (
	"context"
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
)

// renderPush compiles a spec.template and renders it over data with an
// engine that has no API reader (no templateFrom ConfigMaps or Secrets).
func renderPush(t *testing.T, doc string, data map[string][]byte) (map[string][]byte, error) {
	t.Helper()
	var tpl esv1.ExternalSecretTemplate
	if err := yaml.Unmarshal([]byte(doc), &tpl); err != nil {
		t.Fatal(err)
	}
	pt, msg := compileTemplate(&tpl)
	if msg != "" {
		t.Fatal(msg)
	}
	return (&engine.Engine{}).RenderPush(context.Background(), "ns", pt.Template, data)
}

// The push template as ESO applies it: the Secret's keys are .KEY,
// template.data renders after templateFrom and wins for the same key, the
// rendered keys replace or add to the Secret's, and the input is not
// changed.
func TestRenderPush(t *testing.T) {
	src := map[string][]byte{"best-pokemon-src": []byte("Pikachu"), "kept": []byte("k")}
	got, err := renderPush(t, `
data:
  best: '{{ index . "best-pokemon-src" | upper }} is the really best!'
  kept: '{{ .kept }}{{ .kept }}'
templateFrom:
  - literal: '{"best": "from the literal", "extra": "{{ .kept }}"}'
metadata:
  labels: {l: '{{ .kept }}'}
`, src)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"best-pokemon-src": "Pikachu", "best": "PIKACHU is the really best!", "kept": "kk", "extra": "k"}
	if len(got) != len(want) {
		t.Fatalf("rendered %d keys; want %d", len(got), len(want))
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("%s = %q; want %q", k, got[k], v)
		}
	}
	if string(src["kept"]) != "k" || len(src) != 2 {
		t.Errorf("the source data changed")
	}
}

func TestRenderPushFailures(t *testing.T) {
	const secret = "kf-render-canary"
	for _, tt := range []struct {
		name, doc, reason string
	}{
		{"a missing key", `data: {a: '{{ .missing }}'}`, engine.ReasonTemplateFailed},
		{"a function failing on the value", `data: {a: '{{ .v | fromJson }}'}`, engine.ReasonTemplateFailed},
		{"a failing label template", `metadata: {labels: {l: '{{ .v | fromJson }}'}}`, engine.ReasonTemplateFailed},
		{"over the budget", `data: {a: '{{ range until 20000 }}{{ end }}'}`, engine.ReasonTemplateBudgetExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderPush(t, tt.doc, map[string][]byte{"v": []byte(secret)})
			var ee *engine.Error
			if !errors.As(err, &ee) || ee.Reason != tt.reason {
				t.Fatalf("RenderPush = %v; want %s", err, tt.reason)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error quotes the value")
			}
		})
	}
}

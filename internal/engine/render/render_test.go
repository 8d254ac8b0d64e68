package render

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	data := map[string][]byte{"user": []byte("alice"), "password": []byte("s3cr3t"), "doc": []byte(`{"a":{"b":"deep"}}`)}
	tests := []struct {
		name  string
		items []Item
		want  Output
	}{
		{"plain value", []Item{{Key: "u", Template: "{{ .user }}"}},
			Output{Data: map[string][]byte{"u": []byte("alice")}}},
		{"sprig function", []Item{{Key: "u", Template: "{{ .user | upper }}"}},
			Output{Data: map[string][]byte{"u": []byte("ALICE")}}},
		{"fromJson", []Item{{Key: "b", Template: "{{ (.doc | fromJson).a.b }}"}},
			Output{Data: map[string][]byte{"b": []byte("deep")}}},
		{"dockerconfigjson", []Item{{Key: ".dockerconfigjson", Template: `{"auths":{"r":{"auth":"{{ printf "%s:%s" .user .password | b64enc }}"}}}`}},
			Output{Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"r":{"auth":"YWxpY2U6czNjcjN0"}}}`)}}},
		{"label target", []Item{{Key: "app", Template: "{{ .user }}", Target: TargetLabels}},
			Output{Labels: map[string]string{"app": "alice"}}},
		{"keys and values", []Item{{Template: "k1: {{ .user }}\nk2: fixed", KeysAndValues: true, Target: TargetAnnotations}},
			Output{Annotations: map[string]string{"k1": "alice", "k2": "fixed"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.items {
				tt.items[i].Source = tt.name
			}
			got, err := Render(tt.items, data)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Data) != len(tt.want.Data) || len(got.Labels) != len(tt.want.Labels) || len(got.Annotations) != len(tt.want.Annotations) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for k, v := range tt.want.Data {
				if string(got.Data[k]) != string(v) {
					t.Errorf("data[%s] = %q, want %q", k, got.Data[k], v)
				}
			}
			for k, v := range tt.want.Labels {
				if got.Labels[k] != v {
					t.Errorf("labels[%s] = %q, want %q", k, got.Labels[k], v)
				}
			}
			for k, v := range tt.want.Annotations {
				if got.Annotations[k] != v {
					t.Errorf("annotations[%s] = %q, want %q", k, got.Annotations[k], v)
				}
			}
		})
	}
}

func TestRemovedFunctionsAreUnavailable(t *testing.T) {
	for _, fn := range []string{"env", "expandenv", "getHostByName"} {
		if err := Validate("t", "{{ "+fn+" \"X\" }}"); err == nil {
			t.Errorf("%s is available to templates; it must not be", fn)
		}
	}
}

func TestErrorsNeverQuoteValues(t *testing.T) {
	const canary = "CANARY-9f3b-not-json"
	data := map[string][]byte{"v": []byte(canary)}
	for _, tpl := range []string{
		"{{ (.v | fromJson).x }}",
		"{{ .v | fromYaml }}{{ fail .missing }}",
		"{{ filterPEM \"CERTIFICATE\" .v }}",
		"{{ .v | b64dec | fromJson }}",
		"{{ index .v 99 }}",
		"{{ atoi .v | div 0 }}",
	} {
		_, err := Render([]Item{{Key: "k", Template: tpl, Source: "t"}}, data)
		if err == nil {
			t.Errorf("template %q: want an error", tpl)
			continue
		}
		if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "CANARY") {
			t.Errorf("template %q: error quotes the value: %v", tpl, err)
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add("{{ .a }}", "x")
	f.Add("{{ .a | b64dec | fromJson }}", "e30=")
	f.Add("k: {{ .a }}", "v")
	sb := NewSandbox(Limits{Timeout: 250 * time.Millisecond, MaxSteps: 100_000, MaxCostly: 1})
	f.Fuzz(func(t *testing.T, tpl, v string) {
		if generatesKeys(tpl) {
			return
		}
		_, _ = sb.Render(context.Background(), []Item{{Key: "k", Template: tpl, Source: "fuzz"}}, map[string][]byte{"a": []byte(v)})
		_, _ = sb.Render(context.Background(), []Item{{Template: tpl, KeysAndValues: true, Source: "fuzz"}}, map[string][]byte{"a": []byte(v)})
	})
}

package render

import (
	"bytes"
	"context"
	"testing"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

// typical is a template of the kind ESO users write: a connection URL, a
// docker config and a label, over four values.
var typical = []Item{
	{Key: "url", Template: `postgres://{{ .user }}:{{ .password | urlquery }}@{{ .host }}:5432/{{ .db }}?sslmode=require`, Source: "url"},
	{Key: ".dockerconfigjson", Template: `{"auths":{"{{ .host }}":{"username":"{{ .user }}","auth":"{{ printf "%s:%s" .user .password | b64enc }}"}}}`, Source: "docker"},
	{Key: "config.yaml", Template: "{{ range $k, $v := . }}{{ $k }}: {{ $v | quote }}\n{{ end }}", Source: "config"},
	{Key: "app", Template: `{{ .user | lower | trunc 63 }}`, Target: TargetLabels, Source: "label"},
}

var typicalData = map[string][]byte{"user": []byte("app"), "password": []byte("s3cr3t/pa ss"), "host": []byte("db.example.com"), "db": []byte("app")}

// BenchmarkRenderSandbox renders the typical templates through a shared
// Sandbox: pool slot, goroutine, deadline, instrumented parse tree and
// metered functions.
func BenchmarkRenderSandbox(b *testing.B) {
	sb := NewSandbox(Limits{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sb.Render(ctx, typical, typicalData); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderUnbounded renders the same templates the way keyferry
// did before the sandbox: a fresh sprig function map, parse and execute
// into a buffer, on the calling goroutine, without limits.
func BenchmarkRenderUnbounded(b *testing.B) {
	dot := map[string]string{}
	for k, v := range typicalData {
		dot[k] = string(v)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, it := range typical {
			fm := sprig.TxtFuncMap()
			t, err := template.New(it.Source).Funcs(fm).Option("missingkey=error").Parse(it.Template)
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			if err := t.Execute(&buf, dot); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRenderBare is the floor: parse and execute with a prebuilt
// function map and no limits.
func BenchmarkRenderBare(b *testing.B) {
	dot := map[string]string{}
	for k, v := range typicalData {
		dot[k] = string(v)
	}
	fm := rawFuncs()
	b.ReportAllocs()
	for b.Loop() {
		for _, it := range typical {
			t, err := template.New(it.Source).Funcs(fm).Option("missingkey=error").Parse(it.Template)
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			if err := t.Execute(&buf, dot); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRenderFloor parses the way the sandbox does (names checked in
// place, only the used functions bound) but executes on the calling
// goroutine without pool, deadline, instrumentation or metering: the
// difference to BenchmarkRenderSandbox is the sandbox's own cost.
func BenchmarkRenderFloor(b *testing.B) {
	sb := NewSandbox(Limits{})
	dot := map[string]string{}
	for k, v := range typicalData {
		dot[k] = string(v)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, it := range typical {
			t, err := sb.parse(it.Source, it.Template)
			if err != nil {
				b.Fatal(err)
			}
			fm := template.FuncMap{}
			for _, n := range []string{"urlquery", "printf", "b64enc", "quote", "lower", "trunc"} {
				if f, ok := sb.raw[n]; ok {
					fm[n] = f
				}
			}
			t.Funcs(fm)
			var buf bytes.Buffer
			if err := t.Execute(&buf, dot); err != nil {
				b.Fatal(err)
			}
		}
	}
}

package render

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fuzzCanary is the secret value the canary fuzz target renders over; no
// error may ever contain it.
const fuzzCanary = "kfCANARY4f9e"

// fragments are template pieces that operate on the canary value (.v, a
// string; .doc, a JSON document holding it; .list, a JSON list of it) in
// ways that fail, succeed or feed the next piece.
var fragments = []string{
	"{{ range .v }}{{ end }}",
	"{{ range $i, $e := .v }}{{ end }}",
	"{{ index .v 99 }}",
	"{{ index .v -1 }}",
	"{{ index (fromJson .doc) .v }}",
	"{{ index (fromJson .list) 0 | fromJson }}",
	"{{ .v | fromJson }}",
	"{{ .v | fromYaml | toJson }}",
	"{{ eq .v (list 1) }}",
	"{{ eq .v 1 }}",
	"{{ lt .v 1 }}",
	"{{ if .v }}{{ .v.x }}{{ end }}",
	"{{ with .v }}{{ .x }}{{ end }}",
	"{{ .v.x }}",
	"{{ (fromJson .doc).a.b }}",
	"{{ (fromJson .doc).a | atoi | div 0 }}",
	"{{ printf \"%d\" .v }}",
	"{{ atoi .v }}",
	"{{ slice .v 5 2 }}",
	"{{ slice .v 100 }}",
	"{{ $x := .v }}{{ $x.y }}",
	"{{ call .v }}",
	"{{ and .v (index .v 50) }}",
	"{{ dict .v 1 | toJson | fromYaml }}",
	"{{ len (fromJson .v) }}",
	"{{ b64dec .v }}",
	"{{ b64dec .v | fromJson }}",
	"{{ regexFind .v \"x\" }}",
	"{{ mustRegexFind .v \"x\" }}",
	"{{ filterPEM \"CERTIFICATE\" .v }}",
	"{{ fail .v }}",
	"{{ required .v .missing }}",
	"{{ .v | int | until }}",
	"{{ repeat (len .v) .v | indent 3 }}",
	"{{ .v | semver }}",
	"{{ .v | toDate \"2006\" }}",
	"{{ mustToDate \"2006\" .v }}",
	"{{ urlParse .v | toJson }}",
	"{{ decryptAES .v .v }}",
	"{{ buildCustomCert .v .v }}",
	"{{ genSignedCert .v nil nil 1 .v }}",
	"{{ get (fromJson .doc) .v | index }}",
	"{{ mustFirst .v }}",
	"{{ mustToJson (fromJson .doc) | mustFromJson }}",
	"{{ template .v }}",
	"{{ print (fromJson .doc) | fromJson }}",
	"{{ not .v | and .v | or .v | eq .v }}",
	"{{ range (fromJson .doc) }}{{ .z }}{{ end }}",
	"{{ range $k, $v := (fromJson .doc) }}{{ $v.z }}{{ end }}",
	"{{ .v | upper | lower | fromJson }}",
	"{{ .v | trimAll \"x\" | float64 | int }}",
	"{{ .v | splitList \"C\" | first | fromJson }}",
	"{{ .v | quote | fromJson | fromJson }}",
	"{{ dig \"a\" \"b\" .v (fromJson .doc) }}",
	"{{ pluck .v (fromJson .doc) | first | fromJson }}",
	"{{ .v | sha256sum }}",
	"{{ html .v | js | urlquery | fromJson }}",
	"{{ typeOf .v | fromJson }}",
	"{{ mustRegexReplaceAll .v \"a\" \"b\" }}",
	"{{ toDecimal .v | int | seq }}",
	"{{ .list }}",
	"{{ break }}",
	"{{ end }}",
	"{{ else }}",
	"{{ pkcs12key .v }}",
	"{{ pkcs12certPass .v .v }}",
	"{{ pemToPkcs12Pass .v .v .v }}",
	"{{ fullPemToPkcs12 .v .v }}",
	"{{ pemTruststoreToPKCS12 .v }}",
	"{{ certSANs .v | first }}",
	"{{ jwkPublicKeyPem .v }}",
	"{{ jwkPrivateKeyPem .doc }}",
	"{{ rsaDecrypt \"RSA-OAEP\" .v .v .v }}",
	"{{ rsaDecrypt .v \"SHA1\" .v .v }}",
}

func canaryData() map[string][]byte {
	return map[string][]byte{
		"v":    []byte(fuzzCanary),
		"doc":  []byte(`{"a":"` + fuzzCanary + `","n":[1,"` + fuzzCanary + `"]}`),
		"list": []byte(`["` + fuzzCanary + `"]`),
	}
}

// FuzzTemplateErrorsNeverQuoteValues builds templates out of fragments that
// operate on a canary value, plus raw fuzzed text, and checks that no error
// ever contains the canary.
func FuzzTemplateErrorsNeverQuoteValues(f *testing.F) {
	f.Add([]byte{0}, "")
	f.Add([]byte{1, 2, 3}, "{{ .v }}")
	f.Add([]byte{8, 12, 40}, "{{ range $x := .v }}")
	f.Add([]byte{}, "{{ printf \"%s\" .v | fromJson }}")
	f.Add([]byte{5, 6}, "{{ $m := fromJson .doc }}{{ range $m.n }}{{ .x }}{{ end }}")
	sb := NewSandbox(Limits{Timeout: 500 * time.Millisecond, MaxSteps: 10_000, MaxCostly: 1})
	data := canaryData()
	f.Fuzz(func(t *testing.T, ops []byte, raw string) {
		if len(ops) > 16 || len(raw) > 512 || strings.Contains(raw, fuzzCanary) {
			return
		}
		var b strings.Builder
		for _, op := range ops {
			b.WriteString(fragments[int(op)%len(fragments)])
		}
		b.WriteString(raw)
		tpl := b.String()
		if generatesKeys(tpl) {
			return
		}
		for _, it := range []Item{
			{Key: "k", Template: tpl, Source: "fuzz"},
			{Template: tpl, KeysAndValues: true, Source: "fuzz"},
		} {
			_, err := sb.Render(context.Background(), []Item{it}, data)
			if err != nil && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(fuzzCanary)) {
				t.Fatalf("template %q: error quotes the value: %v", tpl, err)
			}
		}
	})
}

// FuzzTemplateBudget runs fuzzed templates under small limits and checks
// that each render ends near its deadline, writes no more than the output
// limit and never crashes.
func FuzzTemplateBudget(f *testing.F) {
	for _, s := range []string{
		"{{ range 1000000000 }}{{ end }}",
		"{{ range 1000000000 }}x{{ end }}",
		"{{ until 100000000 }}",
		"{{ untilStep 0 100000000 1 }}",
		"{{ seq 100000000 }}",
		`{{ repeat 100000000 "x" }}`,
		`{{ $s := "x" }}{{ range until 64 }}{{ $s = cat $s $s }}{{ end }}`,
		`{{ $l := list 1 }}{{ range until 64 }}{{ $l = concat $l $l }}{{ end }}{{ $l }}`,
		`{{ $d := dict }}{{ $_ := set $d "a" $d }}{{ $d | toJson }}`,
		`{{ define "a" }}{{ template "a" . }}{{ end }}{{ template "a" . }}`,
		`{{ printf "%999999d" 1 }}`,
		`{{ indent 100000000 "x" }}`,
		`{{ randAlphaNum 100000000 }}`,
		`{{ range $i := 1000 }}{{ range $j := 1000 }}{{ $i }}{{ end }}{{ end }}`,
		`{{ genPrivateKey "dsa" }}`,
	} {
		f.Add(s)
	}
	l := Limits{MaxOutput: 64 << 10, MaxValue: 32 << 10, MaxAlloc: 4 << 20, MaxSteps: 100_000, MaxList: 1000, MaxCostly: 1, Timeout: 250 * time.Millisecond, Concurrency: 2}
	sb := NewSandbox(l)
	f.Fuzz(func(t *testing.T, tpl string) {
		if generatesKeys(tpl) {
			return
		}
		start := time.Now()
		out, err := sb.Render(context.Background(), []Item{{Key: "k", Template: tpl, Source: "fuzz"}}, map[string][]byte{"v": []byte("value")})
		if d := time.Since(start); d > l.Timeout+2*time.Second {
			t.Fatalf("template %q: render took %v, over its %v budget", tpl, d, l.Timeout)
		}
		if err == nil && len(out.Data["k"]) > l.MaxOutput {
			t.Fatalf("template %q: wrote %d bytes, over the %d limit", tpl, len(out.Data["k"]), l.MaxOutput)
		}
		if err != nil && errors.Is(err, ErrBudgetExceeded) && !strings.Contains(err.Error(), "template budget exceeded") {
			t.Fatalf("budget error without its message: %v", err)
		}
	})
}

// generatesKeys says a template may generate keys. An RSA key generation
// runs to completion whatever the render's deadline (documented in
// docs/templates.md; Limits.MaxCostly bounds how many a render makes), and
// one 4096-bit generation can outlast a whole short fuzz run on a loaded
// machine, so the fuzz targets leave such templates to the budget tests.
func generatesKeys(tpl string) bool {
	return strings.Contains(tpl, "genPrivateKey") || strings.Contains(tpl, "Cert") || strings.Contains(tpl, "genCA")
}

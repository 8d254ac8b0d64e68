package webhook

import (
	"bytes"
	"strings"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// FuzzScopedToNamespaceIsSound: whenever ScopedToNamespace says a template
// does not read the requester's namespace, rendering it for two namespaces
// gives the same request, so sharing its client and cache is safe.
func FuzzScopedToNamespaceIsSound(f *testing.F) {
	for _, seed := range []string{
		"https://s/{{ .remoteRef.key }}",
		"https://s/{{ .remoteRef.namespace }}",
		`https://s/{{ index .remoteRef "namespace" }}`,
		`https://s/{{ with .remoteRef }}{{ .namespace }}{{ end }}`,
		`https://s/{{ $r := .remoteRef }}{{ $r.namespace }}`,
		`https://s/{{ toJson . }}`,
		`https://s/{{ (.remoteRef).namespace }}`,
		`https://s/{{ template "x" . }}{{ define "x" }}{{ .remoteRef.namespace }}{{ end }}`,
		`https://s/{{ if eq .remoteRef.key "k" }}{{ .remoteRef.namespace }}{{ end }}`,
		`https://s/{{ .remoteRef | toJson }}`,
		`https://s/{{ $.remoteRef.namespace | upper }}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 512 {
			t.Skip()
		}
		for _, slow := range []string{"range", "until", "seq", "repeat", "gen", "derive", "bcrypt", "htpasswd"} {
			if strings.Contains(text, slow) {
				t.Skip() // expensive to render, not interesting here
			}
		}
		spec := &esv1.WebhookProvider{URL: text}
		tpl, err := parseTemplate("url", text)
		if err != nil {
			return
		}
		store := provider.Store{Kind: esv1.SecretStoreKind, Namespace: "ns", Name: "s", Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Webhook: spec}}}
		if (&Provider{}).ScopedToNamespace(store) {
			return
		}
		render := func(ns string) ([]byte, bool) {
			out, err := execute(tpl, templateData(provider.Ref{Key: "k", Version: "1"}, ns, nil, true))
			return out, err == nil
		}
		a1, ok1 := render("tenant-a")
		a2, ok2 := render("tenant-a")
		if ok1 != ok2 || !bytes.Equal(a1, a2) {
			t.Skip() // not deterministic (random, time): nothing to compare
		}
		b, okb := render("tenant-b")
		if ok1 != okb || !bytes.Equal(a1, b) {
			t.Fatalf("ScopedToNamespace(%q) = false, but it renders %q for tenant-a and %q for tenant-b", text, a1, b)
		}
	})
}

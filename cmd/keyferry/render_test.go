package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the render tests")

func renderArgs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runRender(context.Background(), args, &stdout, &stderr)
	return stdout.String(), err
}

// TestRenderExamples renders the manifests in examples/ (applied as they
// are by the integration tests) from values in files and compares the
// Secrets with golden files (go test -run TestRenderExamples -update
// rewrites them).
func TestRenderExamples(t *testing.T) {
	const td = "testdata/render/"
	tests := []struct {
		name string
		args []string
	}{
		{"quickstart", []string{"-f", "../../examples/quickstart/quickstart.yaml", "--values", td + "quickstart-values.yaml"}},
		{"quickstart-decoded", []string{"-f", "../../examples/quickstart/quickstart.yaml", "--values", td + "quickstart-values.yaml", "--decoded"}},
		{"vsecm-from-dir", []string{"-f", "../../examples/vsecm/20-externalsecret.yaml", "--from-dir", td + "vsecm-values", "--namespace", "vsecm-demo"}},
		{"regcred-esoctl-flags", []string{"--source-templated-object", "../../examples/azure-key-vault/50-externalsecret-regcred.yaml", "--source-secret-data-file", td + "regcred-data.yaml"}},
		{"distributor-clusterexternalsecret", []string{"-f", "../../examples/distributor/20-clusterexternalsecret.yaml", "--values", td + "wildcard-values.json", "--namespace", "team-a"}},
		{"pushsecret-template", []string{"-f", td + "pushsecret.yaml", "--secret-data", td + "pushsecret-data.yaml", "--decoded"}},
		{"templatefrom", []string{"-f", td + "templatefrom.yaml", "--values", td + "templatefrom-values.yaml",
			"--template-from-config-map", td + "templatefrom-configmap.yaml", "--template-from-secret", td + "templatefrom-secret.yaml", "--decoded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderArgs(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(td, tt.name+".golden.yaml")
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Fatalf("output differs from %s:\n%s", golden, got)
			}
		})
	}
}

func TestRenderOutputFileAndSelection(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "two.yaml")
	// A SecretStore (skipped) and two ExternalSecrets; --name picks one.
	two := `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: s}
spec: {provider: {fake: {data: []}}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: a}
spec:
  secretStoreRef: {name: s}
  data: [{secretKey: x, remoteRef: {key: k}}]
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: b}
spec:
  secretStoreRef: {name: s}
  target: {template: {data: {upper: "{{ .x | upper }}"}}}
  data: [{secretKey: x, remoteRef: {key: k}}]
`
	values := filepath.Join(dir, "values.yaml")
	for f, content := range map[string]string{manifest: two, values: "x: hello\n"} {
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out.yaml")
	stdout, err := renderArgs(t, "-f", manifest, "--values", values, "--name", "b", "--output", out)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "" {
		t.Fatalf("stdout = %q, want nothing with --output", stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := yaml.UnmarshalStrict(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != "b" || s.Namespace != "default" || string(s.Data["upper"]) != "HELLO" || len(s.Data) != 1 {
		t.Fatalf("got %s/%s %v", s.Namespace, s.Name, s.Data)
	}
	// Values are YAML 1.2: "on" is text, not true.
	on := filepath.Join(dir, "on.yaml")
	if err := os.WriteFile(on, []byte("x: on\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := renderArgs(t, "-f", manifest, "--values", on, "--name", "b", "--decoded")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "upper: \"ON\"") {
		t.Fatalf("want upper: ON, got:\n%s", got)
	}
	all, err := renderArgs(t, "-f", manifest, "--values", values)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(all, "kind: Secret\n"); n != 2 || strings.Count(all, "\n---\n") != 1 {
		t.Fatalf("want two Secrets separated by ---, got:\n%s", all)
	}
}

// TestRenderCertificateHelpers runs ESO's PKCS#12 template on an archive
// given with --from-dir: keyferry render uses the operator's helpers.
func TestRenderCertificateHelpers(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "app"}, DNSNames: []string{"app.example.org"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := gopkcs12.Modern.Encode(key, cert, nil, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	values := filepath.Join(dir, "values")
	if err := os.Mkdir(values, 0o700); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "es.yaml")
	for f, content := range map[string][]byte{
		filepath.Join(values, "keystore"): []byte(base64.StdEncoding.EncodeToString(pfx)),
		filepath.Join(values, "..data"):   []byte("ignored: volume bookkeeping"),
		manifest: []byte(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: tls, namespace: web}
spec:
  secretStoreRef: {name: azure, kind: ClusterSecretStore}
  target:
    template:
      type: kubernetes.io/tls
      engineVersion: v2
      data:
        tls.crt: '{{ .keystore | b64dec | pkcs12certPass "changeit" }}'
        tls.key: '{{ .keystore | b64dec | pkcs12keyPass "changeit" }}'
        sans: '{{ .keystore | b64dec | pkcs12certPass "changeit" | certSANs | join "," }}'
  data:
    - secretKey: keystore
      remoteRef: {key: secret/app-cert}
`),
	} {
		if err := os.WriteFile(f, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := renderArgs(t, "-f", manifest, "--from-dir", values)
	if err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := yaml.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	wantCert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if s.Type != corev1.SecretTypeTLS || string(s.Data["tls.crt"]) != wantCert || string(s.Data["sans"]) != "app.example.org" {
		t.Fatalf("got type %s, data %q", s.Type, s.Data)
	}
	if !strings.HasPrefix(string(s.Data["tls.key"]), "-----BEGIN PRIVATE KEY-----") {
		t.Fatalf("tls.key = %q", s.Data["tls.key"])
	}
}

func TestRenderErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	es := func(spec string) string {
		return "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: e}\nspec:\n  secretStoreRef: {name: s}\n" + spec
	}
	values := write("values.yaml", "x: hello\n")
	const data = "  data: [{secretKey: x, remoteRef: {key: k}}]\n"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no manifest", []string{}, "no manifest: give one with -f"},
		{"positional argument", []string{"es.yaml"}, `unexpected argument "es.yaml"`},
		{"missing file", []string{"-f", filepath.Join(dir, "nope.yaml")}, "nope.yaml: no such file"},
		{"no ExternalSecret", []string{"-f", write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")}, "no ExternalSecret, ClusterExternalSecret or PushSecret in"},
		{"name not found", []string{"-f", write("e1.yaml", es(data)), "--values", values, "--name", "other"}, `no ExternalSecret, ClusterExternalSecret or PushSecret named "other"`},
		{"unknown field", []string{"-f", write("e2.yaml", es("  dat: []\n")), "--values", values}, `unknown field "dat"`},
		{"value missing", []string{"-f", write("e3.yaml", es("  data:\n  - {secretKey: x, remoteRef: {key: k}}\n  - {secretKey: z, remoteRef: {key: k2}}\n")), "--values", values}, `no value for spec.data secretKey "z"`},
		{"invalid spec", []string{"-f", write("e4.yaml", es("  target: {template: {engineVersion: v1}}\n"+data)), "--values", values}, `engineVersion "v1" is not supported`},
		{"template does not parse", []string{"-f", write("e5.yaml", es("  target: {template: {data: {k: '{{ .x '}}}\n"+data)), "--values", values}, "parsing template spec.target.template.data.k"},
		{"template fails", []string{"-f", write("e6.yaml", es("  target: {template: {data: {k: '{{ .x | pkcs12key }}'}}}\n"+data)), "--values", values}, "calling pkcs12key failed: the value is not a PKCS#12 archive"},
		{"missing template key", []string{"-f", write("e7.yaml", es("  target: {template: {data: {k: '{{ .nope }}'}}}\n"+data)), "--values", values}, "the data has no key nope"},
		{"templateFrom secret not given", []string{"-f", write("e8.yaml", es("  target: {template: {templateFrom: [{secret: {name: t, items: [{key: a}]}}]}}\n"+data)), "--values", values}, "Secret default/t was not given (give it with --template-from-secret)"},
		{"templateFrom key missing", []string{"-f", write("e9.yaml", es("  target: {template: {templateFrom: [{configMap: {name: t, items: [{key: a}]}}]}}\n"+data)), "--values", values,
			"--template-from-config-map", write("cm2.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\ndata: {b: x}\n")}, `templateFrom configmap t has no key "a"`},
		{"template-from file without ConfigMap", []string{"-f", write("e10.yaml", es(data)), "--values", values, "--template-from-config-map", values}, "no ConfigMap in the file"},
		{"key given twice", []string{"-f", write("e11.yaml", es(data)), "--values", values, "--values", values}, `key "x" is given more than once`},
		{"values not a map", []string{"-f", write("e12.yaml", es(data)), "--values", write("list.yaml", "- a\n- b\n")}, "not a YAML or JSON map of keys to values"},
		{"secret data not base64", []string{"-f", write("e13.yaml", es(data)), "--secret-data", write("b64.yaml", "x: '***'\n")}, `key "x": the value is not base64`},
		{"null value", []string{"-f", write("e14.yaml", es(data)), "--values", write("null.yaml", "x: null\n")}, `key "x": the value is empty (null)`},
		{"PushSecret pushes a key the template does not render", []string{"-f", write("p1.yaml", `apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata: {name: p}
spec:
  secretStoreRefs: [{name: s}]
  selector: {secret: {name: src}}
  template: {data: {token: "{{ .x | upper }}"}}
  data: [{match: {secretKey: x, remoteRef: {remoteKey: r}}}]
`), "--values", values}, `spec.data match.secretKey "x": not a key of the Secret to push`},
		{"invalid rendered key", []string{"-f", write("e15.yaml", es("  target: {template: {templateFrom: [{literal: '{{ .x }}/bad: v'}]}}\n"+data)), "--values", values}, "the template rendered a key that is not a valid Secret key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderArgs(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hello") {
				t.Fatalf("error %q quotes a value", err)
			}
		})
	}
}

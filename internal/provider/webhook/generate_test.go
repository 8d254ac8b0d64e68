package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
	"github.com/tidwall/gjson"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/provider"
)

// generatorOpts are the options the fetch layer passes for a namespaced
// Webhook generator of ns: its spec as an in-memory store of ns.
func generatorOpts(t *testing.T, ns string, spec *esv1.WebhookProvider) provider.Options {
	t.Helper()
	store := provider.Store{Kind: "Webhook", Name: "webhook", Namespace: ns,
		Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Webhook: spec}}}
	opts, err := provider.Admit(New(), provider.Options{Store: store, Namespace: ns, Kube: kubeFor(t), Log: testr.New(t)})
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	return opts
}

func generate(t *testing.T, p provider.Provider, opts provider.Options) (map[string][]byte, error) {
	t.Helper()
	out, err := p.(provider.Generator).Generate(context.Background(), opts, provider.GenerateRequest{Kind: "Webhook", Spec: &genv1alpha1.WebhookSpec{}})
	assertNoCanary(t, err)
	return out, err
}

func strs(m map[string][]byte) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// TestGenerateESOExample runs ESO's documented Webhook generator against a
// server answering as httpbin.org/get does: the keys are the members of
// $.args, and each generation is one request of its own.
func TestGenerateESOExample(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "webhook-credentials", webhookLabel, map[string]string{"username": "test", "password": canary, "param": "test"})
	srv := startServer(t, nil, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"args": {"parameter": %q}, "headers": {"Host": "httpbin.org"}, "url": "http://httpbin.org/get"}`, r.URL.Query().Get("parameter"))
	})
	spec := &esv1.WebhookProvider{
		URL:    srv.URL + "/get?parameter={{ .auth.param }}",
		Result: esv1.WebhookResult{JSONPath: "$.args"},
		Headers: map[string]string{
			"Content-Type":  "application/json",
			"Authorization": `Basic {{ print .auth.username ":" .auth.password | b64enc }}`,
		},
		Secrets: []esv1.WebhookSecret{{Name: "auth", SecretRef: esv1.SecretKeySelector{Name: "webhook-credentials"}}},
	}
	p := New()
	opts := generatorOpts(t, ns, spec)
	for i := 1; i <= 2; i++ {
		out, err := generate(t, p, opts)
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		if want := map[string]string{"parameter": "test"}; !reflect.DeepEqual(strs(out), want) {
			t.Fatalf("generated %v, want %v", strs(out), want)
		}
		if got := srv.hits.Load(); got != int64(i) {
			t.Fatalf("%d generations made %d requests, want one each", i, got)
		}
	}
	req, _ := srv.last()
	if user, pass, ok := req.BasicAuth(); !ok || user != "test" || pass != canary {
		t.Fatal("the Authorization header is not the template's")
	}
}

// TestGenerateReadsAJSONObject: ESO's rules for what the response becomes.
func TestGenerateReadsAJSONObject(t *testing.T) {
	ns := newNamespace(t)
	for _, tc := range []struct {
		name, body, jsonPath string
		want                 map[string]string
		wantErr              error
	}{
		{name: "without jsonPath the whole response", body: `{"a": "` + canary + `", "b": "2"}`, want: map[string]string{"a": canary, "b": "2"}},
		{name: "values as ESO writes them", body: `{"s": "x", "n": 1e3, "f": 1.5, "t": true, "z": null, "o": {"k": [1, "v"]}, "l": ["a", 2]}`,
			want: map[string]string{"s": "x", "n": "1000", "f": "1.5", "t": "true", "z": "", "o": `{"k":[1,"v"]}`, "l": `["a",2]`}},
		{name: "jsonPath selects an object", body: `{"data": {"token": "` + canary + `"}}`, jsonPath: "$.data", want: map[string]string{"token": canary}},
		{name: "a selected string holding JSON is read as JSON", body: `{"data": "{\"token\": \"x\"}"}`, jsonPath: "$.data", want: map[string]string{"token": "x"}},
		{name: "an empty object makes no keys", body: `{"data": {}}`, jsonPath: "$.data", want: map[string]string{}},
		{name: "a selected string that is not JSON", body: `{"data": "` + canary + `"}`, jsonPath: "$.data", wantErr: provider.ErrBadResponse},
		{name: "a selected number", body: `{"data": 4}`, jsonPath: "$.data", wantErr: provider.ErrBadResponse},
		{name: "a selected array", body: `{"data": [{"a": "` + canary + `"}]}`, jsonPath: "$.data", wantErr: provider.ErrBadResponse},
		{name: "jsonPath matches nothing", body: `{"data": {}}`, jsonPath: "$.nope", wantErr: provider.ErrBadResponse},
		{name: "jsonPath matches several values", body: `{"d": [{"a": 1}, {"b": 2}]}`, jsonPath: "$.d[*]", wantErr: provider.ErrBadResponse},
		{name: "a response that is not JSON", body: canary, wantErr: provider.ErrBadResponse},
		{name: "a top-level array", body: `["` + canary + `"]`, wantErr: provider.ErrBadResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, nil, func(w http.ResponseWriter, _ *http.Request, _ []byte) { fmt.Fprint(w, tc.body) })
			out, err := generate(t, New(), generatorOpts(t, ns, &esv1.WebhookProvider{URL: srv.URL, Result: esv1.WebhookResult{JSONPath: tc.jsonPath}}))
			if tc.wantErr != nil {
				wantErr(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if !reflect.DeepEqual(strs(out), tc.want) {
				t.Fatalf("generated %v, want %v", strs(out), tc.want)
			}
		})
	}
}

// TestGenerateKeepsTheStoreRules: a generator's request passes every rule
// of a webhook store's client, and a refused request is never sent.
func TestGenerateKeepsTheStoreRules(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	createSecret(t, ns, "unlabelled", nil, map[string]string{"token": canary})
	createSecret(t, other, "elsewhere", webhookLabel, map[string]string{"token": canary})
	createSecret(t, ns, "creds", webhookLabel, map[string]string{"token": canary})
	srv := startServer(t, nil, func(w http.ResponseWriter, _ *http.Request, _ []byte) { fmt.Fprint(w, `{"a": "b"}`) })
	secret := func(name string) []esv1.WebhookSecret {
		return []esv1.WebhookSecret{{Name: "auth", SecretRef: esv1.SecretKeySelector{Name: name}}}
	}
	for _, tc := range []struct {
		name    string
		spec    *esv1.WebhookProvider
		want    error
		message string
	}{
		{name: "a Secret without the webhook label", spec: &esv1.WebhookProvider{URL: srv.URL, Secrets: secret("unlabelled")},
			want: provider.ErrInvalidConfig, message: SecretTypeLabel},
		{name: "a Secret of another namespace is looked up in the generator's", spec: &esv1.WebhookProvider{URL: srv.URL, Secrets: secret("elsewhere")},
			want: provider.ErrInvalidConfig, message: "secret " + ns + "/elsewhere"},
		{name: "credentials over plain http to a remote host", spec: &esv1.WebhookProvider{URL: "http://generator.example/new", Secrets: secret("creds")},
			want: provider.ErrInvalidConfig, message: "plain http://"},
		{name: "a link-local address", spec: &esv1.WebhookProvider{URL: "http://169.254.169.254/latest"},
			want: provider.ErrInvalidConfig, message: "169.254.169.254"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.hits.Load()
			_, err := generate(t, New(), generatorOpts(t, ns, tc.spec))
			wantErr(t, err, tc.want)
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("error %q does not say %q", err, tc.message)
			}
			if tc.spec.URL == srv.URL && srv.hits.Load() != before {
				t.Fatal("a refused generation reached the server")
			}
		})
	}
}

func TestGenerateRefusesOtherKinds(t *testing.T) {
	_, err := New().(provider.Generator).Generate(context.Background(), provider.Options{}, provider.GenerateRequest{Kind: "Password", Spec: &genv1alpha1.PasswordSpec{}})
	if !errors.Is(err, provider.ErrNotSupported) {
		t.Fatalf("err = %v, want ErrNotSupported", err)
	}
}

// FuzzGeneratedKeys: no response panics the reading of a generator's keys,
// and no error quotes the response.
func FuzzGeneratedKeys(f *testing.F) {
	for _, s := range []string{`{"a": "b"}`, `{"a": {"b": [1, null, true]}}`, `"{\"a\": 1}"`, `[1]`, `1e999`, `"x"`, `{"a": 1e400}`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if !gjson.Valid(body) {
			return
		}
		out, err := generatedKeys(gjson.Parse(body))
		if err != nil {
			if len(body) > 8 && strings.Contains(err.Error(), body) {
				t.Fatalf("error %q quotes the response", err)
			}
			return
		}
		if out == nil {
			t.Fatal("no error and no keys")
		}
	})
}

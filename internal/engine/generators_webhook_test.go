package engine

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/webhook"
)

func TestWebhookGeneratorStore(t *testing.T) {
	timeout := &esv1.Duration{Duration: 5 * time.Second}
	ntlm := &esv1.NTLMAuth{UserName: esv1.SecretKeySelector{Name: "n", Key: "u"}, Password: esv1.SecretKeySelector{Name: "n", Key: "p"}}
	ca := &esv1.CAProvider{Type: "Secret", Name: "ca", Key: "ca.crt"}
	for _, tc := range []struct {
		name    string
		spec    genv1alpha1.GeneratorSpec
		want    *esv1.WebhookProvider
		wantErr string
	}{
		{name: "ESO's example: url, result, headers and secrets become the store's",
			spec: genv1alpha1.GeneratorSpec{WebhookSpec: &genv1alpha1.WebhookSpec{
				URL:     "http://httpbin.org/get?parameter={{ .auth.param }}",
				Result:  esv1.WebhookResult{JSONPath: "$.args"},
				Headers: map[string]string{"Content-Type": "application/json", "Authorization": "Basic {{ print .auth.username \":\" .auth.password | b64enc }}"},
				Secrets: []genv1alpha1.WebhookSecret{{Name: "auth", SecretRef: genv1alpha1.WebhookSecretKeySelector{Name: "webhook-credentials"}}},
			}},
			want: &esv1.WebhookProvider{
				URL:     "http://httpbin.org/get?parameter={{ .auth.param }}",
				Result:  esv1.WebhookResult{JSONPath: "$.args"},
				Headers: map[string]string{"Content-Type": "application/json", "Authorization": "Basic {{ print .auth.username \":\" .auth.password | b64enc }}"},
				Secrets: []esv1.WebhookSecret{{Name: "auth", SecretRef: esv1.SecretKeySelector{Name: "webhook-credentials"}}},
			}},
		{name: "every field is kept; a secret's key too, and no namespace is added",
			spec: genv1alpha1.GeneratorSpec{WebhookSpec: &genv1alpha1.WebhookSpec{
				Method: "POST", URL: "https://gen.example/new", Body: `{"n": 1}`, Timeout: timeout,
				Auth:     &genv1alpha1.WebhookAuth{NTLM: ntlm},
				Secrets:  []genv1alpha1.WebhookSecret{{Name: "s", SecretRef: genv1alpha1.WebhookSecretKeySelector{Name: "creds", Key: "token"}}},
				CABundle: []byte("pem"), CAProvider: ca,
			}},
			want: &esv1.WebhookProvider{
				Method: "POST", URL: "https://gen.example/new", Body: `{"n": 1}`, Timeout: timeout,
				Auth:     &esv1.WebhookAuth{NTLM: ntlm},
				Secrets:  []esv1.WebhookSecret{{Name: "s", SecretRef: esv1.SecretKeySelector{Name: "creds", Key: "token"}}},
				CABundle: []byte("pem"), CAProvider: ca,
			}},
		{name: "url is required", spec: genv1alpha1.GeneratorSpec{WebhookSpec: &genv1alpha1.WebhookSpec{URL: "  "}}, wantErr: "spec.url"},
		{name: "ClusterGenerator of kind Webhook without its spec", spec: genv1alpha1.GeneratorSpec{}, wantErr: "spec.generator.webhookSpec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs, err := GeneratorStoreFor(GeneratorWebhook, tc.spec)
			if tc.wantErr != "" {
				var se *GeneratorSpecError
				if !errors.As(err, &se) || se.Field != tc.wantErr {
					t.Fatalf("err = %v, want a GeneratorSpecError on %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("GeneratorStoreFor: %v", err)
			}
			if got := gs.Spec.Provider.Webhook; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("store webhook = %+v, want %+v", got, tc.want)
			}
			if name, _ := provider.SelectedName(gs.Spec.Provider); name != "webhook" {
				t.Fatalf("store provider = %q, want webhook", name)
			}
			if s, ok := gs.Request.Spec.(*genv1alpha1.WebhookSpec); !ok || s == tc.spec.WebhookSpec || gs.Request.Kind != GeneratorWebhook {
				t.Fatalf("request = %+v, want a copy of the generator's spec", gs.Request)
			}
			for _, s := range gs.Spec.Provider.Webhook.Secrets {
				if s.SecretRef.Namespace != nil {
					t.Fatalf("secrets[%s] names a namespace", s.Name)
				}
			}
		})
	}
}

// TestWebhookGeneratorPassesTheStoreRules: the store a Webhook generator
// becomes is admitted as a SecretStore of its namespace, and the webhook
// provider's own checks (ValidateSpec) apply to it in the generator's words.
func TestWebhookGeneratorPassesTheStoreRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    *genv1alpha1.WebhookSpec
		want    error
		message string
	}{
		{name: "ESO's example", spec: &genv1alpha1.WebhookSpec{URL: "http://httpbin.org/get", Result: esv1.WebhookResult{JSONPath: "$.args"},
			Secrets: []genv1alpha1.WebhookSecret{{Name: "auth", SecretRef: genv1alpha1.WebhookSecretKeySelector{Name: "webhook-credentials"}}}}},
		{name: "a method that is no HTTP method", spec: &genv1alpha1.WebhookSpec{URL: "https://x", Method: "GE T"}, want: provider.ErrInvalidConfig, message: "method"},
		{name: "a reserved secrets name", spec: &genv1alpha1.WebhookSpec{URL: "https://x",
			Secrets: []genv1alpha1.WebhookSecret{{Name: "remoteRef", SecretRef: genv1alpha1.WebhookSecretKeySelector{Name: "c"}}}}, want: provider.ErrInvalidConfig, message: "secrets[0].name"},
		{name: "ntlm", spec: &genv1alpha1.WebhookSpec{URL: "https://x", Auth: &genv1alpha1.WebhookAuth{NTLM: &esv1.NTLMAuth{}}}, want: provider.ErrNotSupported, message: "auth.ntlm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs, err := GeneratorStoreFor(GeneratorWebhook, genv1alpha1.GeneratorSpec{WebhookSpec: tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			store := generatorStoreObject(GeneratorWebhook, "wh", "team-a", false, gs.Spec)
			p := webhook.New()
			_, err = provider.Admit(p, provider.Options{Store: store, Namespace: "team-a"})
			if err == nil {
				err = p.ValidateSpec(store)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Admit/ValidateSpec: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			e := generatorProviderError("spec.dataFrom[0].sourceRef.generatorRef", "Webhook wh", gs.Prefix, err)
			if msg := e.Error(); !strings.Contains(msg, tc.message) || strings.Contains(msg, "spec.provider.webhook") || strings.Contains(msg, "invalid store configuration") {
				t.Fatalf("message = %q, want %q in the generator's words", msg, tc.message)
			}
		})
	}
}

package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

// vsecmDoc is the kind of document VSecM's Safe answers with: one JSON
// object per secret, from which the ExternalSecret picks fields.
var vsecmDoc = `{"username":"app","password":"` + canary + `","app":"billing","env":"prod"}`

func TestServiceDocumentIsReturnedWhole(t *testing.T) {
	srv := startServer(t, nil, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.URL.Path != "/secrets/db-credentials" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, vsecmDoc)
	})
	c := mustClient(t, newNamespace(t), &esv1.WebhookProvider{URL: srv.URL + "/secrets/{{ .remoteRef.key }}"})
	if got := mustGet(t, c, "db-credentials"); got != vsecmDoc {
		t.Fatalf("got %q, want the whole document %q", got, vsecmDoc)
	}
	c2 := mustClient(t, newNamespace(t), &esv1.WebhookProvider{URL: srv.URL + "/secrets/{{ .remoteRef.key }}", Result: esv1.WebhookResult{JSONPath: "$.password"}})
	if got := mustGet(t, c2, "db-credentials"); got != canary {
		t.Fatalf("jsonPath $.password selected %q, want the password", got)
	}
}

func TestTemplatesUseRemoteRefAndSecrets(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "webhook-credentials", webhookLabel, map[string]string{"username": "keyferry", "token": canary})
	srv := startServer(t, nil, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		fmt.Fprint(w, `{"result":{"value":"ok"}}`)
	})
	spec := &esv1.WebhookProvider{
		Method: "POST",
		URL:    srv.URL + "/v1/{{ .remoteRef.key }}?version={{ .remoteRef.version }}&ns={{ .remoteRef.namespace }}",
		Headers: map[string]string{
			"Authorization": `Basic {{ print .auth.username ":" .auth.token | b64enc }}`,
			"X-Token":       "{{ .secrets.auth.token }}",
			"Content-Type":  "application/json",
		},
		Body:    `{"key":"{{ .remoteRef.key }}","user":"{{ .auth.username }}"}`,
		Result:  esv1.WebhookResult{JSONPath: "$.result.value"},
		Secrets: []esv1.WebhookSecret{{Name: "auth", SecretRef: esv1.SecretKeySelector{Name: "webhook-credentials"}}},
		Timeout: &esv1.Duration{Duration: 10 * time.Second},
	}
	c := mustClient(t, ns, spec)
	v, err := c.GetSecret(context.Background(), provider.Ref{Key: "team a/db?x=1&y", Version: "v 2"})
	assertNoCanary(t, err)
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Data) != "ok" {
		t.Fatalf("got %q, want ok", v.Data)
	}
	req, body := srv.last()
	if req.Method != http.MethodPost {
		t.Errorf("method %s, want POST", req.Method)
	}
	if want := "/v1/team%20a%2Fdb%3Fx%3D1%26y?version=v%202&ns=" + ns; req.RequestURI != want {
		t.Errorf("request URI %q, want %q (remoteRef values URL-escaped)", req.RequestURI, want)
	}
	if req.URL.Query().Get("version") != "v 2" {
		t.Errorf("version query %q, want %q", req.URL.Query().Get("version"), "v 2")
	}
	user, pass, ok := req.BasicAuth()
	if !ok || user != "keyferry" || pass != canary {
		t.Errorf("Authorization header did not carry the templated credentials (ok=%v user=%q)", ok, user)
	}
	if req.Header.Get("X-Token") != canary {
		t.Error("X-Token header did not carry .secrets.auth.token")
	}
	if want := `{"key":"team a/db?x=1&y","user":"keyferry"}`; string(body) != want {
		t.Errorf("body %q, want %q (raw, unescaped values)", body, want)
	}
}

func TestClusterStoreReadsTemplateSecretsFromTheirNamespace(t *testing.T) {
	credNS, useNS := newNamespace(t), newNamespace(t)
	createSecret(t, credNS, "creds", webhookLabel, map[string]string{"token": canary})
	srv := startServer(t, nil, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.Header.Get("X-Token") != canary {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "value")
	})
	spec := &esv1.WebhookProvider{
		URL:     srv.URL + "/{{ .remoteRef.key }}",
		Headers: map[string]string{"X-Token": "{{ .creds.token }}"},
		Secrets: []esv1.WebhookSecret{{Name: "creds", SecretRef: esv1.SecretKeySelector{Name: "creds", Namespace: &credNS}}},
	}
	c, err := New().NewClient(context.Background(), storeOpts(t, useNS, spec, true))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, c, "k"); got != "value" {
		t.Fatalf("got %q", got)
	}
}

func TestTemplateSecretsNeedTheWebhookLabel(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "unlabelled", nil, map[string]string{"token": canary})
	_, err := newClient(t, ns, &esv1.WebhookProvider{
		URL:     "http://127.0.0.1:1/{{ .remoteRef.key }}",
		Secrets: []esv1.WebhookSecret{{Name: "auth", SecretRef: esv1.SecretKeySelector{Name: "unlabelled"}}},
	})
	wantErr(t, err, provider.ErrInvalidConfig)
	if !strings.Contains(err.Error(), SecretTypeLabel) {
		t.Fatalf("error %q does not name the label to add", err)
	}
	_, err = newClient(t, ns, &esv1.WebhookProvider{
		URL:     "http://127.0.0.1:1/{{ .remoteRef.key }}",
		Secrets: []esv1.WebhookSecret{{Name: "auth", SecretRef: esv1.SecretKeySelector{Name: "missing"}}},
	})
	wantErr(t, err, provider.ErrInvalidConfig)
}

func TestTemplateErrorsNeverShowValues(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "creds", webhookLabel, map[string]string{"token": canary})
	srv := startServer(t, nil, func(w http.ResponseWriter, r *http.Request, _ []byte) { fmt.Fprint(w, "x") })
	for name, spec := range map[string]*esv1.WebhookProvider{
		"missing key":                     {URL: srv.URL + "/{{ .creds.nope }}"},
		"function error quoting a secret": {URL: srv.URL + "/x", Headers: map[string]string{"X": `{{ mustToDate "2006" .creds.token }}`}},
		"fail with a secret":              {URL: srv.URL + "/x", Body: `{{ fail .creds.token }}`},
		"type error with a secret":        {URL: srv.URL + "/x", Body: `{{ index .creds.token 99 }}`},
	} {
		t.Run(name, func(t *testing.T) {
			spec.Secrets = []esv1.WebhookSecret{{Name: "creds", SecretRef: esv1.SecretKeySelector{Name: "creds"}}}
			c := mustClient(t, ns, spec)
			_, err := get(t, c, "k")
			wantErr(t, err, provider.ErrInvalidConfig)
		})
	}
}

func TestJSONPathOverHTTP(t *testing.T) {
	doc := `{"data":{"items":[{"name":"db","value":"dbpass"},{"name":"api","value":"` + canary + `"}],"count":2}}`
	srv := startServer(t, nil, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.URL.Path == "/text" {
			fmt.Fprint(w, "plain text "+canary)
			return
		}
		fmt.Fprint(w, doc)
	})
	ns := newNamespace(t)
	tests := []struct {
		path, want string
	}{
		{"$.data.items[0].value", "dbpass"},
		{"$.data.items[?(@.name == 'api')].value", canary},
		{"$.data.count", "2"},
		{"$.data.items[-1].name", "api"},
		// ESO's idiom: the property picks the member; keyferry's engine
		// applies the property, so the template renders "$.data." here.
		{"$.data.{{ .remoteRef.property }}", `{"items":[{"name":"db","value":"dbpass"},{"name":"api","value":"` + canary + `"}],"count":2}`},
		{"$.data.items[?(@.name == '{{ .remoteRef.key }}')].value", "dbpass"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			c := mustClient(t, ns, &esv1.WebhookProvider{URL: srv.URL + "/doc", Result: esv1.WebhookResult{JSONPath: tt.path}})
			if got := mustGet(t, c, "db"); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("missing path is not found and names the path", func(t *testing.T) {
		c := mustClient(t, ns, &esv1.WebhookProvider{URL: srv.URL + "/doc", Result: esv1.WebhookResult{JSONPath: "$.data.nope"}})
		_, err := get(t, c, "db")
		wantErr(t, err, provider.ErrNotFound)
		if !strings.Contains(err.Error(), "$.data.nope") {
			t.Fatalf("error %q does not name the path", err)
		}
	})
	t.Run("non-JSON response with a jsonPath is a bad response", func(t *testing.T) {
		c := mustClient(t, ns, &esv1.WebhookProvider{URL: srv.URL + "/text", Result: esv1.WebhookResult{JSONPath: "$.a"}})
		_, err := get(t, c, "db")
		wantErr(t, err, provider.ErrBadResponse)
	})
	t.Run("non-JSON response without a jsonPath is the value", func(t *testing.T) {
		c := mustClient(t, ns, &esv1.WebhookProvider{URL: srv.URL + "/text"})
		if got := mustGet(t, c, "db"); got != "plain text "+canary {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("unsupported jsonPath is refused by validation", func(t *testing.T) {
		_, err := newClient(t, ns, &esv1.WebhookProvider{URL: srv.URL + "/doc", Result: esv1.WebhookResult{JSONPath: "$.a[0:2]"}})
		wantErr(t, err, provider.ErrInvalidConfig)
	})
}

func TestStatusCodesMapToErrors(t *testing.T) {
	srv := startServer(t, nil, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		switch r.URL.Path {
		case "/429-seconds":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/429-date":
			w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusTooManyRequests)
		case "/429-bare":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/503-retry":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			var code int
			_, _ = fmt.Sscanf(r.URL.Path, "/%d", &code)
			w.WriteHeader(code)
		}
		// Error bodies echo secrets; they must never reach an error.
		fmt.Fprint(w, `{"error":"bad token `+canary+`"}`)
	})
	c := mustClient(t, newNamespace(t), &esv1.WebhookProvider{URL: srv.URL + "/{{ .remoteRef.key }}"})
	for key, target := range map[string]error{
		"404": provider.ErrNotFound,
		"401": provider.ErrUnauthenticated,
		"403": provider.ErrForbidden,
		"500": provider.ErrUnreachable,
		"502": provider.ErrUnreachable,
		"400": provider.ErrBadResponse,
		"405": provider.ErrBadResponse,
	} {
		t.Run(key, func(t *testing.T) {
			_, err := get(t, c, key)
			wantErr(t, err, target)
			if !strings.Contains(err.Error(), key) {
				t.Fatalf("error %q does not name the status", err)
			}
		})
	}
	throttled := func(t *testing.T, key string) *provider.ThrottledError {
		t.Helper()
		_, err := get(t, c, key)
		var te *provider.ThrottledError
		if !errors.As(err, &te) {
			t.Fatalf("got %v, want a *provider.ThrottledError", err)
		}
		return te
	}
	t.Run("429 with Retry-After seconds", func(t *testing.T) {
		if te := throttled(t, "429-seconds"); te.RetryAfter != 7*time.Second {
			t.Fatalf("RetryAfter %s, want 7s", te.RetryAfter)
		}
	})
	t.Run("429 with a Retry-After date", func(t *testing.T) {
		if te := throttled(t, "429-date"); te.RetryAfter <= 0 || te.RetryAfter > 90*time.Second {
			t.Fatalf("RetryAfter %s, want a wait up to the date (at most 90s)", te.RetryAfter)
		}
	})
	t.Run("429 without Retry-After", func(t *testing.T) {
		if te := throttled(t, "429-bare"); te.RetryAfter != 0 {
			t.Fatalf("RetryAfter %s, want 0", te.RetryAfter)
		}
	})
	t.Run("503 with Retry-After", func(t *testing.T) {
		if te := throttled(t, "503-retry"); te.RetryAfter != 3*time.Second {
			t.Fatalf("RetryAfter %s, want 3s", te.RetryAfter)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name, header string
		want         time.Duration
	}{
		{"empty", "", 0},
		{"seconds", "120", 2 * time.Minute},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"date ahead", now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{"date past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"garbage", "soon", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfter(tt.header, now); got != tt.want {
				t.Fatalf("retryAfter(%q) = %s, want %s", tt.header, got, tt.want)
			}
		})
	}
}

func TestConnectionFailuresAreUnreachable(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "creds", webhookLabel, map[string]string{"token": canary})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	c := mustClient(t, ns, &esv1.WebhookProvider{
		// The token in the URL must not leak through the transport's error.
		URL:     "http://" + addr + "/{{ .remoteRef.key }}?token={{ .creds.token }}",
		Secrets: []esv1.WebhookSecret{{Name: "creds", SecretRef: esv1.SecretKeySelector{Name: "creds"}}},
	})
	_, err = get(t, c, "k")
	wantErr(t, err, provider.ErrUnreachable)
	wantErr(t, c.Validate(context.Background()), provider.ErrUnreachable)

	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := startServer(t, nil, func(w http.ResponseWriter, r *http.Request, _ []byte) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		defer close(release)
		c := mustClient(t, ns, &esv1.WebhookProvider{URL: srv.URL + "/{{ .remoteRef.key }}", Timeout: &esv1.Duration{Duration: 200 * time.Millisecond}})
		_, err := get(t, c, "k")
		wantErr(t, err, provider.ErrUnreachable)
	})
}

func TestFindIsNotSupported(t *testing.T) {
	c := mustClient(t, newNamespace(t), &esv1.WebhookProvider{URL: "http://127.0.0.1:1/{{ .remoteRef.key }}"})
	if _, ok := c.(provider.Lister); ok {
		t.Fatal("a webhook client lists; a webhook cannot list its keys")
	}
	_, err := fetch.FindIn(context.Background(), c, provider.Find{Name: ".*"})
	wantErr(t, err, provider.ErrNotSupported)
}

func TestCABundleVerifiesTheServer(t *testing.T) {
	ca, otherCA := newTestCA(t, ""), newTestCA(t, "")
	srv := startServer(t, &serverTLS{cert: ca.issue(t, "server", "").pair}, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		fmt.Fprint(w, canary)
	})
	ns := newNamespace(t)
	url := srv.URL + "/{{ .remoteRef.key }}"

	c := mustClient(t, ns, &esv1.WebhookProvider{URL: url, CABundle: ca.pem})
	if got := mustGet(t, c, "k"); got != canary {
		t.Fatalf("got %q", got)
	}
	if err := c.Validate(context.Background()); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ca"}, Data: map[string]string{"ca.crt": string(ca.pem)}}
	if err := kubeFor(t).Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	c = mustClient(t, ns, &esv1.WebhookProvider{URL: url, CAProvider: &esv1.CAProvider{Type: esv1.CAProviderTypeConfigMap, Name: "ca", Key: "ca.crt"}})
	if got := mustGet(t, c, "k"); got != canary {
		t.Fatalf("caProvider: got %q", got)
	}

	for name, bundle := range map[string][]byte{"system roots": nil, "another CA": otherCA.pem} {
		t.Run(name, func(t *testing.T) {
			hits := srv.hits.Load()
			c := mustClient(t, ns, &esv1.WebhookProvider{URL: url, CABundle: bundle})
			_, err := get(t, c, "k")
			wantErr(t, err, provider.ErrUnauthenticated)
			if !strings.Contains(err.Error(), "TLS verification") {
				t.Fatalf("error %q does not say TLS verification failed", err)
			}
			wantErr(t, c.Validate(context.Background()), provider.ErrUnauthenticated)
			if srv.hits.Load() != hits {
				t.Fatal("a request reached the handler over an unverified connection")
			}
		})
	}
}

func TestClientTLSFromSecrets(t *testing.T) {
	ca := newTestCA(t, "")
	client := ca.issue(t, "keyferry-client", "")
	srv := startServer(t, &serverTLS{cert: ca.issue(t, "server", "").pair, clientCAs: ca.pool()}, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		fmt.Fprint(w, canary)
	})
	ns := newNamespace(t)
	createSecret(t, ns, "client-tls", nil, map[string]string{"tls.crt": string(client.certPEM), "tls.key": string(client.keyPEM) + "\n# " + canary + "\n"})
	spec := func() *esv1.WebhookProvider {
		return &esv1.WebhookProvider{
			URL:      srv.URL + "/{{ .remoteRef.key }}",
			CABundle: ca.pem,
			ClientTLS: &esv1.WebhookClientTLS{
				CertSecretRef: esv1.SecretKeySelector{Name: "client-tls", Key: "tls.crt"},
				KeySecretRef:  esv1.SecretKeySelector{Name: "client-tls", Key: "tls.key"},
			},
		}
	}
	c := mustClient(t, ns, spec())
	if got := mustGet(t, c, "k"); got != canary {
		t.Fatalf("got %q", got)
	}
	if peers := srv.peers(); len(peers) != 1 || peers[0] != "keyferry-client" {
		t.Fatalf("server saw client certificates %v, want [keyferry-client]", peers)
	}

	t.Run("missing client certificate is refused by the server", func(t *testing.T) {
		hits := srv.hits.Load()
		c := mustClient(t, ns, &esv1.WebhookProvider{URL: srv.URL + "/{{ .remoteRef.key }}", CABundle: ca.pem})
		_, err := get(t, c, "k")
		wantErr(t, err, provider.ErrUnauthenticated)
		if !strings.Contains(err.Error(), "client certificate") {
			t.Fatalf("error %q does not say the client certificate was refused", err)
		}
		if srv.hits.Load() != hits {
			t.Fatal("the handler served a client without a certificate")
		}
	})
	t.Run("certificate and key that do not match", func(t *testing.T) {
		other := ca.issue(t, "other", "")
		createSecret(t, ns, "mismatched", nil, map[string]string{"tls.crt": string(client.certPEM), "tls.key": string(other.keyPEM)})
		s := spec()
		s.ClientTLS.KeySecretRef.Name = "mismatched"
		_, err := newClient(t, ns, s)
		wantErr(t, err, provider.ErrInvalidConfig)
	})
	t.Run("missing secret", func(t *testing.T) {
		s := spec()
		s.ClientTLS.CertSecretRef.Name = "nope"
		_, err := newClient(t, ns, s)
		wantErr(t, err, provider.ErrInvalidConfig)
	})
}

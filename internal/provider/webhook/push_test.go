package webhook

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// pusher returns c as a provider.Pusher.
func pusher(t *testing.T, c provider.Client) provider.Pusher {
	t.Helper()
	p, ok := c.(provider.Pusher)
	if !ok {
		t.Fatal("the webhook client does not implement provider.Pusher")
	}
	return p
}

// push pushes v to remoteKey and fails the test if an error names the
// canary.
func push(t *testing.T, c provider.Client, remoteKey string, v provider.PushValue) error {
	t.Helper()
	wrote, err := pusher(t, c).Push(context.Background(), provider.PushRef{RemoteKey: remoteKey}, v, provider.RemoteState{})
	assertNoCanary(t, err)
	if err == nil && !wrote {
		t.Fatal("Push returned no error and wrote=false; a webhook push always sends")
	}
	return err
}

func one(key, value string) provider.PushValue {
	return provider.PushValue{SecretKey: key, Value: []byte(value)}
}

// ESO's documented push store (docs/provider/webhook.md, "Push secret"):
// url with remoteKey and secretKey, a JSON body naming the value by
// index .remoteRef .remoteRef.remoteKey, and Basic auth from a Secret.
func TestPushESODocumentedStore(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "webhook-credentials", webhookLabel, map[string]string{"username": "keyferry", "password": "pw-" + canary})
	srv := startServer(t, nil, func(w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(http.StatusCreated) })
	c := mustClient(t, ns, &esv1.WebhookProvider{
		URL:  srv.URL + "/push?id={{ .remoteRef.remoteKey }}&secret={{ .remoteRef.secretKey }}",
		Body: `{"secret-field": "{{ index .remoteRef .remoteRef.remoteKey }}"}`,
		Headers: map[string]string{
			"Content-Type":  "application/json",
			"Authorization": `Basic {{ print .auth.username ":" .auth.password | b64enc }}`,
		},
		Secrets: []esv1.WebhookSecret{{Name: "auth", SecretRef: esv1.SecretKeySelector{Name: "webhook-credentials"}}},
	})
	value := "v-" + canary
	if err := push(t, c, "remotekey", one("testsecret", value)); err != nil {
		t.Fatal(err)
	}
	req, body := srv.last()
	if req.Method != http.MethodPost {
		t.Errorf("method %s, want POST (ESO's default for a push)", req.Method)
	}
	if want := "/push?id=remotekey&secret=testsecret"; req.RequestURI != want {
		t.Errorf("request URI %q, want %q", req.RequestURI, want)
	}
	if want := `{"secret-field": "` + value + `"}`; string(body) != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if want := "Basic " + base64.StdEncoding.EncodeToString([]byte("keyferry:pw-"+canary)); req.Header.Get("Authorization") != want {
		t.Errorf("Authorization %q, want the Basic credentials of the Secret", req.Header.Get("Authorization"))
	}
}

// The cases of ESO's own push tests (providers/v1/webhook/webhook_test.go),
// with the same templates and the same request on the wire, plus what
// keyferry adds (escaping, methods).
func TestPushRendersAsESO(t *testing.T) {
	srv := startServer(t, nil, func(http.ResponseWriter, *http.Request, []byte) {})
	base := srv.URL + "/api/pushsecret?id={{ .remoteRef.remoteKey }}"
	whole := provider.PushValue{Secret: map[string][]byte{"secretkey": []byte("value"), "html": []byte("<a&b>")}}
	tests := []struct {
		name, url, body, method, remoteKey string
		v                                  provider.PushValue
		wantMethod, wantURI, wantBody      string
	}{
		{name: "default body is the value", url: base + "&secret={{ .remoteRef.secretKey }}", remoteKey: "testkey", v: one("secretkey", "value"),
			wantMethod: "POST", wantURI: "/api/pushsecret?id=testkey&secret=secretkey", wantBody: "value"},
		{name: "body template", url: base, body: "pre {{ .remoteRef.remoteKey }} {{ .remoteRef.testkey }} post", remoteKey: "testkey", v: one("secretkey", "value"),
			wantMethod: "POST", wantURI: "/api/pushsecret?id=testkey", wantBody: "pre testkey value post"},
		{name: "empty body", url: base, body: `{{ "" }}`, remoteKey: "testkey", v: one("secretkey", "value"),
			wantMethod: "POST", wantURI: "/api/pushsecret?id=testkey", wantBody: ""},
		{name: "whole Secret as a JSON object of strings, no HTML escaping", url: base, remoteKey: "testkey", v: whole,
			wantMethod: "POST", wantURI: "/api/pushsecret?id=testkey", wantBody: `{"html":"<a&b>","secretkey":"value"}`},
		{name: "whole Secret: secretKey is empty", url: base + "&secret={{ .remoteRef.secretKey }}", remoteKey: "testkey", v: whole,
			wantMethod: "POST", wantURI: "/api/pushsecret?id=testkey&secret=", wantBody: `{"html":"<a&b>","secretkey":"value"}`},
		{name: "whole Secret read with fromJson", url: base, body: `pre {{ .remoteRef.remoteKey }} {{ index (.remoteRef.testkey | fromJson) "secretkey" }} post`, remoteKey: "testkey", v: whole,
			wantMethod: "POST", wantURI: "/api/pushsecret?id=testkey", wantBody: "pre testkey value post"},
		{name: "dynamic resolution of the value", url: base, body: `pre {{ .remoteRef.remoteKey }} {{ index (index .remoteRef .remoteRef.remoteKey | fromJson) "secretkey" }} post`, remoteKey: "test-key", v: whole,
			wantMethod: "POST", wantURI: "/api/pushsecret?id=test-key", wantBody: "pre test-key value post"},
		{name: "remoteRef values are URL-escaped in the url only", url: base + "&v={{ index .remoteRef .remoteRef.remoteKey }}", body: "{{ .remoteRef.remoteKey }}", remoteKey: "team a/db?x&y", v: one("k", "a b&c"),
			wantMethod: "POST", wantURI: "/api/pushsecret?id=team%20a%2Fdb%3Fx%26y&v=a%20b%26c", wantBody: "team a/db?x&y"},
		{name: "the store's method", url: base, method: "put", remoteKey: "testkey", v: one("k", "value"),
			wantMethod: "PUT", wantURI: "/api/pushsecret?id=testkey", wantBody: "value"},
		{name: "binary value sent as it is", url: base, remoteKey: "bin", v: one("k", "\x00\xff\xfe"),
			wantMethod: "POST", wantURI: "/api/pushsecret?id=bin", wantBody: "\x00\xff\xfe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: tt.url, Body: tt.body, Method: tt.method})
			if err := push(t, c, tt.remoteKey, tt.v); err != nil {
				t.Fatal(err)
			}
			req, body := srv.last()
			if req.Method != tt.wantMethod || req.RequestURI != tt.wantURI || string(body) != tt.wantBody {
				t.Fatalf("got %s %s %q, want %s %s %q", req.Method, req.RequestURI, body, tt.wantMethod, tt.wantURI, tt.wantBody)
			}
		})
	}
}

func TestPushRefChecks(t *testing.T) {
	tests := []struct {
		name string
		ref  provider.PushRef
		want string // "" passes
	}{
		{name: "remote key set", ref: provider.PushRef{RemoteKey: "db"}},
		{name: "remoteKeyIsSet", ref: provider.PushRef{}, want: "remoteRef.remoteKey must be set"},
		{name: "noProperty", ref: provider.PushRef{RemoteKey: "db", Property: "password"}, want: "has no properties"},
		{name: "remoteKeyHidesNoVariable: remoteKey", ref: provider.PushRef{RemoteKey: "remoteKey"}, want: "name of a template variable"},
		{name: "remoteKeyHidesNoVariable: secretKey", ref: provider.PushRef{RemoteKey: "secretKey"}, want: "name of a template variable"},
		{name: "other names are fine", ref: provider.PushRef{RemoteKey: "key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPushRef(tt.ref)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, provider.ErrInvalidPush) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an ErrInvalidPush saying %q", err, tt.want)
			}
		})
	}
}

// A refused ref sends nothing: not the push, not the existence check, not
// the delete.
func TestRefusedRefSendsNothing(t *testing.T) {
	srv := startServer(t, nil, func(http.ResponseWriter, *http.Request, []byte) {})
	p := pusher(t, mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: srv.URL + "/{{ .remoteRef.remoteKey }}"}))
	ctx := context.Background()
	for _, ref := range []provider.PushRef{{}, {RemoteKey: "db", Property: "p"}, {RemoteKey: "secretKey"}} {
		_, err := p.Push(ctx, ref, one("k", canary), provider.RemoteState{})
		wantErr(t, err, provider.ErrInvalidPush)
		_, err = p.Inspect(ctx, ref)
		wantErr(t, err, provider.ErrInvalidPush)
		wantErr(t, p.Delete(ctx, ref, provider.RemoteState{}), provider.ErrInvalidPush)
	}
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
}

// Inspect is ESO's existence check: the store's read request for the
// remote key; 404 is absent, 2xx exists (and counts as keyferry's: a
// webhook has no mark). A store whose method writes is checked with GET,
// without its body.
func TestInspectIsTheStoresReadRequest(t *testing.T) {
	var mu sync.Mutex
	records := map[string]bool{"present": true}
	srv := startServer(t, nil, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		mu.Lock()
		defer mu.Unlock()
		switch key := r.URL.Query().Get("id"); {
		case key == "broken":
			w.WriteHeader(http.StatusInternalServerError)
		case records[key]:
			fmt.Fprint(w, "the record "+canary)
		default:
			http.NotFound(w, r)
		}
	})
	tests := []struct {
		name, method, url, body string
		wantMethod, wantBody    string
	}{
		{name: "ESO's default: GET with .remoteRef.key", url: srv.URL + "/get?id={{ .remoteRef.key }}", body: `{"k":"{{ .remoteRef.key }}"}`, wantMethod: "GET", wantBody: `{"k":"present"}`},
		{name: "a url written for pushes renders too", url: srv.URL + "/push?id={{ .remoteRef.remoteKey }}&secret={{ .remoteRef.secretKey }}", wantMethod: "GET"},
		{name: "a POST store is checked with GET, without its body", method: "POST", url: srv.URL + "/push?id={{ .remoteRef.remoteKey }}", body: "{{ index .remoteRef .remoteRef.remoteKey }}", wantMethod: "GET"},
		{name: "a PUT store too", method: "PUT", url: srv.URL + "/push?id={{ .remoteRef.remoteKey }}", wantMethod: "GET"},
		{name: "a HEAD store with HEAD", method: "HEAD", url: srv.URL + "/push?id={{ .remoteRef.remoteKey }}", wantMethod: "HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pusher(t, mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: tt.url, Method: tt.method, Body: tt.body}))
			st, err := p.Inspect(context.Background(), provider.PushRef{RemoteKey: "present"})
			assertNoCanary(t, err)
			if err != nil {
				t.Fatal(err)
			}
			if st != (provider.RemoteState{Exists: true, Managed: true, Unmarked: true}) {
				t.Fatalf("state %+v, want an existing record, without a mark to tell whose", st)
			}
			req, body := srv.last()
			if req.Method != tt.wantMethod || string(body) != tt.wantBody {
				t.Fatalf("check sent %s with body %q, want %s with %q", req.Method, body, tt.wantMethod, tt.wantBody)
			}
			st, err = p.Inspect(context.Background(), provider.PushRef{RemoteKey: "absent"})
			if err != nil || st.Exists {
				t.Fatalf("absent record: state %+v, error %v; want not existing", st, err)
			}
			_, err = p.Inspect(context.Background(), provider.PushRef{RemoteKey: "broken"})
			wantErr(t, err, provider.ErrUnreachable)
			if !strings.Contains(err.Error(), `checking whether "broken" exists`) || !strings.Contains(err.Error(), "500") {
				t.Fatalf("error %q does not say what failed", err)
			}
		})
	}
}

// Delete sends DELETE without a body to the url rendered for the remote
// key; a 404 counts as deleted; a failure names the status.
func TestDeleteSendsDELETE(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "webhook-credentials", webhookLabel, map[string]string{"token": "tok-" + canary})
	srv := startServer(t, nil, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		switch r.URL.Query().Get("id") {
		case "gone":
			http.NotFound(w, r)
		case "locked":
			w.WriteHeader(http.StatusForbidden)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	p := pusher(t, mustClient(t, ns, &esv1.WebhookProvider{
		Method:  "PUT",
		URL:     srv.URL + "/push?id={{ .remoteRef.remoteKey }}&secret={{ .remoteRef.secretKey }}",
		Body:    "{{ index .remoteRef .remoteRef.remoteKey }}",
		Headers: map[string]string{"X-Token": "{{ .auth.token }}"},
		Secrets: []esv1.WebhookSecret{{Name: "auth", SecretRef: esv1.SecretKeySelector{Name: "webhook-credentials"}}},
	}))
	ctx := context.Background()
	if err := p.Delete(ctx, provider.PushRef{RemoteKey: "my key"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	req, body := srv.last()
	if req.Method != http.MethodDelete || req.RequestURI != "/push?id=my%20key&secret=" || len(body) != 0 {
		t.Fatalf("got %s %s with a %d-byte body, want DELETE /push?id=my%%20key&secret= without a body", req.Method, req.RequestURI, len(body))
	}
	if req.Header.Get("X-Token") != "tok-"+canary {
		t.Fatal("the headers of a delete do not carry the store's Secrets")
	}
	if err := p.Delete(ctx, provider.PushRef{RemoteKey: "gone"}, provider.RemoteState{}); err != nil {
		t.Fatalf("a 404 is deleted already: %v", err)
	}
	err := p.Delete(ctx, provider.PushRef{RemoteKey: "locked"}, provider.RemoteState{})
	wantErr(t, err, provider.ErrForbidden)
}

// A failing push names the remote key and the status, never the value it
// sent, whatever the server answers or a template does with the value.
func TestFailedPushNeverQuotesTheValue(t *testing.T) {
	value := "pushed-" + canary
	for _, tt := range []struct {
		code   int
		target error
	}{
		{http.StatusInternalServerError, provider.ErrUnreachable},
		{http.StatusBadRequest, provider.ErrInvalidPush},
		{http.StatusConflict, provider.ErrInvalidPush},
		{http.StatusNotFound, provider.ErrBadResponse},
		{http.StatusUnauthorized, provider.ErrUnauthenticated},
	} {
		t.Run(http.StatusText(tt.code), func(t *testing.T) {
			srv := startServer(t, nil, func(w http.ResponseWriter, _ *http.Request, body []byte) {
				w.WriteHeader(tt.code)
				_, _ = w.Write(body) // echoes the value back
			})
			c := mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: srv.URL + "/s/{{ .remoteRef.remoteKey }}?v={{ index .remoteRef .remoteRef.remoteKey }}"})
			err := push(t, c, "db", one("k", value))
			wantErr(t, err, tt.target)
			if !strings.Contains(err.Error(), `pushing "db"`) || !strings.Contains(err.Error(), fmt.Sprint(tt.code)) {
				t.Fatalf("error %q does not name the key and the status", err)
			}
		})
	}
	t.Run("throttled, with the server's Retry-After", func(t *testing.T) {
		srv := startServer(t, nil, func(w http.ResponseWriter, _ *http.Request, body []byte) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write(body)
		})
		c := mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: srv.URL + "/s/{{ .remoteRef.remoteKey }}"})
		err := push(t, c, "db", one("k", value))
		var throttled *provider.ThrottledError
		if !errors.As(err, &throttled) || throttled.RetryAfter != 7*time.Second {
			t.Fatalf("got %v, want a ThrottledError with RetryAfter 7s", err)
		}
	})
	t.Run("a template that fails with the value", func(t *testing.T) {
		srv := startServer(t, nil, func(http.ResponseWriter, *http.Request, []byte) {})
		c := mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: srv.URL + "/s", Body: "{{ fail (index .remoteRef .remoteRef.remoteKey) }}"})
		wantErr(t, push(t, c, "db", one("k", value)), provider.ErrInvalidConfig)
		wantErr(t, push(t, c, "db", provider.PushValue{Secret: map[string][]byte{"a": []byte(value)}}), provider.ErrInvalidConfig)
		if n := srv.hits.Load(); n != 0 {
			t.Fatalf("%d requests sent", n)
		}
	})
	t.Run("the connection fails", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		c := mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: "http://" + addr + "/s/{{ index .remoteRef .remoteRef.remoteKey }}"})
		wantErr(t, push(t, c, "db", one("k", value)), provider.ErrUnreachable)
	})
}

// A push carries a secret value, so it goes over plain http:// only where
// the operator allows credentials to (or to a loopback address), even for
// a store that sends no credential; its reads are not affected.
func TestPushOverPlainHTTPNeedsTheOperatorsOptIn(t *testing.T) {
	srv := startServer(t, nil, func(http.ResponseWriter, *http.Request, []byte) {})
	local := strings.TrimPrefix(srv.URL, "http://")
	po := Options{MapAddr: func(string) string { return local }}
	spec := &esv1.WebhookProvider{URL: "http://secrets.example.invalid/push/{{ .remoteRef.remoteKey }}"}
	c, err := bareClient(t, po, provider.Policy{}, spec)
	if err != nil {
		t.Fatal(err)
	}
	err = push(t, c, "db", one("k", canary))
	wantErr(t, err, provider.ErrInvalidConfig)
	if !strings.Contains(err.Error(), "--allow-insecure-http") {
		t.Fatalf("error %q does not name the flag", err)
	}
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("%d requests sent before the refusal", n)
	}
	c, err = bareClient(t, po, provider.Policy{AllowInsecureHTTP: true}, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := push(t, c, "db", one("k", canary)); err != nil {
		t.Fatalf("with --allow-insecure-http: %v", err)
	}
	if req, body := srv.last(); req.Host != "secrets.example.invalid" || string(body) != canary {
		t.Fatalf("the push reached the server as Host %q with %d bytes", req.Host, len(body))
	}
}

// A push over https verifies the server with the store's caBundle, as
// reads do.
func TestPushOverTLSVerifiesTheServer(t *testing.T) {
	var got []byte
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = b
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	spec := &esv1.WebhookProvider{URL: srv.URL + "/push/{{ .remoteRef.remoteKey }}"}
	c := mustBareClient(t, Options{}, spec)
	wantErr(t, push(t, c, "db", one("k", canary)), provider.ErrUnauthenticated)
	spec.CABundle = ca
	c = mustBareClient(t, Options{}, spec)
	if err := push(t, c, "db", one("k", canary)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if string(got) != canary {
		t.Fatalf("server received %d bytes, want the value", len(got))
	}
}

// Rendered push templates are bounded; a whole Secret that is not UTF-8
// is refused (ESO would replace its bytes); nothing is sent either way.
func TestPushBounds(t *testing.T) {
	srv := startServer(t, nil, func(http.ResponseWriter, *http.Request, []byte) {})
	c := mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: srv.URL + "/s", Body: "{{ range until 100000 }}{{ index $.remoteRef $.remoteRef.remoteKey }}{{ end }}"})
	err := push(t, c, "db", one("k", strings.Repeat("x", 100)))
	wantErr(t, err, provider.ErrInvalidConfig)
	if !strings.Contains(err.Error(), "too large") {
		t.Fatalf("error %q does not say the body is too large", err)
	}
	c = mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: srv.URL + "/s"})
	wantErr(t, push(t, c, "db", provider.PushValue{Secret: map[string][]byte{"k": {0xff, 0xfe}}}), provider.ErrInvalidPush)
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

// A store written for reads (its url names .remoteRef.key) does not render
// for a push: it is never pushed to by accident.
func TestAReadStoreIsNotPushedTo(t *testing.T) {
	srv := startServer(t, nil, func(http.ResponseWriter, *http.Request, []byte) {})
	c := mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: srv.URL + "/secrets/{{ .remoteRef.key }}"})
	err := push(t, c, "db", one("k", canary))
	wantErr(t, err, provider.ErrInvalidConfig)
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

// FuzzPushRequest renders ESO's documented push templates for any remote
// key, secret key and value: it never panics, the url always gives back
// the remote and secret keys exactly, the body holds the value as it is,
// and an error never quotes the value.
func FuzzPushRequest(f *testing.F) {
	f.Add("remotekey", "testsecret", "value")
	f.Add("team a/db?x=1&y#frag", "", "a b&c=d%")
	f.Add("secretKey", "k", "v")
	f.Add("", "k", "v")
	f.Add("k\x00\xff", "s\n", "\xff\xfe")
	f.Add("{{", "}}", "{{ .remoteRef }}")
	spec := &esv1.WebhookProvider{
		URL:  "http://127.0.0.1:1/push?id={{ .remoteRef.remoteKey }}&secret={{ .remoteRef.secretKey }}",
		Body: `{"secret-field": "{{ index .remoteRef .remoteRef.remoteKey }}"}`,
	}
	p := &Provider{}
	store := provider.Store{Kind: esv1.SecretStoreKind, Namespace: "ns", Name: "webhook",
		Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Webhook: spec}}}
	pc, err := p.NewClient(context.Background(), provider.Options{Store: store, Namespace: "ns"})
	if err != nil {
		f.Fatal(err)
	}
	c := pc.(*Client)
	f.Fuzz(func(t *testing.T, remoteKey, secretKey, value string) {
		value = "Vq9Z" + value // long and distinct enough to be looked for
		v := provider.PushValue{SecretKey: secretKey, Value: []byte(value)}
		if secretKey == "" {
			v = provider.PushValue{Secret: map[string][]byte{"k": []byte(value)}}
		}
		req, _, err := c.pushRequest(context.Background(), provider.PushRef{RemoteKey: remoteKey}, v)
		if err != nil {
			if strings.Contains(err.Error(), value) && !strings.Contains(remoteKey+secretKey, value) {
				t.Fatalf("error quotes the value: %v", err)
			}
			return
		}
		q, perr := url.ParseQuery(req.URL.RawQuery)
		if perr != nil || q.Get("id") != remoteKey || q.Get("secret") != secretKey {
			t.Fatalf("url %q gives id %q secret %q (%v), want %q and %q", req.URL.RawQuery, q.Get("id"), q.Get("secret"), perr, remoteKey, secretKey)
		}
		want, err := pushedBytes(v)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		if string(body) != `{"secret-field": "`+string(want)+`"}` {
			t.Fatalf("body %q does not hold the value %q", body, want)
		}
	})
}

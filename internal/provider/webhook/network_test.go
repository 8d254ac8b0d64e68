package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testserver/dropproxy"
)

// bareClient builds a client for a SecretStore in ns that reads no Secret
// (no API server needed), with the provider options po and policy pol.
func bareClient(t *testing.T, po Options, pol provider.Policy, spec *esv1.WebhookProvider) (provider.Client, error) {
	t.Helper()
	p := NewWithOptions(po)
	store := provider.Store{Kind: esv1.SecretStoreKind, Namespace: "ns", Name: "webhook",
		Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Webhook: spec}}}
	if err := p.ValidateSpec(store); err != nil {
		return nil, err
	}
	c, err := p.NewClient(context.Background(), provider.Options{Store: store, Namespace: "ns", Policy: pol, Log: testr.New(t)})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c, nil
}

func mustBareClient(t *testing.T, po Options, spec *esv1.WebhookProvider) provider.Client {
	t.Helper()
	c, err := bareClient(t, po, provider.Policy{}, spec)
	if err != nil {
		t.Fatalf("building the client: %v", err)
	}
	return c
}

func TestDialControlRefusesLinkLocalAddresses(t *testing.T) {
	for _, tt := range []struct {
		addr   string
		denied bool
	}{
		{"169.254.169.254:80", true},
		{"169.254.0.1:443", true},
		{"169.254.255.255:8080", true},
		{"[fe80::1]:443", true},
		{"[fe80::1%eth0]:443", true},
		{"[febf::1]:443", true},
		{"[::ffff:169.254.169.254]:80", true}, // IPv4-mapped
		{"[64:ff9b::a9fe:a9fe]:80", true},     // NAT64 to 169.254.169.254
		{"[fd00:ec2::254]:80", true},          // AWS IMDS over IPv6
		{"[ff02::1]:80", true},                // link-local multicast
		{"224.0.0.1:80", true},                // link-local multicast
		{"127.0.0.1:8080", false},
		{"[::1]:8080", false},
		{"10.0.0.1:443", false},
		{"169.255.0.1:443", false},
		{"192.168.1.1:443", false},
		{"[fec0::1]:443", false},
		{"[2001:db8::1]:443", false},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			err := (&Provider{}).dialControl("tcp", tt.addr, nil)
			var ll *LinkLocalError
			if got := errors.As(err, &ll); got != tt.denied || (!tt.denied && err != nil) {
				t.Fatalf("dialControl(%s) = %v, want denied=%v", tt.addr, err, tt.denied)
			}
			if err := (&Provider{opts: Options{AllowLinkLocal: true}}).dialControl("tcp", tt.addr, nil); err != nil {
				t.Fatalf("with AllowLinkLocal, dialControl(%s) = %v, want nil", tt.addr, err)
			}
		})
	}
}

// TestMetadataAddressIsRefusedBeforeAnyPacket: a store pointing at the
// cloud metadata address fails at once with the link-local reason, from
// GetSecret and Validate; the dial is stopped by the Control function after
// the socket is created and before connect(2), so nothing leaves the
// machine.
func TestMetadataAddressIsRefusedBeforeAnyPacket(t *testing.T) {
	c := mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: "http://169.254.169.254/latest/meta-data/{{ .remoteRef.key }}"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.GetSecret(ctx, provider.Ref{Key: "iam"})
	var ll *LinkLocalError
	if !errors.Is(err, provider.ErrInvalidConfig) || !errors.As(err, &ll) {
		t.Fatalf("got %v, want a LinkLocalError wrapping ErrInvalidConfig", err)
	}
	if !strings.Contains(err.Error(), "--webhook-allow-link-local") {
		t.Fatalf("error %q does not say how to allow it", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refusing took %s; it must not wait for a connection", d)
	}
	t.Logf("error as the user sees it (after %s): %v", time.Since(start), err)
	verr := c.Validate(ctx)
	if !errors.As(verr, &ll) {
		t.Fatalf("Validate: got %v, want a LinkLocalError", verr)
	}
}

// TestRedirectToAnotherHostIsRefused: the request's headers (credentials)
// never reach another host: a redirect to another origin fails with a
// clear error and the other server sees no request; a redirect within the
// same server is followed.
func TestRedirectToAnotherHostIsRefused(t *testing.T) {
	other := startServer(t, nil, func(w http.ResponseWriter, r *http.Request, _ []byte) { fmt.Fprint(w, "stolen") })
	srv := startServer(t, nil, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/collect", http.StatusFound)
		case "/localhost":
			// Same port, another host name: another origin.
			http.Redirect(w, r, strings.Replace(requestOrigin(r), "127.0.0.1", "localhost", 1)+"/moved", http.StatusTemporaryRedirect)
		case "/old":
			http.Redirect(w, r, "/moved", http.StatusMovedPermanently)
		case "/moved":
			fmt.Fprint(w, "value")
		default:
			http.NotFound(w, r)
		}
	})
	c := mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: srv.URL + "/{{ .remoteRef.key }}", Headers: map[string]string{"X-Api-Key": canary}})
	for _, key := range []string{"away", "localhost"} {
		t.Run("to another origin: "+key, func(t *testing.T) {
			_, err := c.GetSecret(context.Background(), provider.Ref{Key: key})
			var re *RedirectError
			if !errors.Is(err, provider.ErrBadResponse) || !errors.As(err, &re) {
				t.Fatalf("got %v, want a RedirectError wrapping ErrBadResponse", err)
			}
			assertNoCanary(t, err)
			t.Logf("error as the user sees it: %v", err)
		})
	}
	if n := other.hits.Load(); n != 0 {
		t.Fatalf("the other host received %d requests, want 0", n)
	}
	t.Run("within the same origin", func(t *testing.T) {
		v, err := c.GetSecret(context.Background(), provider.Ref{Key: "old"})
		if err != nil || string(v.Data) != "value" {
			t.Fatalf("got %q, %v; want the value behind the same-host redirect", v.Data, err)
		}
	})
}

// requestOrigin is the origin of the server that received r, as the
// client named it.
func requestOrigin(r *http.Request) string { return "http://" + r.Host }

func TestCheckRedirectComparesOrigins(t *testing.T) {
	for _, tt := range []struct {
		from, to string
		ok       bool
	}{
		{"https://vault.example/a", "https://vault.example/b", true},
		{"https://vault.example/a", "https://VAULT.example:443/b", true},
		{"http://vault.example/a", "http://vault.example:80/b?x=1", true},
		{"https://vault.example/a", "http://vault.example/a", false},       // downgrade
		{"https://vault.example/a", "https://vault.example:8443/a", false}, // another port
		{"https://vault.example/a", "https://evil.example/a", false},
		{"https://vault.example/a", "https://169.254.169.254/a", false},
	} {
		t.Run(tt.from+" -> "+tt.to, func(t *testing.T) {
			from, _ := http.NewRequest(http.MethodGet, tt.from, nil)
			to, _ := http.NewRequest(http.MethodGet, tt.to, nil)
			err := checkRedirect(to, []*http.Request{from})
			if (err == nil) != tt.ok {
				t.Fatalf("checkRedirect = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestCredentialsOverPlainHTTPNeedTheOperatorsOptIn: a store that sends
// credentials to a plain http:// address that is not loopback is refused
// (when the client is built, or when a templated URL renders) before any
// connection; --allow-insecure-http lifts it; loopback stays allowed (the
// other tests use it).
func TestCredentialsOverPlainHTTPNeedTheOperatorsOptIn(t *testing.T) {
	withAuth := func(url string) *esv1.WebhookProvider {
		return &esv1.WebhookProvider{URL: url, Headers: map[string]string{"Authorization": "Bearer " + canary}}
	}
	t.Run("static URL refused when the client is built", func(t *testing.T) {
		_, err := bareClient(t, Options{}, provider.Policy{}, withAuth("http://secrets.example.invalid/v1/{{ .remoteRef.key }}"))
		wantErr(t, err, provider.ErrInvalidConfig)
		if !strings.Contains(err.Error(), "--allow-insecure-http") {
			t.Fatalf("error %q does not name the flag", err)
		}
	})
	t.Run("templated host refused when it renders", func(t *testing.T) {
		c := mustBareClient(t, Options{}, withAuth("{{ .remoteRef.key }}://secrets.example.invalid/v1"))
		_, err := c.GetSecret(context.Background(), provider.Ref{Key: "http"})
		wantErr(t, err, provider.ErrInvalidConfig)
	})
	t.Run("allowed by the operator", func(t *testing.T) {
		if _, err := bareClient(t, Options{}, provider.Policy{AllowInsecureHTTP: true}, withAuth("http://secrets.example.invalid/v1/{{ .remoteRef.key }}")); err != nil {
			t.Fatalf("with AllowInsecureHTTP: %v", err)
		}
	})
	t.Run("https is fine", func(t *testing.T) {
		if _, err := bareClient(t, Options{}, provider.Policy{}, withAuth("https://secrets.example.invalid/v1/{{ .remoteRef.key }}")); err != nil {
			t.Fatalf("https: %v", err)
		}
	})
	t.Run("no credentials, no rule", func(t *testing.T) {
		if _, err := bareClient(t, Options{}, provider.Policy{}, &esv1.WebhookProvider{URL: "http://public.example.invalid/{{ .remoteRef.key }}"}); err != nil {
			t.Fatalf("a store without credentials: %v", err)
		}
	})
}

// TestDroppedConnectionIsRetriedOnce: a response cut off mid-way is
// fetched again at once: exactly two attempts and the value, for an
// idempotent GET; a POST is sent once.
func TestDroppedConnectionIsRetriedOnce(t *testing.T) {
	t.Run("GET", func(t *testing.T) {
		s := dropproxy.StartServer(t, dropproxy.ServerOptions{Drop: 1, Status: http.StatusOK, Body: `{"value":"` + canary + `"}`})
		c := mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: s.URL() + "/{{ .remoteRef.key }}", Result: esv1.WebhookResult{JSONPath: "$.value"}})
		v, err := get(t, c, "k")
		if err != nil || v != canary {
			t.Fatalf("got %q, %v; want the value after one retry", v, err)
		}
		if n := s.Attempts(); n != 2 {
			t.Fatalf("%d attempts, want exactly 2", n)
		}
	})
	t.Run("dropped twice fails after two attempts", func(t *testing.T) {
		s := dropproxy.StartServer(t, dropproxy.ServerOptions{Drop: 5, Status: http.StatusOK, Body: `{"value":"` + canary + `"}`})
		c := mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: s.URL() + "/{{ .remoteRef.key }}"})
		_, err := get(t, c, "k")
		wantErr(t, err, provider.ErrUnreachable)
		if n := s.Attempts(); n != 2 {
			t.Fatalf("%d attempts, want exactly 2", n)
		}
	})
	t.Run("POST is not repeated", func(t *testing.T) {
		s := dropproxy.StartServer(t, dropproxy.ServerOptions{Drop: 1, Status: http.StatusOK, Body: `{"value":"` + canary + `"}`})
		c := mustBareClient(t, Options{}, &esv1.WebhookProvider{Method: "POST", URL: s.URL() + "/{{ .remoteRef.key }}", Body: "{}"})
		_, err := get(t, c, "k")
		wantErr(t, err, provider.ErrUnreachable)
		if n := s.Attempts(); n != 1 {
			t.Fatalf("%d attempts, want exactly 1", n)
		}
	})
}

// TestThrottlingIsNotRetried: a 429 is one request and a ThrottledError
// for the fetch layer's backoff.
func TestThrottlingIsNotRetried(t *testing.T) {
	s := dropproxy.StartServer(t, dropproxy.ServerOptions{Status: http.StatusTooManyRequests, Header: "Retry-After: 9\r\n", Body: "slow down"})
	c := mustBareClient(t, Options{}, &esv1.WebhookProvider{URL: s.URL() + "/{{ .remoteRef.key }}"})
	_, err := get(t, c, "k")
	var te *provider.ThrottledError
	if !errors.As(err, &te) || te.RetryAfter != 9*time.Second {
		t.Fatalf("got %v, want a ThrottledError with RetryAfter 9s", err)
	}
	if n := s.Attempts(); n != 1 {
		t.Fatalf("%d requests, want exactly 1", n)
	}
}

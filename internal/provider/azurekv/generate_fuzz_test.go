package azurekv

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
)

// FuzzParseRegistry: spec.registry is user input that becomes the host of
// the token service's URL and the token's service. Whatever it is, the
// parser never panics; what it accepts is a lower-case host (and port)
// that is exactly the host of https://<registry>/oauth2/exchange, and
// parsing it again gives it back; what it refuses is an invalid spec.
func FuzzParseRegistry(f *testing.F) {
	for _, s := range []string{"example.azurecr.io", "Example.AzureCR.io.", "registry.local:5000", "https://x.azurecr.io", "a/b", "x:0", "[::1]:1", " ", "user@host", "a..b", "xn--bcher-kva.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseRegistry(s)
		if err != nil {
			if !errors.Is(err, provider.ErrInvalidConfig) {
				t.Fatalf("ParseRegistry(%q): %v is not ErrInvalidConfig", s, err)
			}
			return
		}
		if got != strings.ToLower(got) || strings.ContainsAny(got, "/?#@ \t\r\n[]") {
			t.Fatalf("ParseRegistry(%q) = %q", s, got)
		}
		u, err := url.Parse("https://" + got + "/oauth2/exchange")
		if err != nil || u.Host != got || u.Path != "/oauth2/exchange" || u.User != nil {
			t.Fatalf("ParseRegistry(%q) = %q is not the host of its URL (%v)", s, got, err)
		}
		if again, err := ParseRegistry(got); err != nil || again != got {
			t.Fatalf("ParseRegistry(%q) = %q, %v; want it back", got, again, err)
		}
	})
}

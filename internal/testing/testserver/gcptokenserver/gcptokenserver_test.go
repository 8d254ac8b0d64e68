package gcptokenserver_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/internal/testing/testserver/gcptokenserver"
)

// assertion signs claims with key as an RS256 JWT.
func assertion(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// The endpoint grants a token only for a JWT-bearer grant whose assertion
// is signed by the registered key, names the endpoint as aud, has a scope
// and a short, current lifetime; it answers as Google does.
func TestTokenEndpointChecksTheAssertion(t *testing.T) {
	s := gcptokenserver.Start(t)
	const email = "a@p1.iam.gserviceaccount.com"
	_, key := s.NewKey(t, email)
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	good := map[string]any{"iss": email, "aud": s.URL, "scope": "https://www.googleapis.com/auth/cloud-platform", "iat": now, "exp": now + 3600}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range good {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	for _, tc := range []struct {
		name      string
		grant     string
		key       *rsa.PrivateKey
		claims    map[string]any
		wantError string // "" grants
	}{
		{name: "granted", key: key, claims: good},
		{name: "another grant type", grant: "client_credentials", key: key, claims: good, wantError: "unsupported_grant_type"},
		{name: "signed by another key", key: stranger, claims: good, wantError: "invalid_grant"},
		{name: "unknown service account", key: key, claims: with("iss", "b@p1.iam.gserviceaccount.com"), wantError: "invalid_grant"},
		{name: "aud is not the endpoint", key: key, claims: with("aud", "https://oauth2.googleapis.com/token"), wantError: "invalid_grant"},
		{name: "no scope", key: key, claims: with("scope", ""), wantError: "invalid_grant"},
		{name: "expired", key: key, claims: with("exp", now-10), wantError: "invalid_grant"},
		{name: "too long", key: key, claims: with("exp", now+2*3600), wantError: "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			grant := tc.grant
			if grant == "" {
				grant = gcptokenserver.GrantType
			}
			resp, err := s.Client().PostForm(s.URL, url.Values{"grant_type": {grant}, "assertion": {assertion(t, tc.key, tc.claims)}})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				AccessToken string `json:"access_token"`
				ExpiresIn   int    `json:"expires_in"`
				TokenType   string `json:"token_type"`
				Error       string `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if tc.wantError == "" {
				if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body.AccessToken, "ya29.") || body.ExpiresIn != 3599 || body.TokenType != "Bearer" {
					t.Fatalf("HTTP %d %+v, want a Bearer token for 3599s", resp.StatusCode, body)
				}
				return
			}
			if resp.StatusCode != http.StatusBadRequest || body.Error != tc.wantError || body.AccessToken != "" {
				t.Fatalf("HTTP %d error %q, want 400 %s", resp.StatusCode, body.Error, tc.wantError)
			}
		})
	}
	if n := len(s.Grants()); n != 1 {
		t.Fatalf("%d grants, want 1", n)
	}
}

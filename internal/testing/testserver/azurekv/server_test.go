package azurekv

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The wire format the Azure SDK depends on, checked without the SDK.

func do(t *testing.T, hc *http.Client, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s %s: body is not JSON: %s", req.Method, req.URL, b)
	}
	return resp, body
}

func get(t *testing.T, hc *http.Client, rawURL, token string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, hc, req)
}

func clientSecretToken(t *testing.T, s *Server, hc *http.Client, clientID, secret string) (int, map[string]any) {
	t.Helper()
	form := url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
		"scope": {VaultResource + "/.default openid offline_access profile"},
	}
	req, err := http.NewRequest(http.MethodPost, s.TokenEndpoint(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body := do(t, hc, req)
	return resp.StatusCode, body
}

func TestVaultProtocol(t *testing.T) {
	s := New(t, Options{PageSize: 2})
	hc := s.HTTPClient()
	s.AddApp(App{ClientID: "app", ClientSecret: "pw", Access: ReadAll})
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		s.SetSecret(n, "value-"+n, WithTags(map[string]string{"n": n}))
	}

	// The first request carries no token: Key Vault challenges it.
	resp, body := get(t, hc, s.VaultURL()+"/secrets/a/?api-version=2025-07-01", "")
	want := `Bearer authorization="` + s.AuthorityHost() + s.TenantID() + `", resource="https://vault.azure.net"`
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("challenge: %d %q, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}

	if status, body := clientSecretToken(t, s, hc, "app", "wrong"); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Fatalf("wrong secret: %d %v", status, body)
	}
	status, tok := clientSecretToken(t, s, hc, "app", "pw")
	token, _ := tok["access_token"].(string)
	if status != http.StatusOK || token == "" || tok["token_type"] != "Bearer" {
		t.Fatalf("token: %d %v", status, tok)
	}

	_, body = get(t, hc, s.VaultURL()+"/secrets/a/?api-version=2025-07-01", token)
	if body["value"] != "value-a" || !strings.HasPrefix(body["id"].(string), s.VaultURL()+"/secrets/a/") {
		t.Fatalf("get: %v", body)
	}
	attrs := body["attributes"].(map[string]any)
	if attrs["enabled"] != true || attrs["created"] == nil {
		t.Fatalf("attributes: %v", attrs)
	}

	resp, body = get(t, hc, s.VaultURL()+"/secrets/missing?api-version=2025-07-01", token)
	if e := body["error"].(map[string]any); resp.StatusCode != http.StatusNotFound || e["code"] != "SecretNotFound" {
		t.Fatalf("missing: %d %v", resp.StatusCode, body)
	}

	// Paging follows nextLink, which carries the api-version.
	var names []string
	next := s.VaultURL() + "/secrets?api-version=2025-07-01"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		_, body = get(t, hc, next, token)
		for _, it := range body["value"].([]any) {
			id := it.(map[string]any)["id"].(string)
			names = append(names, id[strings.LastIndex(id, "/")+1:])
		}
		next, _ = body["nextLink"].(string)
		if next != "" && !strings.Contains(next, "api-version=2025-07-01") {
			t.Fatalf("nextLink %q lost the api-version", next)
		}
	}
	if strings.Join(names, ",") != "a,b,c,d,e" {
		t.Fatalf("listed %v", names)
	}

	s.Throttle("/secrets/b", 3*time.Second, 1)
	resp, body = get(t, hc, s.VaultURL()+"/secrets/b?api-version=2025-07-01", token)
	if e := body["error"].(map[string]any); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3" || e["code"] != "Throttled" {
		t.Fatalf("throttled: %d %q %v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}

	s.SetAccess("app", NoAccess)
	resp, body = get(t, hc, s.VaultURL()+"/secrets/b?api-version=2025-07-01", token)
	if e := body["error"].(map[string]any); resp.StatusCode != http.StatusForbidden || e["code"] != "Forbidden" {
		t.Fatalf("no access: %d %v", resp.StatusCode, body)
	}

	s.RotateSigningKey(t)
	if resp, _ = get(t, hc, s.VaultURL()+"/secrets/b?api-version=2025-07-01", token); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a token signed with a retired key: %d, want 401", resp.StatusCode)
	}
	if got := s.VaultRequests("/secrets/b"); got != 3 {
		t.Fatalf("VaultRequests(/secrets/b) = %d, want 3", got)
	}
}

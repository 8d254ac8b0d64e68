package azurekv

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// The wire format of ACR's token service, checked with plain HTTP requests
// through the Router (the Host is the registry's).
func TestRegistryProtocol(t *testing.T) {
	s := New(t, Options{})
	s.AddRegistry("example.azurecr.io")
	s.AddApp(App{ClientID: "pusher", ClientSecret: "pw"})
	s.AddApp(App{ClientID: "stranger", ClientSecret: "pw"})
	s.GrantRegistry("example.azurecr.io", "pusher", AcrPull)
	hc := s.HTTPClient()
	r := s.Router()
	armToken := func(clientID, scope string) string {
		t.Helper()
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {"pw"}, "scope": {scope}}
		req, _ := http.NewRequest(http.MethodPost, s.TokenEndpoint(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, body := do(t, hc, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("token: %d %v", resp.StatusCode, body)
		}
		return body["access_token"].(string)
	}
	post := func(host, path string, form url.Values) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "https://"+host+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, body := do(t, &http.Client{Transport: roundTripper{r}}, req)
		return resp.StatusCode, body
	}
	wantError := func(status int, body map[string]any, wantStatus int, code string) {
		t.Helper()
		errs, _ := body["errors"].([]any)
		if status != wantStatus || len(errs) != 1 || errs[0].(map[string]any)["code"] != code {
			t.Fatalf("%d %v; want %d with errors[0].code %s", status, body, wantStatus, code)
		}
	}
	arm := armToken("pusher", "https://management.azure.com/.default")
	exchange := url.Values{"grant_type": {"access_token"}, "service": {"example.azurecr.io"}, "tenant": {s.TenantID()}, "access_token": {arm}}

	status, body := post("example.azurecr.io", "/oauth2/exchange", exchange)
	refresh, _ := body["refresh_token"].(string)
	if status != http.StatusOK || refresh == "" {
		t.Fatalf("exchange: %d %v", status, body)
	}
	if rt, err := s.VerifyRegistryToken(refresh); err != nil || !rt.Refresh || rt.ClientID != "pusher" {
		t.Fatalf("refresh token %+v, %v", rt, err)
	}
	status, body = post("example.azurecr.io", "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "service": {"example.azurecr.io"}, "scope": {"repository:foo:pull,push"}, "refresh_token": {refresh}})
	access, _ := body["access_token"].(string)
	if status != http.StatusOK || access == "" {
		t.Fatalf("token: %d %v", status, body)
	}
	if rt, err := s.VerifyRegistryToken(access); err != nil || rt.Refresh || !slices.Equal(rt.Access, []string{"repository:foo:pull"}) {
		t.Fatalf("access token %+v, %v; want pull only (AcrPull)", rt, err)
	}

	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vs := range exchange {
			f[key] = vs
		}
		f.Set(k, v)
		return f
	}
	for _, tc := range []struct {
		name   string
		host   string
		path   string
		form   url.Values
		status int
		code   string
	}{
		{"a Key Vault token is not Azure Resource Manager's", "example.azurecr.io", "/oauth2/exchange", with("access_token", armToken("pusher", VaultResource+"/.default")), 401, "UNAUTHORIZED"},
		{"a principal without a role", "example.azurecr.io", "/oauth2/exchange", with("access_token", armToken("stranger", "https://management.azure.com/.default")), 401, "UNAUTHORIZED"},
		{"another tenant", "example.azurecr.io", "/oauth2/exchange", with("tenant", "00000000-0000-0000-0000-000000000001"), 401, "UNAUTHORIZED"},
		{"a token that is not one", "example.azurecr.io", "/oauth2/exchange", with("access_token", "x"), 401, "UNAUTHORIZED"},
		{"another grant", "example.azurecr.io", "/oauth2/exchange", with("grant_type", "password"), 400, "UNSUPPORTED"},
		{"a service that is not the registry", "example.azurecr.io", "/oauth2/exchange", with("service", "other.azurecr.io"), 400, "BAD_REQUEST"},
		{"an unknown registry", "other.azurecr.io", "/oauth2/exchange", with("service", "other.azurecr.io"), 404, "NOT_FOUND"},
		{"an access token is no refresh token", "example.azurecr.io", "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "service": {"example.azurecr.io"}, "scope": {"repository:foo:pull"}, "refresh_token": {access}}, 401, "UNAUTHORIZED"},
		{"no scope", "example.azurecr.io", "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "service": {"example.azurecr.io"}, "refresh_token": {refresh}}, 400, "BAD_REQUEST"},
		{"a wildcard scope", "example.azurecr.io", "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "service": {"example.azurecr.io"}, "scope": {"repository:*:pull"}, "refresh_token": {refresh}}, 400, "BAD_REQUEST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(tc.host, tc.path, tc.form)
			wantError(status, body, tc.status, tc.code)
		})
	}
}

// roundTripper adapts a Router to http.RoundTripper.
type roundTripper struct{ r *Router }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return rt.r.Do(req) }

package gcpsm

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/generator"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testserver/gcptokenserver"
)

const gcrEmail = "puller@p1.iam.gserviceaccount.com"

// gcrRequest is the request the engine makes for a GCRAccessToken.
func gcrRequest() provider.GenerateRequest {
	return provider.GenerateRequest{Kind: generator.KindGCRAccessToken, Spec: &generator.GCRAccessTokenSpec{}}
}

// generateIn runs Generate for store g used from namespace ns, with the
// token requests going through hc.
func generateIn(ctx context.Context, hc *http.Client, ns string, g *esv1.GCPSMProvider, req provider.GenerateRequest) (map[string][]byte, error) {
	store := gcpStore(g)
	store.Kind, store.Name, store.Namespace = generator.KindGCRAccessToken, "gcr", ns
	return NewWithTokenClient(hc).Generate(ctx, provider.Options{
		Store: store, Namespace: ns, Kube: kube, Tokens: tokenRequester{clientset},
	}, req)
}

// A GCRAccessToken with a service account key gets an access token from
// the key's token_uri through the JWT-bearer grant, signed with the key and
// asking for cloud-platform, and returns ESO's three keys. A key needs no
// projectID for that, as in ESO.
func TestGenerateGCRAccessTokenFromServiceAccountKey(t *testing.T) {
	srv := gcptokenserver.Start(t)
	keyJSON, _ := srv.NewKey(t, gcrEmail)
	ns := newNamespace(t)
	createSecret(t, ns, "gcr-key", map[string][]byte{"sa.json": keyJSON})
	g := secretRefStore("gcr-key", "sa.json")
	g.ProjectID = ""

	before := time.Now()
	out, err := generateIn(testContext(t), srv.Client(), ns, g, gcrRequest())
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	grants := srv.Grants()
	if len(grants) != 1 {
		t.Fatalf("the token endpoint granted %d tokens, want 1", len(grants))
	}
	if grants[0].Email != gcrEmail || grants[0].Scope != "https://www.googleapis.com/auth/cloud-platform" {
		t.Errorf("grant for %q with scope %q, want the key's service account and cloud-platform", grants[0].Email, grants[0].Scope)
	}
	if len(out) != 3 || string(out["username"]) != "oauth2accesstoken" || string(out["password"]) != grants[0].Token {
		t.Fatalf("values have keys %v, username %q; want ESO's username, password (the granted token) and expiry", generatedKeys(out), out["username"])
	}
	exp, err := strconv.ParseInt(string(out["expiry"]), 10, 64)
	if err != nil {
		t.Fatalf("expiry %q is not Unix seconds", out["expiry"])
	}
	if d := time.Unix(exp, 0).Sub(before); d < gcptokenserver.TokenLifetime-time.Minute || d > gcptokenserver.TokenLifetime+time.Minute {
		t.Errorf("the token expires %s from now, want about %s", d, gcptokenserver.TokenLifetime)
	}
}

// Every failure says what went wrong with the reason the engine maps, and
// never holds what the token endpoint answered, the key or a token.
func TestGenerateGCRAccessTokenFailures(t *testing.T) {
	const canary = "canary-ya29-7f3e9d"
	srv := gcptokenserver.Start(t)
	keyJSON, _ := srv.NewKey(t, gcrEmail)
	other := gcptokenserver.Start(t) // does not know the key
	ns := newNamespace(t)
	createSecret(t, ns, "gcr-key", map[string][]byte{"sa.json": keyJSON})
	otherKey, _ := other.NewKey(t, "other@p1.iam.gserviceaccount.com")
	// The key of srv with other's token_uri: other does not know it.
	foreign := strings.Replace(string(keyJSON), srv.URL, other.URL, 1)
	plain := strings.Replace(string(keyJSON), srv.URL, "http://"+strings.TrimPrefix(srv.URL, "https://"), 1)
	createSecret(t, ns, "keys", map[string][]byte{
		"foreign": []byte(foreign), "plain": []byte(plain), "other": otherKey,
		"garbage": []byte(`{"type": "service_account", "private_key": "` + canary + `"`),
	})

	tests := []struct {
		name    string
		refuse  *gcptokenserver.Refusal
		hc      *http.Client
		key     string
		req     *provider.GenerateRequest
		auth    *esv1.GCPSMAuth
		want    error
		wantMsg string
	}{
		{name: "invalid_grant", refuse: &gcptokenserver.Refusal{Status: 400, Body: `{"error":"invalid_grant","error_description":"` + canary + `"}`},
			want: provider.ErrUnauthenticated, wantMsg: "HTTP 400 (invalid_grant)"},
		{name: "error code that is not one", refuse: &gcptokenserver.Refusal{Status: 401, Body: `{"error":"` + canary + ` x"}`},
			want: provider.ErrUnauthenticated, wantMsg: "HTTP 401"},
		{name: "forbidden", refuse: &gcptokenserver.Refusal{Status: 403, Body: canary}, want: provider.ErrForbidden, wantMsg: "HTTP 403"},
		{name: "server error", refuse: &gcptokenserver.Refusal{Status: 503, Body: canary}, want: provider.ErrUnreachable, wantMsg: "HTTP 503"},
		{name: "answer without a token", refuse: &gcptokenserver.Refusal{Status: 200, Body: `{"token_type":"Bearer","note":"` + canary + `"}`},
			want: provider.ErrBadResponse},
		{name: "answer that is not JSON", refuse: &gcptokenserver.Refusal{Status: 200, Body: canary}, want: provider.ErrBadResponse},
		{name: "signature the endpoint does not accept", key: "foreign", hc: other.Client(),
			want: provider.ErrUnauthenticated, wantMsg: "invalid_grant"},
		{name: "endpoint certificate not trusted", hc: &http.Client{}, want: provider.ErrUnreachable, wantMsg: "certificate"},
		{name: "token_uri not https", key: "plain", want: provider.ErrInvalidConfig, wantMsg: "token_uri must be an https URL"},
		{name: "not a key", key: "garbage", want: provider.ErrInvalidConfig, wantMsg: "is not a JSON service account key"},
		{name: "missing Secret key", key: "absent", want: provider.ErrInvalidConfig},
		{name: "workload identity federation", auth: &esv1.GCPSMAuth{WorkloadIdentityFederation: &esv1.GCPWorkloadIdentityFederation{Audience: "x"}},
			want: provider.ErrNotSupported},
		{name: "another generator kind", req: &provider.GenerateRequest{Kind: "ECRAuthorizationToken"}, want: provider.ErrNotSupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.Refuse(tt.refuse)
			defer srv.Refuse(nil)
			hc := tt.hc
			if hc == nil {
				hc = srv.Client()
			}
			g := secretRefStore("gcr-key", "sa.json")
			if tt.key != "" {
				g = secretRefStore("keys", tt.key)
			}
			if tt.auth != nil {
				g.Auth = *tt.auth
			}
			req := gcrRequest()
			if tt.req != nil {
				req = *tt.req
			}
			out, err := generateIn(testContext(t), hc, ns, g, req)
			if err == nil {
				t.Fatalf("Generate = %v keys, want an error", len(out))
			}
			t.Logf("error: %v", err)
			var te *provider.ThrottledError
			if !errors.Is(err, tt.want) && !(tt.want == nil && errors.As(err, &te)) {
				t.Fatalf("Generate = %v, want an error wrapping %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q does not say %q", err, tt.wantMsg)
			}
			for _, leak := range append([]string{canary, "ya29.", "PRIVATE KEY"}, tokensOf(srv)...) {
				if strings.Contains(err.Error(), leak) {
					t.Fatalf("the error holds %q: %v", leak, err)
				}
			}
		})
	}
	if len(srv.Grants()) != 0 {
		t.Fatal("a token was granted while every request was to fail")
	}
}

// Throttling is told apart, so the engine backs off as asked.
func TestGenerateGCRAccessTokenThrottled(t *testing.T) {
	srv := gcptokenserver.Start(t)
	keyJSON, _ := srv.NewKey(t, gcrEmail)
	ns := newNamespace(t)
	createSecret(t, ns, "gcr-key", map[string][]byte{"sa.json": keyJSON})
	srv.Refuse(&gcptokenserver.Refusal{Status: http.StatusTooManyRequests, Body: `{"error":"rate_limit_exceeded"}`})
	_, err := generateIn(testContext(t), srv.Client(), ns, secretRefStore("gcr-key", "sa.json"), gcrRequest())
	var te *provider.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("Generate = %v, want a ThrottledError", err)
	}
}

func tokensOf(s *gcptokenserver.Server) []string {
	var out []string
	for _, g := range s.Grants() {
		out = append(out, g.Token)
	}
	return out
}

func generatedKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestCheckTokenURI(t *testing.T) {
	for _, tt := range []struct {
		in         string
		anyAllowed bool
		ok         bool
	}{
		{"", false, true},
		{"https://oauth2.googleapis.com/token", false, true},
		{"https://accounts.google.com/o/oauth2/token", false, true},
		{"https://127.0.0.1:8443/token", false, false},
		{"https://internal.svc.cluster.local/token", false, false},
		{"https://127.0.0.1:8443/token", true, true},
		{"http://oauth2.googleapis.com/token", true, false},
		{"https:///token", true, false},
		{"https://user:pw@example.com/token", true, false},
		{"oauth2.googleapis.com/token", true, false},
		{"::", true, false},
	} {
		err := checkTokenURI(tt.in, tt.anyAllowed)
		if (err == nil) != tt.ok {
			t.Errorf("checkTokenURI(%q, %v) = %v, want ok=%v", tt.in, tt.anyAllowed, err, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), tt.in) {
			t.Errorf("checkTokenURI(%q) quotes the URL", tt.in)
		}
	}
}

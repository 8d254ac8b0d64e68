package azurekv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"k8s.io/client-go/rest"
)

// TrustKubernetesIssuer makes the token endpoint trust ServiceAccount tokens
// of the Kubernetes API server cfg points at, as an Entra ID tenant trusts an
// AKS cluster's OIDC issuer: it reads the issuer from the API server's
// /.well-known/openid-configuration and its keys from /openid/v1/jwks, with
// cfg's credentials. It returns the issuer, which federated credentials name.
func (s *Server) TrustKubernetesIssuer(ctx context.Context, tb testing.TB, cfg *rest.Config) string {
	tb.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		tb.Fatalf("azurekv test server: building a client for the API server: %v", err)
	}
	host := strings.TrimSuffix(cfg.Host, "/")
	var disc struct {
		Issuer string `json:"issuer"`
	}
	if err := getJSON(ctx, hc, host+"/.well-known/openid-configuration", &disc); err != nil {
		tb.Fatalf("azurekv test server: reading the API server's OpenID configuration: %v", err)
	}
	if disc.Issuer == "" {
		tb.Fatalf("azurekv test server: the API server's OpenID configuration names no issuer")
	}
	var keys jose.JSONWebKeySet
	if err := getJSON(ctx, hc, host+"/openid/v1/jwks", &keys); err != nil {
		tb.Fatalf("azurekv test server: reading the API server's JWKS: %v", err)
	}
	if len(keys.Keys) == 0 {
		tb.Fatalf("azurekv test server: the API server's JWKS holds no key")
	}
	s.TrustIssuer(disc.Issuer, keys)
	return disc.Issuer
}

func getJSON(ctx context.Context, hc *http.Client, url string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return json.Unmarshal(body, into)
}

package vault

import (
	"encoding/json"
	"errors"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keyferry/keyferry/internal/generator"
	"github.com/keyferry/keyferry/internal/provider"
)

func TestDynamicValues(t *testing.T) {
	sec := &vaultapi.Secret{
		RequestID: "req-1",
		Data: map[string]any{
			"certificate": "-----BEGIN CERTIFICATE-----",
			"serial":      json.Number("42"),
			"ca_chain":    []any{"a", "b"},
			"empty":       nil,
		},
		Auth: &vaultapi.SecretAuth{ClientToken: "hvs.token", Accessor: "acc", LeaseDuration: 3600},
	}
	for _, tc := range []struct {
		name       string
		resultType string
		want       map[string]string
	}{
		{"Data (default): strings as they are, the rest as JSON", "", map[string]string{
			"certificate": "-----BEGIN CERTIFICATE-----", "serial": "42", "ca_chain": `["a","b"]`, "empty": "",
		}},
		{"Auth", generator.VaultResultAuth, map[string]string{"client_token": "hvs.token", "accessor": "acc", "lease_duration": "3600"}},
		{"Raw", generator.VaultResultRaw, map[string]string{"request_id": "req-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := dynamicValues(sec, tc.resultType)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if string(out[k]) != v {
					t.Errorf("%s = %q, want %q", k, out[k], v)
				}
			}
		})
	}
	if out, err := dynamicValues(nil, ""); err != nil || len(out) != 0 {
		t.Fatalf("no answer: %v, %v; want no values", out, err)
	}
	if out, err := dynamicValues(&vaultapi.Secret{}, generator.VaultResultAuth); err != nil || len(out) != 0 {
		t.Fatalf("no auth: %v, %v; want no values", out, err)
	}
}

func TestGenerateRefusesAnotherSpec(t *testing.T) {
	_, err := vaultProvider{}.Generate(t.Context(), provider.Options{}, provider.GenerateRequest{Kind: "Password", Spec: "x"})
	if !errors.Is(err, provider.ErrNotSupported) {
		t.Fatalf("err = %v, want ErrNotSupported", err)
	}
}

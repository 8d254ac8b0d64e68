package generator

import (
	"errors"
	"testing"
)

func TestParseVaultDynamicSecret(t *testing.T) {
	const provider = `"provider": {"server": "http://vault:8200", "auth": {"tokenSecretRef": {"name": "t", "key": "token"}}}`
	for _, tc := range []struct {
		name  string
		raw   string
		field string // refused on this field; "" accepted
		op    string
	}{
		{"ESO's PKI example", `{"path": "/pki/issue/example-dot-com", "method": "POST", "parameters": {"common_name": "localhost", "ip_sans": "127.0.0.1,127.0.0.11"}, "resultType": "Data", ` + provider + `}`, "", VaultWrite},
		{"ESO's GET example", `{"path": "/kv/data/example", "method": "GET", "getParameters": {"version": ["1"]}, "resultType": "Data", ` + provider + `}`, "", VaultRead},
		{"no method reads", `{"path": "database/creds/app", ` + provider + `}`, "", VaultRead},
		{"LIST", `{"path": "secret/metadata", "method": "LIST", ` + provider + `}`, "", VaultList},
		{"DELETE", `{"path": "x", "method": "DELETE", ` + provider + `}`, "", VaultDelete},
		{"retrySettings and controller accepted", `{"path": "x", "controller": "c", "retrySettings": {"maxRetries": 3}, "allowEmptyResponse": true, ` + provider + `}`, "", VaultRead},
		{"no path", `{` + provider + `}`, "spec.path", ""},
		{"a path of slashes", `{"path": "//", ` + provider + `}`, "spec.path", ""},
		{"no provider", `{"path": "x"}`, "spec.provider", ""},
		{"unknown resultType", `{"path": "x", "resultType": "Everything", ` + provider + `}`, "spec.resultType", ""},
		{"parameters not an object", `{"path": "x", "method": "POST", "parameters": [1], ` + provider + `}`, "spec.parameters", ""},
		{"unknown field", `{"path": "x", "paramters": {}, ` + provider + `}`, "spec", ""},
		{"a field of the wrong type", `{"path": 3, ` + provider + `}`, "spec", ""},
		{"not JSON", `{"path": `, "spec", ""},
		{"two values", `{"path": "x", ` + provider + `} {}`, "spec", ""},
		{"empty", ``, "spec", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseVaultDynamicSecret([]byte(tc.raw))
			if tc.field != "" {
				var se *SpecError
				if !errors.As(err, &se) || se.Field != tc.field || !errors.Is(err, ErrInvalidSpec) {
					t.Fatalf("err = %v, want a SpecError on %s", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseVaultDynamicSecret: %v", err)
			}
			if s.Op() != tc.op {
				t.Fatalf("Op = %s, want %s", s.Op(), tc.op)
			}
		})
	}
}

// FuzzParseVaultDynamicSecret: any input is a spec with a path and a
// provider, or a *SpecError; never a panic.
func FuzzParseVaultDynamicSecret(f *testing.F) {
	for _, s := range []string{
		`{"path": "/pki/issue/x", "method": "POST", "parameters": {"a": 1}, "provider": {"server": "http://v:8200"}}`,
		`{"path": "x", "getParameters": {"v": ["1"]}, "resultType": "Raw", "provider": {}}`,
		`{"path": 3}`, `[]`, `null`, ``, `{"parameters": "x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := ParseVaultDynamicSecret(raw)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("not a SpecError: %v", err)
			}
			return
		}
		if s.Provider == nil || s.Path == "" {
			t.Fatal("accepted a spec without path or provider")
		}
		switch s.Op() {
		case VaultRead, VaultList, VaultDelete, VaultWrite:
		default:
			t.Fatalf("op %q", s.Op())
		}
	})
}

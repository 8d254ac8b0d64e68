package vault

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
)

// classPolicy lets a class read the KV v2 engine at secret/ and ask Vault
// for random bytes (a write that answers with data, like issuing a
// certificate).
const classPolicy = `path "secret/data/*" { capabilities = ["read"] }
path "sys/tools/random/*" { capabilities = ["update"] }
`

// classAuth sets up Kubernetes auth for the ServiceAccount "app" of the
// test namespace (kubernetesAuth) with the role kv-role, which checks the
// audience "vault" as the Vault provider's examples configure it.
func classAuth(t *testing.T, e *env) {
	t.Helper()
	kubernetesAuth(t, e)
	e.vault.PutPolicy(t, "class-reader", classPolicy)
	e.vault.Write(t, "auth/kubernetes/role/kv-role", map[string]any{
		"bound_service_account_names":      []string{"app"},
		"bound_service_account_namespaces": []string{e.ns},
		"token_policies":                   []string{"class-reader"},
		"token_ttl":                        "1h",
		"audience":                         "vault",
	})
}

// classStore is a SecretProviderClass with provider vault in the test's
// namespace, read as the ServiceAccount sa.
func (e *env) classStore(sa string, params map[string]string) provider.Store {
	return provider.Store{Kind: provider.ClassKind, Name: "vault-kv", Namespace: e.ns,
		Class: &provider.Class{Provider: ClassName, Parameters: params, ServiceAccount: sa}}
}

func (e *env) classClient(store provider.Store) provider.Client {
	e.t.Helper()
	p := New()
	if err := p.ValidateSpec(store); err != nil {
		e.t.Fatalf("ValidateSpec: %v", err)
	}
	c, err := p.NewClient(context.Background(), e.options(store))
	if err != nil {
		e.noLeak(err)
		e.t.Fatalf("NewClient: %v", err)
	}
	e.t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			e.t.Errorf("Close: %v", err)
		}
	})
	return c
}

// The Vault provider's "Hello World" class (vault-kv-secretproviderclass)
// and its sync example's encoding, read from a dev server as the
// SecretSync's ServiceAccount, logged in with Kubernetes auth at the
// default mount through the real API server's TokenReview.
func TestClassReadsTheProvidersExamples(t *testing.T) {
	e := newEnv(t)
	classAuth(t, e)
	v1, v2 := e.canary(), e.canary()
	e.vault.PutKV(t, "secret", 2, "kv1", map[string]any{"bar1": v1, "n": 42})
	e.vault.PutKV(t, "secret", 2, "kv2", map[string]any{"bar2": v2})
	e.vault.PutKV(t, "secret", 2, "kv-sync3", map[string]any{"bar3": base64.StdEncoding.EncodeToString([]byte(v1))})
	params := map[string]string{
		"vaultAddress": e.vault.Addr,
		"roleName":     "kv-role",
		"audience":     "vault",
		"objects": `- objectName: "secret-1"
  secretPath: "secret/data/kv1"
  secretKey: "bar1"
  filePermission: 0624
- objectName: "secret-2"
  secretPath: "secret/data/kv2"
  secretKey: "bar2"
- objectName: "secret-3"
  secretPath: "/v1/secret/data/kv-sync3"
  secretKey: "bar3"
  encoding: "base64"
- objectName: "number"
  secretPath: "secret/data/kv1"
  secretKey: "n"
- objectName: "whole"
  secretPath: "secret/data/kv2"
- objectName: "missing-key"
  secretPath: "secret/data/kv1"
  secretKey: "nope"
- objectName: "missing-path"
  secretPath: "secret/data/nope"
  secretKey: "bar1"
- objectName: "random-a"
  secretPath: "sys/tools/random/16"
  method: "POST"
  secretArgs: {format: hex}
  secretKey: "random_bytes"
- objectName: "random-b"
  secretPath: "sys/tools/random/16"
  method: "POST"
  secretArgs: {format: hex}
  secretKey: "random_bytes"
`,
	}
	c := e.classClient(e.classStore("app", params))
	var refs []provider.Ref
	for _, name := range []string{"secret-1", "secret-2", "secret-3", "number", "whole", "missing-key", "missing-path", "random-a", "random-b"} {
		refs = append(refs, provider.Ref{Key: name})
	}
	vals, errs := c.(provider.BatchGetter).GetSecrets(context.Background(), refs)
	for name, want := range map[string]string{"secret-1": v1, "secret-2": v2, "secret-3": v1, "number": "42"} {
		if got := vals[provider.Ref{Key: name}]; string(got.Data) != want {
			t.Errorf("%s = %q (err %v), want %q", name, got.Data, errs[provider.Ref{Key: name}], want)
		}
	}
	if got := vals[provider.Ref{Key: "secret-1"}].Version; got != "1" {
		t.Errorf("secret-1 version = %q, want the KV version 1", got)
	}
	// Without secretKey, the whole response as JSON, request_id left empty.
	var whole struct {
		RequestID string `json:"request_id"`
		Data      struct {
			Data     map[string]string `json:"data"`
			Metadata map[string]any    `json:"metadata"`
		} `json:"data"`
	}
	if err := json.Unmarshal(vals[provider.Ref{Key: "whole"}].Data, &whole); err != nil {
		t.Fatalf("whole is not JSON: %v", err)
	}
	if whole.RequestID != "" || whole.Data.Data["bar2"] != v2 || whole.Data.Metadata["version"] == nil {
		t.Errorf("whole = %+v, want the KV v2 response without request_id", whole)
	}
	for name, want := range map[string]error{"missing-key": provider.ErrNotFound, "missing-path": provider.ErrNotFound} {
		err := errs[provider.Ref{Key: name}]
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		}
		e.noLeak(err)
	}
	// Two objects of one request share one response (as the provider
	// reads dynamic credentials once per mount).
	a, b := vals[provider.Ref{Key: "random-a"}].Data, vals[provider.Ref{Key: "random-b"}].Data
	if len(a) != 32 || string(a) != string(b) {
		t.Errorf("random-a = %q, random-b = %q: want the same 16 bytes in hex from one request (errs %v %v)", a, b,
			errs[provider.Ref{Key: "random-a"}], errs[provider.Ref{Key: "random-b"}])
	}
	// The next call sends the request again.
	again, err := c.GetSecret(context.Background(), provider.Ref{Key: "random-a"})
	if err != nil || string(again.Data) == string(a) {
		t.Errorf("a second read = (%q, %v), want new random bytes", again.Data, err)
	}
	_, err = c.GetSecret(context.Background(), provider.Ref{Key: "secret-1", Version: provider.ClassPartKey})
	if !errors.Is(err, provider.ErrBadResponse) {
		t.Errorf("tls.key of a file without a key: got %v, want ErrBadResponse", err)
	}
	e.noLeak(err)
	if err := c.Validate(context.Background()); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// The token sent is the class's ServiceAccount's, for the class's audience:
// another ServiceAccount, or the wrong audience, is refused by Vault.
func TestClassLogsInAsTheServiceAccountForTheAudience(t *testing.T) {
	e := newEnv(t)
	classAuth(t, e)
	e.vault.PutKV(t, "secret", 2, "kv1", map[string]any{"bar1": e.canary()})
	params := func(audience string) map[string]string {
		return map[string]string{"vaultAddress": e.vault.Addr, "roleName": "kv-role", "audience": audience,
			"objects": "- objectName: a\n  secretPath: secret/data/kv1\n  secretKey: bar1\n"}
	}
	for name, store := range map[string]provider.Store{
		"a ServiceAccount the role does not bind": e.classStore("vault-reviewer", params("vault")),
		"another audience":                        e.classStore("app", params("not-vault")),
	} {
		c := e.classClient(store)
		_, err := c.GetSecret(context.Background(), provider.Ref{Key: "a"})
		if !errors.Is(err, provider.ErrUnauthenticated) {
			t.Errorf("%s: got %v, want ErrUnauthenticated", name, err)
		}
		e.noLeak(err)
	}
}

// A class without audience would send Vault a token this cluster's API
// server accepts: a namespaced class is refused before any client is
// built, unless the operator grants api-token. An http:// address that is
// not loopback is refused as for a SecretStore.
func TestClassAdmission(t *testing.T) {
	const objects = "- objectName: a\n  secretPath: secret/data/a\n"
	p := New()
	store := func(params map[string]string) provider.Store {
		return provider.Store{Kind: provider.ClassKind, Name: "c", Namespace: "team-a",
			Class: &provider.Class{Provider: ClassName, Parameters: params, ServiceAccount: "app"}}
	}
	withAudience := map[string]string{"vaultAddress": "https://vault:8200", "roleName": "r", "audience": "vault", "objects": objects}
	noAudience := map[string]string{"vaultAddress": "https://vault:8200", "roleName": "r", "objects": objects}
	granted := provider.Policy{AmbientIdentities: []provider.IdentityGrant{{Identity: provider.IdentityAPIToken, Namespace: "team-a"}}}
	for _, tc := range []struct {
		name   string
		params map[string]string
		policy provider.Policy
		want   error
	}{
		{name: "audience", params: withAudience},
		{name: "no audience", params: noAudience, want: provider.ErrOperatorIdentity},
		{name: "no audience, granted", params: noAudience, policy: granted},
	} {
		_, err := provider.Admit(p, provider.Options{Store: store(tc.params), Namespace: "team-a", Policy: tc.policy})
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: Admit = %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "parameters.audience") {
			t.Errorf("%s: the refusal does not name parameters.audience: %v", tc.name, err)
		}
	}
	plain := map[string]string{"vaultAddress": "http://vault.example:8200", "roleName": "r", "audience": "vault", "objects": objects}
	_, err := p.NewClient(context.Background(), provider.Options{Store: store(plain), Namespace: "team-a"})
	if !errors.Is(err, provider.ErrInvalidConfig) || !strings.Contains(err.Error(), "parameters.vaultAddress") {
		t.Errorf("NewClient with plain http:// to a server that is not loopback = %v, want ErrInvalidConfig naming parameters.vaultAddress", err)
	}
}

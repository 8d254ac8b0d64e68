package vault

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

func TestReadsKVv2EntryAsFields(t *testing.T) {
	e := newEnv(t)
	pass := e.canary()
	e.vault.PutKV(t, "secret", 2, "app/db", map[string]any{
		"user": "admin", "pass": pass, "port": 5432, "tls": true, "none": nil,
		"nested": map[string]any{"host": "db.internal", "replicas": []any{"a", "b"}},
	})
	c := e.client(e.spec(e.rootAuth()))

	v := e.get(c, "app/db")
	want := map[string]string{
		"user": "admin", "pass": pass, "port": "5432", "tls": "true", "none": "",
		"nested": `{"host":"db.internal","replicas":["a","b"]}`,
	}
	for k, w := range want {
		if got := string(v.Fields[k]); got != w {
			t.Errorf("field %s = %q, want %q", k, got, w)
		}
	}
	if len(v.Fields) != len(want) {
		t.Errorf("got %d fields, want %d", len(v.Fields), len(want))
	}
	var data map[string]any
	if err := json.Unmarshal(v.Data, &data); err != nil {
		t.Fatalf("Data is not JSON: %v", err)
	}
	if nested, ok := data["nested"].(map[string]any); !ok || nested["host"] != "db.internal" {
		t.Errorf("Data keeps nested values as objects for gjson properties, got %s", v.Data)
	}
	if v.Version != "1" {
		t.Errorf("version = %q, want 1", v.Version)
	}
}

func TestKeysMayIncludeTheMount(t *testing.T) {
	e := newEnv(t)
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"k": "v"})
	auth := e.rootAuth()
	withPath := e.client(e.spec(auth))
	noPath := e.spec(auth)
	noPath.Path = nil
	withoutPath := e.client(noPath)

	for _, tc := range []struct {
		c   *client
		key string
	}{{withPath, "app"}, {withPath, "secret/app"}, {withPath, "secret/data/app"}, {withoutPath, "secret/app"}, {withoutPath, "secret/data/app"}} {
		if got := string(e.get(tc.c, tc.key).Fields["k"]); got != "v" {
			t.Errorf("key %q (path set: %v): got %q", tc.key, tc.c.paths.mount != "", got)
		}
	}
}

func TestReadsKVv1(t *testing.T) {
	e := newEnv(t)
	e.vault.EnableKV(t, "kv1", 1)
	val := e.canary()
	e.vault.PutKV(t, "kv1", 1, "app/config", map[string]any{"token": val, "n": 1})
	spec := e.spec(e.rootAuth())
	spec.Path, spec.Version = ptr("kv1"), esv1.VaultKVStoreV1
	c := e.client(spec)

	v := e.get(c, "app/config")
	if string(v.Fields["token"]) != val || string(v.Fields["n"]) != "1" || v.Version != "" {
		t.Errorf("got fields %q version %q", v.Fields, v.Version)
	}
	_, err := c.GetSecret(context.Background(), provider.Ref{Key: "app/config", Version: "1"})
	e.wantErr(err, provider.ErrNotSupported)
	_, err = c.GetSecret(context.Background(), provider.Ref{Key: "app/missing"})
	e.wantErr(err, provider.ErrNotFound)
	if err := c.Validate(context.Background()); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestReadsSpecificVersions(t *testing.T) {
	e := newEnv(t)
	old, cur := e.canary(), e.canary()
	e.vault.PutKV(t, "secret", 2, "rotating", map[string]any{"v": old})
	e.vault.PutKV(t, "secret", 2, "rotating", map[string]any{"v": cur})
	c := e.client(e.spec(e.rootAuth()))
	ctx := context.Background()

	v, err := c.GetSecret(ctx, provider.Ref{Key: "rotating", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Fields["v"]) != old || v.Version != "1" {
		t.Errorf("version 1: got %q (version %q)", v.Fields["v"], v.Version)
	}
	if v := e.get(c, "rotating"); string(v.Fields["v"]) != cur || v.Version != "2" {
		t.Errorf("latest: got %q (version %q)", v.Fields["v"], v.Version)
	}
	_, err = c.GetSecret(ctx, provider.Ref{Key: "rotating", Version: "7"})
	e.wantErr(err, provider.ErrNotFound)
	_, err = c.GetSecret(ctx, provider.Ref{Key: "rotating", Version: "latest"})
	e.wantErr(err, provider.ErrInvalidConfig)

	// A deleted version is not found; the others stay readable.
	e.vault.Write(t, "secret/delete/rotating", map[string]any{"versions": []int{1}})
	_, err = c.GetSecret(ctx, provider.Ref{Key: "rotating", Version: "1"})
	e.wantErr(err, provider.ErrNotFound)
	if v := e.get(c, "rotating"); string(v.Fields["v"]) != cur {
		t.Errorf("latest after deleting version 1: got %q", v.Fields["v"])
	}
}

func TestRotatedValueIsReadAgain(t *testing.T) {
	e := newEnv(t)
	first, second := e.canary(), e.canary()
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": first})
	c := e.client(e.spec(e.rootAuth()))
	if got := string(e.get(c, "app").Fields["v"]); got != first {
		t.Fatalf("before rotation: got %q", got)
	}
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": second})
	if got := string(e.get(c, "app").Fields["v"]); got != second {
		t.Fatalf("after rotation: got %q, want the new value", got)
	}
}

func TestMissingKeyIsNotFound(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.spec(e.rootAuth()))
	_, err := c.GetSecret(context.Background(), provider.Ref{Key: "does/not/exist"})
	e.wantErr(err, provider.ErrNotFound)

	// The latest version deleted: nothing to read.
	e.vault.PutKV(t, "secret", 2, "gone", map[string]any{"v": e.canary()})
	e.vault.Delete(t, "secret/data/gone")
	_, err = c.GetSecret(context.Background(), provider.Ref{Key: "gone"})
	e.wantErr(err, provider.ErrNotFound)
}

func TestPolicyWithoutReadIsForbidden(t *testing.T) {
	e := newEnv(t)
	secret := e.canary()
	e.vault.PutKV(t, "secret", 2, "private/key", map[string]any{"v": secret})
	e.vault.PutKV(t, "secret", 2, "public/key", map[string]any{"v": "hello"})
	e.vault.PutPolicy(t, "public-only", `path "secret/data/public/*" { capabilities = ["read"] }`)
	tok := e.vault.Token(t, "public-only")
	e.secrets = append(e.secrets, tok)
	c := e.client(e.spec(e.tokenAuth("limited", tok)))

	if got := string(e.get(c, "public/key").Fields["v"]); got != "hello" {
		t.Fatalf("public key: got %q", got)
	}
	_, err := c.GetSecret(context.Background(), provider.Ref{Key: "private/key"})
	e.wantErr(err, provider.ErrForbidden)
	_, err = fetch.FindIn(context.Background(), c, provider.Find{Name: ".*"})
	e.wantErr(err, provider.ErrForbidden)
}

func TestFindsByPathAndName(t *testing.T) {
	e := newEnv(t)
	for _, k := range []string{"apps/a/db", "apps/a/cache", "apps/b/db", "apps/b/deep/er/db", "other/db", "top"} {
		e.vault.PutKV(t, "secret", 2, k, map[string]any{"name": k, "pw": e.canary()})
	}
	// The latest version of a deleted entry is skipped.
	e.vault.PutKV(t, "secret", 2, "apps/deleted-db", map[string]any{"name": "x"})
	e.vault.Delete(t, "secret/data/apps/deleted-db")
	c := e.client(e.spec(e.rootAuth()))
	ctx := context.Background()

	tests := []struct {
		name string
		find provider.Find
		want []string
	}{
		{"everything", provider.Find{}, []string{"apps/a/cache", "apps/a/db", "apps/b/db", "apps/b/deep/er/db", "other/db", "top"}},
		{"name regexp over the whole path", provider.Find{Name: "db$"}, []string{"apps/a/db", "apps/b/db", "apps/b/deep/er/db", "other/db"}},
		{"below a path", provider.Find{Path: "apps/b"}, []string{"apps/b/db", "apps/b/deep/er/db"}},
		{"path including the mount", provider.Find{Path: "secret/apps/a/"}, []string{"apps/a/cache", "apps/a/db"}},
		{"path and name", provider.Find{Path: "apps", Name: "^apps/a/"}, []string{"apps/a/cache", "apps/a/db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fetch.FindIn(ctx, c, tt.find)
			if err != nil {
				e.noLeak(err)
				t.Fatal(err)
			}
			if keys := sortedKeys(got); !slices.Equal(keys, tt.want) {
				t.Fatalf("found %q, want %q", keys, tt.want)
			}
			for k, v := range got {
				var m map[string]string
				if err := json.Unmarshal(v, &m); err != nil || m["name"] != k {
					t.Errorf("value of %s is not its entry: %v", k, err)
				}
			}
		})
	}
	_, err := fetch.FindIn(ctx, c, provider.Find{Path: "nothing/here"})
	e.wantErr(err, provider.ErrNotFound)
}

func TestFindsByTagsOnCustomMetadata(t *testing.T) {
	e := newEnv(t)
	for k, md := range map[string]map[string]any{
		"t/one":   {"team": "blue", "env": "prod"},
		"t/two":   {"team": "blue", "env": "dev"},
		"t/three": {"team": "red"},
		"t/four":  nil,
	} {
		e.vault.PutKV(t, "secret", 2, k, map[string]any{"k": k})
		if md != nil {
			e.vault.Write(t, "secret/metadata/"+k, map[string]any{"custom_metadata": md})
		}
	}
	c := e.client(e.spec(e.rootAuth()))
	got, err := fetch.FindIn(context.Background(), c, provider.Find{Path: "t", Tags: map[string]string{"team": "blue"}})
	if err != nil {
		t.Fatal(err)
	}
	if keys := sortedKeys(got); !slices.Equal(keys, []string{"t/one", "t/two"}) {
		t.Errorf("team=blue found %q", keys)
	}
	got, err = fetch.FindIn(context.Background(), c, provider.Find{Tags: map[string]string{"team": "blue", "env": "prod"}, Name: "^t/"})
	if err != nil {
		t.Fatal(err)
	}
	if keys := sortedKeys(got); !slices.Equal(keys, []string{"t/one"}) {
		t.Errorf("team=blue,env=prod found %q", keys)
	}
}

func TestFindOnKVv1(t *testing.T) {
	e := newEnv(t)
	e.vault.EnableKV(t, "kv1", 1)
	for _, k := range []string{"a/x", "a/y/z", "b"} {
		e.vault.PutKV(t, "kv1", 1, k, map[string]any{"k": k})
	}
	spec := e.spec(e.rootAuth())
	spec.Path, spec.Version = ptr("kv1"), esv1.VaultKVStoreV1
	c := e.client(spec)
	got, err := fetch.FindIn(context.Background(), c, provider.Find{Path: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if keys := sortedKeys(got); !slices.Equal(keys, []string{"a/x", "a/y/z"}) {
		t.Errorf("found %q", keys)
	}
	_, err = fetch.FindIn(context.Background(), c, provider.Find{Tags: map[string]string{"a": "b"}})
	e.wantErr(err, provider.ErrNotSupported)
}

func TestValidateChecksTheMount(t *testing.T) {
	e := newEnv(t)
	auth := e.rootAuth()
	if err := e.client(e.spec(auth)).Validate(context.Background()); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	wrong := e.spec(auth)
	wrong.Version = esv1.VaultKVStoreV1
	err := e.client(wrong).Validate(context.Background())
	e.wantErr(err, provider.ErrInvalidConfig)

	e.secret("bad-token", map[string]string{"token": "hvs.not-a-real-token"})
	bad := e.spec(&esv1.VaultAuth{TokenSecretRef: &esv1.SecretKeySelector{Name: "bad-token", Key: "token"}})
	err = e.client(bad).Validate(context.Background())
	e.wantErr(err, provider.ErrUnauthenticated)
}

func TestStaticTokenIsReadAgainWhenRefused(t *testing.T) {
	e := newEnv(t)
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": "x"})
	e.vault.PutPolicy(t, "reader", readerPolicy)
	first := e.vault.Token(t, "reader")
	e.secrets = append(e.secrets, first)
	c := e.client(e.spec(e.tokenAuth("rotating-token", first)))
	e.get(c, "app")

	// The token is revoked: reads fail as unauthenticated until the Secret
	// holds a new one.
	revokeToken(t, e, first)
	_, err := c.GetSecret(context.Background(), provider.Ref{Key: "app"})
	e.wantErr(err, provider.ErrUnauthenticated)

	second := e.vault.Token(t, "reader")
	e.updateSecret("rotating-token", map[string]string{"token": second})
	e.get(c, "app")
}

func TestUnreachableServer(t *testing.T) {
	e := newEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	spec := e.spec(e.rootAuth())
	spec.Server = "http://" + addr
	c := e.client(spec)
	_, err = c.GetSecret(context.Background(), provider.Ref{Key: "app"})
	e.wantErr(err, provider.ErrUnreachable)
}

func TestRateLimitIsThrottled(t *testing.T) {
	e := newEnv(t)
	e.vault.EnableKV(t, "limited", 2)
	e.vault.PutKV(t, "limited", 2, "app", map[string]any{"v": e.canary()})
	e.vault.Write(t, "sys/quotas/config", map[string]any{"enable_rate_limit_response_headers": true})
	e.vault.Write(t, "sys/quotas/rate-limit/one-per-hour", map[string]any{"path": "limited/", "rate": 1, "interval": "1h"})
	spec := e.spec(e.rootAuth())
	spec.Path = ptr("limited")
	c := e.client(spec)
	ctx := context.Background()

	var err error
	for range 3 {
		if _, err = c.GetSecret(ctx, provider.Ref{Key: "app"}); err != nil {
			break
		}
	}
	var te *provider.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("want a ThrottledError, got %v", err)
	}
	e.noLeak(err)
	if te.RetryAfter <= 0 {
		t.Errorf("RetryAfter = %s, want Vault's Retry-After", te.RetryAfter)
	}
}

// recordingProxy is a reverse proxy in front of the real server that
// records the headers of every request. The dev server has no namespaces
// (an Enterprise feature) and does not allow forwarding by header, so the
// proxy drops those two headers after recording them.
type recordingProxy struct {
	URL  string
	mu   sync.Mutex
	seen []http.Header
}

func newRecordingProxy(t *testing.T, vaultAddr string) *recordingProxy {
	t.Helper()
	target, err := url.Parse(vaultAddr)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.Header.Clone())
		p.mu.Unlock()
		r.Header.Del("X-Vault-Namespace")
		r.Header.Del("X-Vault-Inconsistent")
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *recordingProxy) last(t *testing.T) http.Header {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.seen) == 0 {
		t.Fatal("no request reached the proxy")
	}
	return p.seen[len(p.seen)-1]
}

func TestSendsNamespaceAndHeaders(t *testing.T) {
	e := newEnv(t)
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": "x"})
	proxy := newRecordingProxy(t, e.vault.Addr)
	spec := e.spec(e.rootAuth())
	spec.Server = proxy.URL
	spec.Namespace = ptr("team-a")
	spec.Headers = map[string]string{"X-Request-Source": "keyferry-test"}
	spec.ReadYourWrites, spec.ForwardInconsistent = true, true
	e.get(e.client(spec), "app")

	h := proxy.last(t)
	for k, want := range map[string]string{
		"X-Vault-Namespace":    "team-a",
		"X-Request-Source":     "keyferry-test",
		"X-Vault-Inconsistent": "forward-active-node",
		"X-Vault-Request":      "true",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if h.Get("X-Vault-Token") != e.vault.RootToken {
		t.Error("the token from tokenSecretRef was not sent")
	}
}

// The operator's own VAULT_* variables never reach a store's requests.
func TestIgnoresTheProcessVaultEnvironment(t *testing.T) {
	e := newEnv(t)
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": e.canary()})
	t.Setenv("VAULT_TOKEN", e.vault.RootToken)
	t.Setenv("VAULT_NAMESPACE", "from-env")
	t.Setenv("VAULT_HEADERS", `{"X-From-Env":"yes"}`)
	proxy := newRecordingProxy(t, e.vault.Addr)
	spec := e.spec(nil)
	spec.Server = proxy.URL
	_, err := e.client(spec).GetSecret(context.Background(), provider.Ref{Key: "app"})
	e.wantErr(err, provider.ErrForbidden)
	h := proxy.last(t)
	for _, k := range []string{"X-Vault-Token", "X-Vault-Namespace", "X-From-Env"} {
		if h.Get(k) != "" {
			t.Errorf("header %s was sent from the environment", k)
		}
	}
}

const readerPolicy = `
path "secret/data/*" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["read", "list"] }
`

func revokeToken(t *testing.T, e *env, token string) {
	t.Helper()
	e.vault.Write(t, "auth/token/revoke", map[string]any{"token": token})
}

func sortedKeys(m map[string][]byte) []string { return slices.Sorted(maps.Keys(m)) }

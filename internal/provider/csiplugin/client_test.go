package csiplugin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/csiplugin"
	plugin "github.com/keyferry/keyferry/internal/testing/testserver/csiplugin"
)

const canary = "kf-canary-csi-5e21"

// tokens is a token requester that records what it minted.
type tokens struct {
	mu    sync.Mutex
	asked []string
}

func (tk *tokens) ServiceAccountToken(_ context.Context, ns, name string, audiences []string, _ time.Duration) (string, time.Time, error) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.asked = append(tk.asked, ns+"/"+name+":"+strings.Join(audiences, ","))
	return "token-for-" + strings.Join(audiences, ","), time.Now().Add(10 * time.Minute), nil
}

type fixture struct {
	dir    string
	plugin *plugin.Server
	client provider.Client
	tokens *tokens
}

func newFixture(t *testing.T, opts csiplugin.Options, params map[string]string) *fixture {
	t.Helper()
	dir := plugin.SocketDir(t)
	f := &fixture{dir: dir, plugin: plugin.Start(t, dir, "acme"), tokens: &tokens{}}
	opts.Dir = dir
	p := csiplugin.New(opts)
	st := provider.Store{Kind: provider.ClassKind, Namespace: "team-a", Name: "acme-spc", Class: &provider.Class{Provider: "acme", Parameters: params, ServiceAccount: "reader"}}
	if err := p.ValidateSpec(st); err != nil {
		t.Fatal(err)
	}
	c, err := p.NewClient(context.Background(), provider.Options{Store: st, Namespace: "team-a", Tokens: f.tokens})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	f.client = c
	return f
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func refs(keys ...string) []provider.Ref {
	out := make([]provider.Ref, len(keys))
	for i, k := range keys {
		out[i] = provider.Ref{Key: k}
	}
	return out
}

func getAll(t *testing.T, c provider.Client, keys ...string) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	t.Helper()
	return c.(provider.BatchGetter).GetSecrets(ctxFor(t), refs(keys...))
}

// assertNoCanary checks that no error quotes a file's content or a token.
func assertNoCanary(t *testing.T, errs map[provider.Ref]error) {
	t.Helper()
	for r, err := range errs {
		if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "token-for-") {
			t.Fatalf("the error of %s quotes a value: %v", r, err)
		}
	}
}

func TestOneMountServesEveryFile(t *testing.T) {
	f := newFixture(t, csiplugin.Options{Audiences: []string{"api://acme"}, PodName: "keyferry-0", PodUID: "uid-0"}, map[string]string{"objects": "db"})
	f.plugin.SetFile("db/user", []byte("app"), "1")
	f.plugin.SetFile("db/password", []byte("pw-"+canary), "3")

	vals, errs := getAll(t, f.client, "db/user", "db/password", "missing")
	if len(vals) != 2 || string(vals[provider.Ref{Key: "db/user"}].Data) != "app" || string(vals[provider.Ref{Key: "db/password"}].Data) != "pw-"+canary {
		t.Fatalf("values for %d refs", len(vals))
	}
	if v := vals[provider.Ref{Key: "db/password"}].Version; v != "3" {
		t.Fatalf("version %q", v)
	}
	if err := errs[provider.Ref{Key: "missing"}]; !errors.Is(err, provider.ErrNotFound) || !strings.Contains(err.Error(), `"db/password", "db/user"`) {
		t.Fatalf("missing file: %v", err)
	}
	assertNoCanary(t, errs)
	if n := f.plugin.Mounts(); n != 1 {
		t.Fatalf("%d Mounts for one fetch", n)
	}

	req := f.plugin.Requests()[0]
	want := map[string]string{
		"objects":                                "db",
		"csi.storage.k8s.io/pod.name":            "keyferry-0",
		"csi.storage.k8s.io/pod.uid":             "uid-0",
		"csi.storage.k8s.io/pod.namespace":       "team-a",
		"csi.storage.k8s.io/serviceAccount.name": "reader",
	}
	for k, v := range want {
		if req.Attributes[k] != v {
			t.Fatalf("attribute %s = %q, want %q", k, req.Attributes[k], v)
		}
	}
	var toks map[string]map[string]string
	if err := json.Unmarshal([]byte(req.Attributes["csi.storage.k8s.io/serviceAccount.tokens"]), &toks); err != nil || toks["api://acme"]["token"] != "token-for-api://acme" {
		t.Fatalf("tokens attribute %v (%v)", toks, err)
	}
	if got := f.tokens.asked; len(got) != 1 || got[0] != "team-a/reader:api://acme" {
		t.Fatalf("tokens requested: %v", got)
	}
	if req.TargetPath != csiplugin.TargetPath || req.Secrets != "{}" || req.Permission != "420" || len(req.Versions) != 0 {
		t.Fatalf("request %+v", req)
	}

	t.Run("the next Mount sends the versions it got", func(t *testing.T) {
		f.plugin.SetFile("db/password", []byte("pw2-"+canary), "4")
		vals, _ := getAll(t, f.client, "db/password")
		if got := vals[provider.Ref{Key: "db/password"}]; string(got.Data) != "pw2-"+canary || got.Version != "4" {
			t.Fatalf("value version %q", got.Version)
		}
		reqs := f.plugin.Requests()
		if v := reqs[len(reqs)-1].Versions; v["db/password"] != "3" || v["db/user"] != "1" {
			t.Fatalf("current_object_version %v", v)
		}
	})
}

func TestCallsWhileAMountIsInFlightShareIt(t *testing.T) {
	f := newFixture(t, csiplugin.Options{}, nil)
	f.plugin.SetFile("a", []byte("1"), "1")
	f.plugin.SetDelay(time.Second)
	var wg sync.WaitGroup
	results := make([]map[provider.Ref]error, 2)
	call := func(i int, key string) {
		defer wg.Done()
		_, results[i] = getAll(t, f.client, key)
	}
	wg.Add(1)
	go call(0, "a")
	deadline := time.Now().Add(10 * time.Second)
	for f.plugin.Mounts() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the plugin was never called")
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Add(1)
	go call(1, "a")
	wg.Wait()
	for i, errs := range results {
		if len(errs) != 0 {
			t.Fatalf("call %d: %v", i, errs)
		}
	}
	if n := f.plugin.Mounts(); n != 1 {
		t.Fatalf("%d Mounts for two calls in flight together", n)
	}
}

func TestPluginFailures(t *testing.T) {
	tests := []struct {
		name    string
		opts    csiplugin.Options
		break_  func(f *fixture)
		wantErr error
		errHas  string
	}{
		{"an error code in the response", csiplugin.Options{}, func(f *fixture) { f.plugin.SetErrorCode("AuthenticationFailed") }, nil, `error code "AuthenticationFailed"`},
		{"permission denied", csiplugin.Options{}, func(f *fixture) { f.plugin.SetStatus(codes.PermissionDenied, "no access to db") }, provider.ErrForbidden, "no access to db"},
		{"unauthenticated", csiplugin.Options{}, func(f *fixture) { f.plugin.SetStatus(codes.Unauthenticated, "bad token") }, provider.ErrUnauthenticated, "bad token"},
		{"bad parameters", csiplugin.Options{}, func(f *fixture) { f.plugin.SetStatus(codes.InvalidArgument, "objects is required") }, provider.ErrInvalidConfig, "refused the SecretProviderClass's parameters: objects is required"},
		{"an internal error", csiplugin.Options{}, func(f *fixture) { f.plugin.SetStatus(codes.Internal, "backend 500") }, nil, "failed the Mount (Internal): backend 500"},
		{"a throttled plugin", csiplugin.Options{}, func(f *fixture) { f.plugin.SetStatus(codes.ResourceExhausted, "rate limited") }, nil, "rate limited"},
		{"a slow plugin times out", csiplugin.Options{Timeout: 200 * time.Millisecond}, func(f *fixture) { f.plugin.SetDelay(10 * time.Second) }, provider.ErrUnreachable, "did not answer the Mount within 200ms"},
		{"a dead plugin", csiplugin.Options{}, func(f *fixture) { f.plugin.Stop() }, provider.ErrUnreachable, "is not answering"},
		{"no plugin socket", csiplugin.Options{}, func(f *fixture) { f.plugin.RemoveSocket() }, provider.ErrUnreachable, "no CSI provider plugin socket"},
		{"a plugin that writes files itself", csiplugin.Options{}, func(f *fixture) { f.plugin.SetWritesFiles(f.dir) }, provider.ErrBadResponse, "returned no files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts, nil)
			f.plugin.SetFile("a", []byte("v-"+canary), "1")
			if _, errs := getAll(t, f.client, "a"); len(errs) != 0 {
				t.Fatalf("before: %v", errs)
			}
			tt.break_(f)
			start := time.Now()
			_, errs := getAll(t, f.client, "a", "b")
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("the failing call took %s", took)
			}
			for _, r := range refs("a", "b") {
				err := errs[r]
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("%s: error %v, want one containing %q", r, err, tt.errHas)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("%s: error %v does not wrap %v", r, err, tt.wantErr)
				}
			}
			assertNoCanary(t, errs)
		})
	}
}

func TestAPluginThatRestartsIsUsedAgain(t *testing.T) {
	f := newFixture(t, csiplugin.Options{}, nil)
	f.plugin.SetFile("a", []byte("1"), "1")
	f.plugin.Stop()
	if _, errs := getAll(t, f.client, "a"); !errors.Is(errs[provider.Ref{Key: "a"}], provider.ErrUnreachable) {
		t.Fatalf("dead plugin: %v", errs)
	}
	f.plugin.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, errs := getAll(t, f.client, "a")
		if len(errs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted plugin is not used: %v", errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestValidateCallsVersion(t *testing.T) {
	f := newFixture(t, csiplugin.Options{}, nil)
	if err := f.client.Validate(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	f.plugin.RemoveSocket()
	if err := f.client.Validate(ctxFor(t)); !errors.Is(err, provider.ErrUnreachable) {
		t.Fatalf("Validate without a plugin: %v", err)
	}
}

// A kubernetes.io/tls SecretSync reads the certificate and the key of one
// file: both parts come from one Mount.
func TestTLSPartsOfAFile(t *testing.T) {
	f := newFixture(t, csiplugin.Options{}, nil)
	f.plugin.SetFile("cert", selfSigned(t), "1")
	vals, errs := f.client.(provider.BatchGetter).GetSecrets(ctxFor(t), []provider.Ref{{Key: "cert", Version: provider.ClassPartCert}, {Key: "cert", Version: provider.ClassPartKey}})
	if len(errs) != 0 || len(vals) != 2 {
		t.Fatalf("parts: %v", errs)
	}
	if c := vals[provider.Ref{Key: "cert", Version: provider.ClassPartCert}].Data; !strings.HasPrefix(string(c), "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("tls.crt is not a certificate")
	}
	if k := vals[provider.Ref{Key: "cert", Version: provider.ClassPartKey}].Data; !strings.Contains(string(k), "PRIVATE KEY-----") {
		t.Fatalf("tls.key is not a private key")
	}
	if n := f.plugin.Mounts(); n != 1 {
		t.Fatalf("%d Mounts", n)
	}
}

// selfSigned returns a PEM private key and certificate.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "acme"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
}

// apiTokens is a token requester whose cluster's API server accepts the
// audience "https://kubernetes.default.svc".
type apiTokens struct{ tokens }

func (*apiTokens) APIAudiences(context.Context, string, string) ([]string, error) {
	return []string{"https://kubernetes.default.svc"}, nil
}

// The tokens sent to a plugin follow keyferry's token rules (provider.Admit):
// a token the API server would accept is never minted for a SecretSync's
// plugin, and the plugin is not called.
func TestTokensFollowTheTokenRules(t *testing.T) {
	dir := plugin.SocketDir(t)
	acme := plugin.Start(t, dir, "acme")
	acme.SetFile("a", []byte("1"), "1")
	p := csiplugin.New(csiplugin.Options{Dir: dir, Audiences: []string{"https://kubernetes.default.svc"}})
	st := provider.Store{Kind: provider.ClassKind, Namespace: "team-a", Name: "acme-spc", Class: &provider.Class{Provider: "acme", ServiceAccount: "reader"}}
	tk := &apiTokens{}
	opts, err := provider.Admit(p, provider.Options{Store: st, Namespace: "team-a", Tokens: tk})
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.NewClient(ctxFor(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	_, err = c.GetSecret(ctxFor(t), provider.Ref{Key: "a"})
	if !errors.Is(err, provider.ErrOperatorIdentity) {
		t.Fatalf("error %v, want one wrapping ErrOperatorIdentity", err)
	}
	if len(tk.asked) != 0 || acme.Mounts() != 0 {
		t.Fatalf("tokens minted %v, Mounts %d", tk.asked, acme.Mounts())
	}
}

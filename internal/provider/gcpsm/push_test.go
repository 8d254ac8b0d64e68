package gcpsm

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testserver/gcpsmemulator"
)

// The emulator (bin/gcp-sm-emulator) serves every call a push makes:
// CreateSecret (keeping labels and replication), GetSecret, AddSecretVersion,
// AccessSecretVersion of "latest" and DeleteSecret. It returns no etag and
// ignores the one sent, ignores a payload's CRC32C, and does not implement
// UpdateSecret, ListSecretVersions, DisableSecretVersion or
// DestroySecretVersion, so a label removed from a secret, a disabled latest
// version and the etag condition of DeleteSecret are not tested here.

// pushEnv is one emulator and a pushing client of project p1.
type pushEnv struct {
	t   *testing.T
	srv *gcpsmemulator.Server
	c   *Client
}

func newPushEnv(t *testing.T) *pushEnv {
	t.Helper()
	srv := gcpsmemulator.Start(t)
	return &pushEnv{t: t, srv: srv, c: pushClient(t, srv, &esv1.GCPSMProvider{ProjectID: "p1"})}
}

func pushClient(t *testing.T, srv *gcpsmemulator.Server, g *esv1.GCPSMProvider) *Client {
	t.Helper()
	c, ok := newClient(t, g, srv.ClientOptions()...).(*Client)
	if !ok {
		t.Fatal("the gcpsm provider's client is not a *Client")
	}
	return c
}

// push inspects ref and pushes v, failing the test on error.
func (e *pushEnv) push(ref provider.PushRef, v provider.PushValue) bool {
	e.t.Helper()
	ctx := testContext(e.t)
	st, err := e.c.Inspect(ctx, ref)
	if err != nil {
		assertNoCanary(e.t, err)
		e.t.Fatalf("Inspect(%s): %v", ref, err)
	}
	wrote, err := e.c.Push(ctx, ref, v, st)
	if err != nil {
		assertNoCanary(e.t, err)
		e.t.Fatalf("Push(%s): %v", ref, err)
	}
	return wrote
}

// inspect inspects ref, failing the test on error.
func (e *pushEnv) inspect(ref provider.PushRef) provider.RemoteState {
	e.t.Helper()
	st, err := e.c.Inspect(testContext(e.t), ref)
	if err != nil {
		assertNoCanary(e.t, err)
		e.t.Fatalf("Inspect(%s): %v", ref, err)
	}
	return st
}

// secret reads the metadata of secret id of p1 as the emulator has it; nil
// when it does not exist.
func (e *pushEnv) secret(id string) *secretmanagerpb.Secret {
	e.t.Helper()
	s, err := e.srv.Client.GetSecret(context.Background(), &secretmanagerpb.GetSecretRequest{Name: "projects/p1/secrets/" + id})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		e.t.Fatalf("reading secret %s: %v", id, err)
	}
	return s
}

// latest reads the latest version of secret id of p1: its payload and ID.
func (e *pushEnv) latest(id string) (string, string) {
	e.t.Helper()
	return latestOf(e.t, e.srv, "projects/p1/secrets/"+id)
}

func latestOf(t *testing.T, srv *gcpsmemulator.Server, name string) (string, string) {
	t.Helper()
	v, err := srv.Client.AccessSecretVersion(context.Background(), &secretmanagerpb.AccessSecretVersionRequest{Name: name + "/versions/latest"})
	if err != nil {
		t.Fatalf("reading the latest version of %s: %v", name, err)
	}
	return string(v.GetPayload().GetData()), versionID(v.GetName())
}

// fieldsOf parses a version holding a JSON object.
func fieldsOf(t *testing.T, payload string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		t.Fatalf("the version is not a JSON object: %v", err)
	}
	return m
}

// wantErr fails unless err wraps want and leaves the canary out.
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	assertNoCanary(t, err)
	if !errors.Is(err, want) {
		t.Fatalf("error = %v; want %v", err, want)
	}
}

func TestPushCreatesALabelledSecretAndAddsNoVersionWhenUnchanged(t *testing.T) {
	e := newPushEnv(t)
	ref := provider.PushRef{RemoteKey: "db-password"}
	v1, v2 := canary+"-1", canary+"-2"

	if st := e.inspect(ref); st.Exists || st.Present(ref) {
		t.Fatalf("Inspect of a missing secret = %+v", st)
	}
	if !e.push(ref, provider.PushValue{SecretKey: "password", Value: []byte(v1)}) {
		t.Fatal("the first push wrote nothing")
	}
	s := e.secret("db-password")
	if s == nil || s.GetLabels()[provider.ManagedByKey] != provider.ManagedByValue {
		t.Fatalf("secret = %v; want it created with ESO's label managed-by: external-secrets", s)
	}
	if s.GetReplication().GetAutomatic() == nil {
		t.Fatalf("replication = %v; want automatic (ESO's default)", s.GetReplication())
	}
	// Without a property the value is stored as it is (not as JSON).
	if got, ver := e.latest("db-password"); got != v1 || ver != "1" {
		t.Fatalf("latest = version %s; want the pushed value as version 1", ver)
	}
	st := e.inspect(ref)
	if !st.Exists || !st.Managed || st.Version != "1" {
		t.Fatalf("Inspect = %+v; want a managed secret at version 1", st)
	}

	if e.push(ref, provider.PushValue{SecretKey: "password", Value: []byte(v1)}) {
		t.Fatal("pushing the same value wrote")
	}
	if _, ver := e.latest("db-password"); ver != "1" {
		t.Fatalf("latest version = %s; want no new version for an unchanged value", ver)
	}
	if !e.push(ref, provider.PushValue{SecretKey: "password", Value: []byte(v2)}) {
		t.Fatal("pushing a new value wrote nothing")
	}
	if got, ver := e.latest("db-password"); got != v2 || ver != "2" {
		t.Fatalf("latest = version %s; want the new value as version 2", ver)
	}
}

func TestPushPropertyGoesIntoTheLatestJSONObject(t *testing.T) {
	e := newPushEnv(t)
	whole := provider.PushRef{RemoteKey: "app"}
	e.push(whole, provider.PushValue{SecretKey: "config", Value: []byte(`{"user":"app","port":5432,"tls":{"on":true}}`)})

	pw := provider.PushRef{RemoteKey: "app", Property: "password"}
	if st := e.inspect(pw); !st.Exists || !st.Managed || st.PropertyExists || st.Present(pw) {
		t.Fatalf("Inspect = %+v; want an existing managed secret without the property", st)
	}
	if !e.push(pw, provider.PushValue{SecretKey: "password", Value: []byte(canary)}) {
		t.Fatal("pushing a property wrote nothing")
	}
	got, ver := e.latest("app")
	m := fieldsOf(t, got)
	if m["password"] != canary || m["user"] != "app" || m["port"] != float64(5432) || ver != "2" {
		t.Fatalf("latest version %s has fields %v; want password added, user, port and tls kept", ver, keysOf(m))
	}
	if tls, _ := m["tls"].(map[string]any); tls["on"] != true {
		t.Fatal("the nested object tls was not kept")
	}
	if st := e.inspect(pw); !st.PropertyExists || st.Version != "2" {
		t.Fatalf("Inspect = %+v; want the property at version 2", st)
	}

	// The same value, as a string or as the JSON text of a number, is what
	// an ExternalSecret reads already: no new version.
	if e.push(pw, provider.PushValue{SecretKey: "password", Value: []byte(canary)}) {
		t.Fatal("pushing the same property value wrote")
	}
	if e.push(provider.PushRef{RemoteKey: "app", Property: "port"}, provider.PushValue{SecretKey: "port", Value: []byte("5432")}) {
		t.Fatal("pushing the value port already holds wrote")
	}
	if _, ver := e.latest("app"); ver != "2" {
		t.Fatalf("latest version = %s; want 2", ver)
	}

	// A property into a missing secret creates a one-field object.
	e.push(provider.PushRef{RemoteKey: "fresh", Property: "token"}, provider.PushValue{SecretKey: "t", Value: []byte(`<&>` + canary)})
	if got, _ := e.latest("fresh"); got != `{"token":"<&>`+canary+`"}` {
		t.Fatal("a property pushed to a missing secret is not a one-field JSON object without HTML escaping")
	}
}

func TestPushNeverWritesNorDeletesASecretWithoutTheLabel(t *testing.T) {
	e := newPushEnv(t)
	theirs := `{"password":"` + canary + `-theirs"}`
	for id, labels := range map[string]map[string]string{
		"foreign":      nil,
		"someone-else": {provider.ManagedByKey: "terraform"},
	} {
		e.srv.AddVersion(t, e.srv.CreateSecret(t, "projects/p1", id, labels), []byte(theirs))
		for _, ref := range []provider.PushRef{{RemoteKey: id}, {RemoteKey: id, Property: "password"}} {
			st := e.inspect(ref)
			if !st.Exists || st.Managed {
				t.Fatalf("Inspect(%s) = %+v; want an existing secret that is not managed", ref, st)
			}
			if ref.Property != "" && !st.PropertyExists {
				t.Fatalf("Inspect(%s) = %+v; want the property seen (for IfNotExists)", ref, st)
			}
			_, err := e.c.Push(testContext(t), ref, provider.PushValue{SecretKey: "k", Value: []byte(canary + "-ours")}, st)
			wantErr(t, err, provider.ErrNotManaged)
			// A state that claims the secret is missing or managed does not
			// get past the label either.
			for _, lie := range []provider.RemoteState{{}, {Exists: true, Managed: true, Version: "1"}} {
				_, err := e.c.Push(testContext(t), ref, provider.PushValue{SecretKey: "k", Value: []byte(canary + "-ours")}, lie)
				if !errors.Is(err, provider.ErrConflict) && !errors.Is(err, provider.ErrNotManaged) {
					t.Fatalf("Push(%s) with state %+v: %v; want a conflict or not managed", ref, lie, err)
				}
				assertNoCanary(t, err)
			}
			if err := e.c.Delete(testContext(t), ref, provider.RemoteState{Exists: true, Managed: true}); err != nil {
				t.Fatalf("Delete(%s): %v", ref, err)
			}
		}
		s := e.secret(id)
		if s == nil {
			t.Fatalf("secret %s was deleted", id)
		}
		if got, ver := e.latest(id); got != theirs || ver != "1" {
			t.Fatalf("secret %s is at version %s; want its one version untouched", id, ver)
		}
		if s.GetLabels()[provider.ManagedByKey] == provider.ManagedByValue {
			t.Fatalf("secret %s was labelled", id)
		}
	}
}

func TestPushIsACheckAndSet(t *testing.T) {
	e := newPushEnv(t)
	ctx := testContext(t)
	ref := provider.PushRef{RemoteKey: "shared", Property: "a"}
	e.push(ref, provider.PushValue{SecretKey: "a", Value: []byte(canary + "-a")})
	st := e.inspect(ref)

	// Someone else adds a version between keyferry's Inspect and its Push.
	other := `{"a":"other"}`
	e.srv.AddVersion(t, "projects/p1/secrets/shared", []byte(other))
	_, err := e.c.Push(ctx, ref, provider.PushValue{SecretKey: "a", Value: []byte(canary + "-b")}, st)
	wantErr(t, err, provider.ErrConflict)
	if got, ver := e.latest("shared"); got != other || ver != "2" {
		t.Fatalf("latest version %s; want the other writer's version 2 kept", ver)
	}

	// Someone else creates the secret after keyferry saw it missing:
	// CreateSecret fails, nothing is added to their secret.
	missing := provider.PushRef{RemoteKey: "raced"}
	st = e.inspect(missing)
	e.srv.CreateSecret(t, "projects/p1", "raced", nil)
	_, err = e.c.Push(ctx, missing, provider.PushValue{SecretKey: "k", Value: []byte(canary)}, st)
	wantErr(t, err, provider.ErrConflict)
	if _, err := e.srv.Client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: "projects/p1/secrets/raced/versions/latest"}); status.Code(err) != codes.NotFound {
		t.Fatalf("the raced secret got a version: %v", err)
	}
	if s := e.secret("raced"); s.GetLabels()[provider.ManagedByKey] != "" {
		t.Fatal("the raced secret was labelled")
	}

	// The secret is deleted between Inspect and Push.
	st = e.inspect(ref)
	if err := e.srv.Client.DeleteSecret(ctx, &secretmanagerpb.DeleteSecretRequest{Name: "projects/p1/secrets/shared"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.Push(ctx, ref, provider.PushValue{SecretKey: "a", Value: []byte(canary)}, st)
	wantErr(t, err, provider.ErrConflict)
	if e.secret("shared") != nil {
		t.Fatal("a push decided on a deleted secret recreated it")
	}
}

func TestPushWholeSecretAndDelete(t *testing.T) {
	e := newPushEnv(t)
	ctx := testContext(t)
	a, b := canary+"-a", canary+"-b"
	whole := provider.PushRef{RemoteKey: "whole"}
	e.push(whole, provider.PushValue{Secret: map[string][]byte{"b": []byte(b), "a": []byte(a)}})
	if got, _ := e.latest("whole"); got != `{"a":"`+a+`","b":"`+b+`"}` {
		t.Fatal("the whole Secret is not pushed as a JSON object of its keys, in key order")
	}
	if e.push(whole, provider.PushValue{Secret: map[string][]byte{"a": []byte(a), "b": []byte(b)}}) {
		t.Fatal("pushing the same Secret again wrote")
	}

	// Deleting one property adds a version without it; the last one
	// deletes the secret.
	if err := e.c.Delete(ctx, provider.PushRef{RemoteKey: "whole", Property: "a"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if got, ver := e.latest("whole"); got != `{"b":"`+b+`"}` || ver != "2" {
		t.Fatalf("latest version %s; want version 2 holding only b", ver)
	}
	// A property that is not there: nothing happens.
	if err := e.c.Delete(ctx, provider.PushRef{RemoteKey: "whole", Property: "a"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if _, ver := e.latest("whole"); ver != "2" {
		t.Fatalf("latest version = %s; want 2", ver)
	}
	if err := e.c.Delete(ctx, provider.PushRef{RemoteKey: "whole", Property: "b"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if e.secret("whole") != nil {
		t.Fatal("deleting the last property left the secret")
	}

	// Without a property the secret goes; a missing one is no error.
	e.push(provider.PushRef{RemoteKey: "plain"}, provider.PushValue{SecretKey: "k", Value: []byte(canary)})
	for range 2 {
		if err := e.c.Delete(ctx, provider.PushRef{RemoteKey: "plain"}, provider.RemoteState{}); err != nil {
			t.Fatal(err)
		}
	}
	if e.secret("plain") != nil {
		t.Fatal("Delete left the secret")
	}
}

func TestPushToARegionalStoreCreatesARegionalSecret(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	c := pushClient(t, srv, &esv1.GCPSMProvider{ProjectID: "p1", Location: "europe-west1"})
	ctx := testContext(t)
	ref := provider.PushRef{RemoteKey: "token", Property: "value"}
	st, err := c.Inspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, ref, provider.PushValue{SecretKey: "v", Value: []byte(canary)}, st); err != nil {
		t.Fatal(err)
	}
	name := "projects/p1/locations/europe-west1/secrets/token"
	s, err := srv.Client.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: name})
	if err != nil || s.GetLabels()[provider.ManagedByKey] != provider.ManagedByValue {
		t.Fatalf("regional secret = %v, %v; want it created with ESO's label", s, err)
	}
	if got, _ := latestOf(t, srv, name); got != `{"value":"`+canary+`"}` {
		t.Fatal("the regional secret does not hold the pushed property")
	}
	if _, err := srv.Client.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: "projects/p1/secrets/token"}); status.Code(err) != codes.NotFound {
		t.Fatalf("a global secret was created too: %v", err)
	}
}

// Every refusal names the key (and property), never the value.
func TestPushErrorsNameKeysNeverValues(t *testing.T) {
	e := newPushEnv(t)
	ctx := testContext(t)
	// A managed secret whose latest version is not a JSON object: a
	// property cannot go into it.
	plain := provider.PushRef{RemoteKey: "plain"}
	e.push(plain, provider.PushValue{SecretKey: "k", Value: []byte("not json " + canary)})
	prop := provider.PushRef{RemoteKey: "plain", Property: "p"}
	st := e.inspect(prop)
	if st.PropertyExists {
		t.Fatalf("Inspect = %+v; a value that is not an object has no property", st)
	}
	_, err := e.c.Push(ctx, prop, provider.PushValue{SecretKey: "k", Value: []byte(canary)}, st)
	wantErr(t, err, provider.ErrInvalidPush)
	if !strings.Contains(err.Error(), `"plain"`) || !strings.Contains(err.Error(), `"p"`) {
		t.Fatalf("error %q does not name the key and the property", err)
	}
	if err := e.c.Delete(ctx, prop, provider.RemoteState{}); err != nil {
		t.Fatalf("Delete of a property of a non-object: %v", err)
	}
	if got, ver := e.latest("plain"); got != "not json "+canary || ver != "1" {
		t.Fatal("the secret changed")
	}

	// A value that is not text cannot be a JSON string.
	_, err = e.c.Push(ctx, provider.PushRef{RemoteKey: "bin", Property: "p"}, provider.PushValue{SecretKey: "cert", Value: append([]byte(canary), 0xff, 0xfe)}, provider.RemoteState{})
	wantErr(t, err, provider.ErrInvalidPush)
	if !strings.Contains(err.Error(), `"cert"`) {
		t.Fatalf("error %q does not name the source key", err)
	}
	if e.secret("bin") != nil {
		t.Fatal("a refused push created the secret")
	}

	// A version larger than Secret Manager holds is refused before anything
	// is created.
	_, err = e.c.Push(ctx, provider.PushRef{RemoteKey: "big"}, provider.PushValue{SecretKey: "blob", Value: []byte(strings.Repeat(canary, 64<<10/len(canary)+1))}, provider.RemoteState{})
	wantErr(t, err, provider.ErrInvalidPush)
	if e.secret("big") != nil {
		t.Fatal("a push refused for its size created the secret")
	}

	// Keys and properties that are not what GCP or the read side take.
	for _, ref := range []provider.PushRef{
		{RemoteKey: "a/b"},
		{RemoteKey: ""},
		{RemoteKey: "x", Property: "nested.field"},
		{RemoteKey: "x", Property: "all*"},
	} {
		_, err := e.c.Inspect(ctx, ref)
		wantErr(t, err, provider.ErrInvalidPush)
		_, err = e.c.Push(ctx, ref, provider.PushValue{SecretKey: "k", Value: []byte(canary)}, provider.RemoteState{})
		wantErr(t, err, provider.ErrInvalidPush)
		wantErr(t, e.c.Delete(ctx, ref, provider.RemoteState{}), provider.ErrInvalidPush)
	}
}

// gRPC codes reach the engine as the read path's sentinels.
func TestPushToAnUnreachableStoreIsUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	c := newClient(t, &esv1.GCPSMProvider{ProjectID: "p1"},
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))).(*Client)
	ctx := testContext(t)
	ref := provider.PushRef{RemoteKey: "x", Property: "p"}
	_, err = c.Inspect(ctx, ref)
	wantErr(t, err, provider.ErrUnreachable)
	_, err = c.Push(ctx, ref, provider.PushValue{SecretKey: "k", Value: []byte(canary)}, provider.RemoteState{})
	wantErr(t, err, provider.ErrUnreachable)
	wantErr(t, c.Delete(ctx, ref, provider.RemoteState{}), provider.ErrUnreachable)
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// nextPayload merges a pushed value into whatever the latest version
// holds: it never panics, refuses only with ErrInvalidPush, and a merged
// version is a JSON object holding the property as an ExternalSecret reads
// it, every other field of the latest version kept as it was.
func FuzzPushPayload(f *testing.F) {
	f.Add([]byte(`{"user":"app","port":5432}`), "password", []byte("s3cret"), true)
	f.Add([]byte(`{"a":{"b":[1,2]},"c":null}`), "c", []byte("null"), true)
	f.Add([]byte(`not json`), "p", []byte("v"), true)
	f.Add([]byte(`["array"]`), "p", []byte("v"), true)
	f.Add([]byte(nil), "p", []byte("<&>\u2028"), false)
	f.Add([]byte(`{"p":"\u00e9"}`), "p", []byte("é"), true)
	f.Add([]byte(`{"p":1}`), "p", []byte{0xff}, true)
	f.Fuzz(func(t *testing.T, current []byte, property string, value []byte, found bool) {
		if property == "" {
			return
		}
		ref := provider.PushRef{RemoteKey: "k", Property: property}
		next, changed, err := nextPayload(ref, provider.PushValue{SecretKey: "s", Value: value}, current, found)
		if err != nil {
			if !errors.Is(err, provider.ErrInvalidPush) {
				t.Fatalf("error %v does not wrap ErrInvalidPush", err)
			}
			return
		}
		var before map[string]json.RawMessage
		if found {
			if err := json.Unmarshal(current, &before); err != nil {
				t.Fatalf("merged into a latest version that is not an object")
			}
		}
		if !changed {
			if !found || string(fieldValue(before[property])) != string(value) {
				t.Fatal("reported unchanged, but the property does not hold the value")
			}
			return
		}
		var after map[string]json.RawMessage
		if err := json.Unmarshal(next, &after); err != nil || after == nil {
			t.Fatalf("the merged version is not a JSON object: %v", err)
		}
		if got := fieldValue(after[property]); string(got) != string(value) {
			t.Fatalf("the property reads back as %q, want %q", got, value)
		}
		for k, raw := range before {
			if k == property {
				continue
			}
			if string(after[k]) != string(raw) {
				t.Fatalf("field %q changed: %s → %s", k, raw, after[k])
			}
		}
		if len(after) != len(before)+1 && len(after) != len(before) {
			t.Fatalf("%d fields before, %d after", len(before), len(after))
		}
	})
}

func TestPushPayload(t *testing.T) {
	key := func(v string) provider.PushValue { return provider.PushValue{SecretKey: "k", Value: []byte(v)} }
	whole := provider.PushValue{Secret: map[string][]byte{"b": []byte("2"), "a": []byte("<1>")}}
	for _, tc := range []struct {
		name     string
		property string
		v        provider.PushValue
		current  string
		found    bool
		want     string
		changed  bool
		invalid  bool
	}{
		{name: "a key to a new secret is stored as it is", v: key("raw"), want: "raw", changed: true},
		{name: "the same bytes are unchanged", v: key("raw"), current: "raw", found: true},
		{name: "other bytes replace the version", v: key("new"), current: "raw", found: true, want: "new", changed: true},
		{name: "the whole Secret is a JSON object of strings in key order", v: whole, want: `{"a":"<1>","b":"2"}`, changed: true},
		{name: "the whole Secret as ESO wrote it is unchanged", v: whole, current: `{"a":"<1>","b":"2"}`, found: true},
		{name: "a property of a new secret is a one-field object", property: "p", v: key("v"), want: `{"p":"v"}`, changed: true},
		{name: "a property of a secret without versions is a one-field object", property: "p", v: key("v"), found: false, want: `{"p":"v"}`, changed: true},
		{name: "a property joins the other fields, kept as they are", property: "p", v: key("v"), current: `{"z":1.50,"a":{"x":[true]}}`, found: true,
			want: `{"a":{"x":[true]},"p":"v","z":1.50}`, changed: true},
		{name: "a property holding the value is unchanged", property: "p", v: key("v"), current: `{"p":"v","q":"w"}`, found: true},
		{name: "a number field reading as the value is unchanged", property: "port", v: key("5432"), current: `{"port":5432}`, found: true},
		{name: "a property replaces a field of another type", property: "p", v: key("v"), current: `{"p":1}`, found: true, want: `{"p":"v"}`, changed: true},
		{name: "the whole Secret into a property is a JSON string", property: "all", v: whole, want: `{"all":"{\"a\":\"<1>\",\"b\":\"2\"}"}`, changed: true},
		{name: "a property of a version that is not an object is refused", property: "p", v: key("v"), current: `["p"]`, found: true, invalid: true},
		{name: "a property of a version that is not JSON is refused", property: "p", v: key("v"), current: `p=v`, found: true, invalid: true},
		{name: "a value that is not UTF-8 cannot be a property", property: "p", v: provider.PushValue{SecretKey: "k", Value: []byte{0xff}}, invalid: true},
		{name: "a whole Secret with a value that is not UTF-8 is refused", v: provider.PushValue{Secret: map[string][]byte{"bin": {0xff}}}, invalid: true},
		{name: "bytes that are not UTF-8 are pushed as they are without a property", v: provider.PushValue{SecretKey: "k", Value: []byte{0xff}}, want: "\xff", changed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := provider.PushRef{RemoteKey: "s", Property: tc.property}
			next, changed, err := nextPayload(ref, tc.v, []byte(tc.current), tc.found)
			if tc.invalid {
				if !errors.Is(err, provider.ErrInvalidPush) {
					t.Fatalf("err = %v; want ErrInvalidPush", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.changed || changed && string(next) != tc.want {
				t.Fatalf("nextPayload = %q, changed %v; want %q, changed %v", next, changed, tc.want, tc.changed)
			}
		})
	}
}

func TestPushRefChecks(t *testing.T) {
	for _, tc := range []struct {
		ref provider.PushRef
		ok  bool
	}{
		{provider.PushRef{RemoteKey: "db-password_2"}, true},
		{provider.PushRef{RemoteKey: "app", Property: "user-name_1"}, true},
		{provider.PushRef{RemoteKey: strings.Repeat("a", 255)}, true},
		{provider.PushRef{RemoteKey: strings.Repeat("a", 256)}, false},
		{provider.PushRef{RemoteKey: ""}, false},
		{provider.PushRef{RemoteKey: "a/b"}, false},
		{provider.PushRef{RemoteKey: "a.b"}, false},
		{provider.PushRef{RemoteKey: "app", Property: "a.b"}, false},
		{provider.PushRef{RemoteKey: "app", Property: "a|b"}, false},
		{provider.PushRef{RemoteKey: "app", Property: "#"}, false},
		{provider.PushRef{RemoteKey: "app", Property: "@this"}, false},
		{provider.PushRef{RemoteKey: "app", Property: `a\b`}, false},
	} {
		err := checkPushRef(tc.ref)
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, provider.ErrInvalidPush) {
			t.Errorf("checkPushRef(%s) = %v; want ok %v", tc.ref, err, tc.ok)
		}
	}
}

package vault

import (
	"context"
	"fmt"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// push inspects ref and pushes v, failing the test on error.
func (e *env) push(c *client, ref provider.PushRef, v provider.PushValue) bool {
	e.t.Helper()
	ctx := context.Background()
	st, err := c.Inspect(ctx, ref)
	if err != nil {
		e.noLeak(err)
		e.t.Fatalf("Inspect(%s): %v", ref, err)
	}
	wrote, err := c.Push(ctx, ref, v, st)
	if err != nil {
		e.noLeak(err)
		e.t.Fatalf("Push(%s): %v", ref, err)
	}
	return wrote
}

// kvData reads the current fields of a KV v2 entry under secret/ as root.
func (e *env) kvData(key string) map[string]any {
	e.t.Helper()
	sec := e.vault.Read(e.t, "secret/data/"+key)
	if sec == nil {
		return nil
	}
	d, _ := sec.Data["data"].(map[string]any)
	return d
}

func (e *env) customMetadata(key string) map[string]any {
	e.t.Helper()
	sec := e.vault.Read(e.t, "secret/metadata/"+key)
	if sec == nil {
		return nil
	}
	m, _ := sec.Data["custom_metadata"].(map[string]any)
	return m
}

func TestPushKVv2CreatesMarksAndUpdatesOnlyWhatChanged(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.spec(e.rootAuth()))
	v1, v2 := e.canary(), e.canary()
	ref := provider.PushRef{RemoteKey: "app/db"}

	if !e.push(c, ref, provider.PushValue{SecretKey: "k", Value: fmt.Appendf(nil, `{"password":%q}`, v1)}) {
		t.Fatal("the first push wrote nothing")
	}
	if got := e.kvData("app/db"); got["password"] != v1 {
		t.Fatalf("entry = %v", got)
	}
	if md := e.customMetadata("app/db"); md[provider.ManagedByKey] != provider.ManagedByValue {
		t.Fatalf("custom_metadata = %v; want ESO's managed-by mark", md)
	}
	if e.push(c, ref, provider.PushValue{SecretKey: "k", Value: fmt.Appendf(nil, `{"password":%q}`, v1)}) {
		t.Fatal("pushing the same value wrote a new version")
	}
	// A property goes into the existing map, the other fields kept.
	e.push(c, provider.PushRef{RemoteKey: "app/db", Property: "user"}, provider.PushValue{SecretKey: "u", Value: []byte(v2)})
	if got := e.kvData("app/db"); got["password"] != v1 || got["user"] != v2 {
		t.Fatalf("entry = %v; want password kept and user added", got)
	}
	st, err := c.Inspect(context.Background(), provider.PushRef{RemoteKey: "app/db", Property: "user"})
	if err != nil || !st.Exists || !st.Managed || !st.PropertyExists || st.Version != "2" {
		t.Fatalf("Inspect = %+v, %v; want an existing managed entry at version 2 with the property", st, err)
	}
}

func TestPushKVv2NeverWritesAnEntryItDidNotCreate(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.spec(e.rootAuth()))
	theirs := e.canary()
	e.vault.PutKV(t, "secret", 2, "foreign", map[string]any{"password": theirs})
	ref := provider.PushRef{RemoteKey: "foreign", Property: "password"}
	st, err := c.Inspect(context.Background(), ref)
	if err != nil || !st.Exists || st.Managed {
		t.Fatalf("Inspect = %+v, %v; want an existing entry that is not managed", st, err)
	}
	_, err = c.Push(context.Background(), ref, provider.PushValue{SecretKey: "k", Value: []byte(e.canary())}, st)
	e.wantErr(err, provider.ErrNotManaged)
	if err := c.Delete(context.Background(), ref, st); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := e.kvData("foreign"); got["password"] != theirs {
		t.Fatalf("entry = %v; want it untouched", got)
	}
}

func TestPushKVv2IsACheckAndSet(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.spec(e.rootAuth()))
	ref := provider.PushRef{RemoteKey: "shared", Property: "a"}
	e.push(c, ref, provider.PushValue{SecretKey: "a", Value: []byte(e.canary())})
	st, err := c.Inspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else writes between keyferry's read and its write.
	other := e.canary()
	e.vault.PutKV(t, "secret", 2, "shared", map[string]any{"a": other})
	_, err = c.Push(context.Background(), ref, provider.PushValue{SecretKey: "a", Value: []byte(e.canary())}, st)
	e.wantErr(err, provider.ErrConflict)
	if got := e.kvData("shared"); got["a"] != other {
		t.Fatalf("entry = %v; want the other writer's update kept", got)
	}
}

func TestPushKVv2RefusesAValueThatIsNotAnObject(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.spec(e.rootAuth()))
	ref := provider.PushRef{RemoteKey: "plain"}
	_, err := c.Push(context.Background(), ref, provider.PushValue{SecretKey: "k", Value: []byte(e.canary())}, provider.RemoteState{})
	e.wantErr(err, provider.ErrInvalidPush)
	if got := e.kvData("plain"); got != nil {
		t.Fatalf("entry = %v; want none", got)
	}
}

func TestPushKVv2WholeSecretAndDelete(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.spec(e.rootAuth()))
	a, b := e.canary(), e.canary()
	whole := provider.PushRef{RemoteKey: "whole"}
	e.push(c, whole, provider.PushValue{Secret: map[string][]byte{"a": []byte(a), "b": []byte(b)}})
	if got := e.kvData("whole"); got["a"] != a || got["b"] != b {
		t.Fatalf("entry = %v", got)
	}
	// Deleting one property keeps the entry; the last one deletes it, with
	// its metadata.
	ctx := context.Background()
	if err := c.Delete(ctx, provider.PushRef{RemoteKey: "whole", Property: "a"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if got := e.kvData("whole"); got["a"] != nil || got["b"] != b {
		t.Fatalf("entry = %v; want only b", got)
	}
	if err := c.Delete(ctx, provider.PushRef{RemoteKey: "whole", Property: "b"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if sec := e.vault.Read(t, "secret/metadata/whole"); sec != nil {
		t.Fatalf("metadata = %v; want the entry deleted", sec.Data)
	}
}

func TestPushKVv1MarksTheEntry(t *testing.T) {
	e := newEnv(t)
	e.vault.EnableKV(t, "kv1", 1)
	spec := e.spec(e.rootAuth())
	spec.Path, spec.Version = ptr("kv1"), esv1.VaultKVStoreV1
	c := e.client(spec)
	v := e.canary()
	ref := provider.PushRef{RemoteKey: "app", Property: "password"}
	e.push(c, ref, provider.PushValue{SecretKey: "p", Value: []byte(v)})
	sec := e.vault.Read(t, "kv1/app")
	md, _ := sec.Data[customMetadataField].(map[string]any)
	if sec.Data["password"] != v || md[provider.ManagedByKey] != provider.ManagedByValue {
		t.Fatalf("entry = %v; want the value and ESO's custom_metadata mark", sec.Data)
	}
	theirs := e.canary()
	e.vault.PutKV(t, "kv1", 1, "foreign", map[string]any{"password": theirs})
	st, err := c.Inspect(context.Background(), provider.PushRef{RemoteKey: "foreign"})
	if err != nil || !st.Exists || st.Managed {
		t.Fatalf("Inspect = %+v, %v", st, err)
	}
	if err := c.Delete(context.Background(), ref, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if sec := e.vault.Read(t, "kv1/app"); sec != nil {
		t.Fatalf("entry = %v; want it deleted", sec.Data)
	}
}

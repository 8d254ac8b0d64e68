package fake

import (
	"context"
	"errors"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

func newClient(t *testing.T) *client {
	t.Helper()
	spec := &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Fake: &esv1.FakeProvider{Data: []esv1.FakeProviderData{{Key: "from-spec", Value: "v"}}}}}
	c, err := New().NewClient(context.Background(), provider.Options{Store: provider.Store{Spec: spec}})
	if err != nil {
		t.Fatal(err)
	}
	return c.(*client)
}

func push(t *testing.T, c *client, ref provider.PushRef, v provider.PushValue) (bool, error) {
	t.Helper()
	st, err := c.Inspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return c.Push(context.Background(), ref, v, st)
}

func get(t *testing.T, c *client, key string) string {
	t.Helper()
	v, err := c.GetSecret(context.Background(), provider.Ref{Key: key})
	if err != nil {
		t.Fatalf("GetSecret(%s): %v", key, err)
	}
	return string(v.Data)
}

func TestPushWritesReadsBackAndDeletesWhatItPushed(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	if wrote, err := push(t, c, provider.PushRef{RemoteKey: "k"}, provider.PushValue{SecretKey: "s", Value: []byte("one")}); err != nil || !wrote {
		t.Fatalf("push = %v, %v", wrote, err)
	}
	if got := get(t, c, "k"); got != "one" {
		t.Fatalf("k = %q", got)
	}
	if wrote, err := push(t, c, provider.PushRef{RemoteKey: "k"}, provider.PushValue{SecretKey: "s", Value: []byte("one")}); err != nil || wrote {
		t.Fatalf("pushing the same value = %v, %v; want no write", wrote, err)
	}
	if _, err := push(t, c, provider.PushRef{RemoteKey: "m", Property: "a"}, provider.PushValue{SecretKey: "s", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := push(t, c, provider.PushRef{RemoteKey: "m", Property: "b"}, provider.PushValue{SecretKey: "s", Value: []byte("2")}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c, "m"); got != `{"a":"1","b":"2"}` {
		t.Fatalf("m = %s", got)
	}
	if err := c.Delete(ctx, provider.PushRef{RemoteKey: "m", Property: "a"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c, "m"); got != `{"b":"2"}` {
		t.Fatalf("m = %s", got)
	}
	if err := c.Delete(ctx, provider.PushRef{RemoteKey: "k"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSecret(ctx, provider.Ref{Key: "k"}); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("k after Delete: %v", err)
	}
}

func TestPushNeverTouchesAnEntryOfTheSpec(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ref := provider.PushRef{RemoteKey: "from-spec"}
	st, _ := c.Inspect(ctx, ref)
	if !st.Exists || st.Managed {
		t.Fatalf("Inspect = %+v; want an existing entry that is not managed", st)
	}
	if _, err := c.Push(ctx, ref, provider.PushValue{SecretKey: "s", Value: []byte("x")}, st); !errors.Is(err, provider.ErrNotManaged) {
		t.Fatalf("Push = %v; want ErrNotManaged", err)
	}
	if err := c.Delete(ctx, ref, st); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c, "from-spec"); got != "v" {
		t.Fatalf("from-spec = %q; want it untouched", got)
	}
}

func TestPushIsACheckAndSet(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ref := provider.PushRef{RemoteKey: "k"}
	if _, err := push(t, c, ref, provider.PushValue{SecretKey: "s", Value: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	stale, _ := c.Inspect(ctx, ref)
	if _, err := push(t, c, ref, provider.PushValue{SecretKey: "s", Value: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, ref, provider.PushValue{SecretKey: "s", Value: []byte("three")}, stale); !errors.Is(err, provider.ErrConflict) {
		t.Fatalf("Push on a stale state = %v; want ErrConflict", err)
	}
	if got := get(t, c, "k"); got != "two" {
		t.Fatalf("k = %q", got)
	}
}

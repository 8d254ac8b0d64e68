package vault

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/values"
	"github.com/keyferry/keyferry/internal/provider"
)

func TestMetadataIsCustomMetadata(t *testing.T) {
	e := newEnv(t)
	pass := e.canary()
	e.vault.PutKV(t, "secret", 2, "meta/db", map[string]any{"pass": pass})
	e.vault.PutKV(t, "secret", 2, "meta/db", map[string]any{"pass": pass + "2"})
	e.vault.Write(t, "secret/metadata/meta/db", map[string]any{
		"custom_metadata": map[string]any{"dev": "seb", "team.name": "payments", "delete_version_after": "custom wins"},
	})
	e.vault.PutKV(t, "secret", 2, "meta/plain", map[string]any{"pass": pass})
	c := e.client(e.spec(e.rootAuth()))
	ctx := context.Background()

	v, err := c.GetSecret(ctx, provider.Ref{Key: "meta/db", Metadata: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(v.Data), pass) {
		t.Fatalf("metadata holds the value: %s", v.Data)
	}
	var got map[string]string
	if err := json.Unmarshal(v.Data, &got); err != nil {
		t.Fatalf("metadata is not a JSON object of strings: %v (%s)", err, v.Data)
	}
	want := map[string]string{"dev": "seb", "team.name": "payments", "current_version": "2", "delete_version_after": "custom wins"}
	for k, w := range want {
		if got[k] != w || string(v.Fields[k]) != w {
			t.Errorf("metadata[%q] = %q (field %q), want %q", k, got[k], v.Fields[k], w)
		}
	}
	if got["created_time"] == "" || len(got) != 5 {
		t.Errorf("metadata = %v, want custom_metadata, created_time, current_version and delete_version_after", got)
	}
	for prop, w := range map[string]string{"dev": "seb", "team.name": "payments", "current_version": "2"} {
		if b, err := values.Property(v, prop); err != nil || string(b) != w {
			t.Errorf("property %q = %q, %v; want %q", prop, b, err, w)
		}
	}

	// An entry without custom_metadata still has its system metadata.
	plain, err := c.GetSecret(ctx, provider.Ref{Key: "meta/plain", Metadata: true})
	if err != nil || string(plain.Fields["current_version"]) != "1" || len(plain.Fields) != 3 {
		t.Errorf("metadata without custom_metadata = %s, %v", plain.Data, err)
	}
	_, err = c.GetSecret(ctx, provider.Ref{Key: "meta/missing", Metadata: true})
	e.wantErr(err, provider.ErrNotFound)
}

func TestMetadataOnKVv1IsRefused(t *testing.T) {
	e := newEnv(t)
	e.vault.EnableKV(t, "kv1", 1)
	val := e.canary()
	e.vault.PutKV(t, "kv1", 1, "app/config", map[string]any{"token": val})
	spec := e.spec(e.rootAuth())
	spec.Path, spec.Version = ptr("kv1"), esv1.VaultKVStoreV1
	c := e.client(spec)
	_, err := c.GetSecret(context.Background(), provider.Ref{Key: "app/config", Metadata: true})
	e.wantErr(err, provider.ErrMetadataNotSupported)
}

package azurekv

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/internal/engine/values"
	"github.com/keyferry/keyferry/internal/provider"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

func TestMetadataIsTagsAndAttributes(t *testing.T) {
	srv := newServer(t)
	c := readerClient(t, srv, kvserver.ReadAll)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	expires := time.Date(2027, 6, 7, 8, 9, 10, 0, time.UTC)
	old := srv.SetSecret("db", "old-"+canary, kvserver.WithTags(map[string]string{"dev": "old"}))
	srv.SetSecret("db", `{"password":"`+canary+`"}`, kvserver.CreatedAt(created), kvserver.ExpiresAt(expires),
		kvserver.WithTags(map[string]string{"dev": "seb", "team.name": "payments"}))
	cert, key := selfSigned(t, "tls")
	srv.SetCertificate(t, "tls", cert, key, kvserver.WithTags(map[string]string{"issuer": "ca"}))
	ctx := testContext(t)

	get := func(key, version string) provider.Value {
		t.Helper()
		v, err := c.GetSecret(ctx, provider.Ref{Key: key, Version: version, Metadata: true})
		if err != nil {
			noCanary(t, err)
			t.Fatalf("metadata of %s: %v", key, err)
		}
		if strings.Contains(string(v.Data), canary) {
			t.Fatalf("metadata of %s holds the value: %s", key, v.Data)
		}
		return v
	}

	v := get("db", "")
	var got map[string]string
	if err := json.Unmarshal(v.Data, &got); err != nil {
		t.Fatalf("metadata is not a JSON object of strings: %v", err)
	}
	want := map[string]string{
		"dev": "seb", "team.name": "payments",
		"attribute.created": "2026-01-02T03:04:05Z", "attribute.updated": "2026-01-02T03:04:05Z",
		"attribute.expires": "2027-06-07T08:09:10Z",
	}
	if len(got) != len(want) {
		t.Errorf("metadata = %v, want %v", got, want)
	}
	for k, w := range want {
		if b, err := values.Property(v, k); err != nil || string(b) != w {
			t.Errorf("property %q = %q, %v; want %q", k, b, err, w)
		}
	}
	if got := get("db", old); string(got.Fields["dev"]) != "old" {
		t.Errorf("tags of version %s = %s, want that version's", old, got.Data)
	}
	if got := get("cert/tls", ""); string(got.Fields["issuer"]) != "ca" || got.Fields[attributeCreated] == nil {
		t.Errorf("certificate metadata = %s", got.Data)
	}
	_, err := c.GetSecret(ctx, provider.Ref{Key: "missing", Metadata: true})
	wantErr(t, err, provider.ErrNotFound)
}

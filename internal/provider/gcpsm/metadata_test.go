package gcpsm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/values"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testserver/gcpsmemulator"
)

func TestMetadataIsLabelsAndAnnotations(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	sec, err := srv.Client.CreateSecret(context.Background(), &secretmanagerpb.CreateSecretRequest{
		Parent: "projects/p1", SecretId: "db",
		Secret: &secretmanagerpb.Secret{
			Labels:      map[string]string{"dev": "seb", "env": "prod"},
			Annotations: map[string]string{"owner": "team-a"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.AddVersion(t, sec.GetName(), []byte(canary))
	srv.AddVersion(t, srv.CreateSecret(t, "projects/p1", "bare", nil), []byte(canary))
	c := newClient(t, &esv1.GCPSMProvider{ProjectID: "p1"}, srv.ClientOptions()...)
	ctx := testContext(t)

	v, err := c.GetSecret(ctx, provider.Ref{Key: "db", Metadata: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(v.Data), canary) {
		t.Fatalf("metadata holds the value: %s", v.Data)
	}
	// The emulator keeps labels; whether it keeps annotations is checked
	// against what it returns, so the test states what it covers.
	back, err := srv.Client.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: sec.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	wantAnnotations := `{"owner":"team-a"}`
	if len(back.GetAnnotations()) == 0 {
		t.Log("the emulator does not keep annotations: only labels are checked")
		wantAnnotations = "null"
	}
	want := `{"annotations":` + wantAnnotations + `,"labels":{"dev":"seb","env":"prod"}}`
	if string(v.Data) != want {
		t.Errorf("metadata = %s\nwant       %s", v.Data, want)
	}
	for _, tt := range []struct{ property, want string }{
		{"labels", `{"dev":"seb","env":"prod"}`},
		{"labels.dev", "seb"},
		{"annotations", wantAnnotations},
	} {
		if b, err := values.Property(v, tt.property); err != nil || string(b) != tt.want {
			t.Errorf("property %q = %q, %v; want %q", tt.property, b, err, tt.want)
		}
	}
	if m, err := values.Extract(v, ""); err != nil || len(m) != 2 || string(m["labels"]) != `{"dev":"seb","env":"prod"}` {
		t.Errorf("extract = %q, %v; want the keys annotations and labels", m, err)
	}

	bare, err := c.GetSecret(ctx, provider.Ref{Key: "bare", Metadata: true})
	if err != nil || string(bare.Data) != `{"annotations":null,"labels":null}` {
		t.Errorf("metadata of a secret without labels = %s, %v", bare.Data, err)
	}
	_, err = c.GetSecret(ctx, provider.Ref{Key: "missing", Metadata: true})
	if !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("missing secret: error = %v, want ErrNotFound", err)
	}
	assertNoCanary(t, err)
}

package file

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
)

func TestMetadataIsRefused(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "password"), canary)
	c := newClient(t, root, "")
	v, err := c.GetSecret(context.Background(), provider.Ref{Key: "password", Metadata: true})
	wantErr(t, err, provider.ErrMetadataNotSupported)
	if len(v.Data) != 0 {
		t.Fatal("the refusal carries the value")
	}
}

package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// A webhook has no metadata: a metadata ref is refused without calling it,
// so its answer (the value) can never be written in place of metadata.
func TestMetadataIsRefusedWithoutACall(t *testing.T) {
	var calls atomic.Int32
	srv := startServer(t, nil, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		calls.Add(1)
		fmt.Fprint(w, vsecmDoc)
	})
	c := mustClient(t, newNamespace(t), &esv1.WebhookProvider{URL: srv.URL + "/secrets/{{ .remoteRef.key }}"})
	v, err := c.GetSecret(context.Background(), provider.Ref{Key: "db-credentials", Metadata: true})
	if !errors.Is(err, provider.ErrMetadataNotSupported) || !errors.Is(err, provider.ErrNotSupported) {
		t.Fatalf("error = %v, want ErrMetadataNotSupported", err)
	}
	if strings.Contains(err.Error(), canary) || len(v.Data) != 0 {
		t.Fatalf("the refusal carries the value")
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the webhook was called %d times", n)
	}
}

package engine

import (
	"fmt"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
)

func TestClassifyReasons(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"metadata from a provider without metadata", provider.RefuseMetadata(provider.Ref{Key: "k", Metadata: true}, "files have no tags"), ReasonMetadataNotSupported},
		{"other unsupported operations", fmt.Errorf("%w: files have no versions", provider.ErrNotSupported), ReasonUnsupportedProvider},
		{"not found", fmt.Errorf("reading k: %w", provider.ErrNotFound), ReasonRemoteNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err).Reason; got != tt.want {
				t.Errorf("reason = %s, want %s", got, tt.want)
			}
		})
	}
}

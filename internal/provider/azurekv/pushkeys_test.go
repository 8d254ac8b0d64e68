package azurekv

import (
	"slices"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
)

func TestReadKeysCoverEverySpellingAPushChanges(t *testing.T) {
	tests := []struct {
		remoteKey string
		want      []string
	}{
		{"db", []string{"db", "secret/db"}},
		{"secret/db", []string{"db", "secret/db"}},
		{"key/signing", []string{"key/signing"}},
		{"cert/tls", []string{"cert/tls", "key/tls", "secret/tls", "tls"}},
		{"blob/x", nil},
	}
	for _, tt := range tests {
		got := (&Client{}).ReadKeys(provider.PushRef{RemoteKey: tt.remoteKey, Property: "p"})
		slices.Sort(got)
		slices.Sort(tt.want)
		if !slices.Equal(got, tt.want) {
			t.Errorf("ReadKeys(%q) = %v, want %v", tt.remoteKey, got, tt.want)
		}
	}
}

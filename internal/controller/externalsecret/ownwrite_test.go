package externalsecret

import (
	"testing"

	"github.com/keyferry/keyferry/internal/controller/refresh"
)

func TestOwnWrite(t *testing.T) {
	tests := []struct {
		name string
		rec  *refresh.Record
		rv   string
		want bool
	}{
		{"no record: the ExternalSecret was not synced by this process", nil, "7", false},
		{"the Secret is at the version the last sync left", &refresh.Record{SecretRV: "7"}, "7", true},
		{"someone changed the Secret since", &refresh.Record{SecretRV: "7"}, "9", false},
		{"the last sync left no Secret version", &refresh.Record{}, "7", false},
		{"an event without a version", &refresh.Record{}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ownWrite(tt.rec, tt.rv); got != tt.want {
				t.Errorf("ownWrite = %v, want %v", got, tt.want)
			}
		})
	}
}

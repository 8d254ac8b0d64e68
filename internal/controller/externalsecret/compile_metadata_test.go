package externalsecret

import (
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

func TestCompileMetadataPolicy(t *testing.T) {
	tests := []struct {
		name   string
		policy esv1.ExternalSecretMetadataPolicy
		want   bool
	}{
		{"unset reads the value", "", false},
		{"None reads the value", esv1.MetadataPolicyNone, false},
		{"Fetch reads the metadata", esv1.MetadataPolicyFetch, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(es(func(s *esv1.ExternalSecretSpec) {
				s.Data[0].RemoteRef.MetadataPolicy = tt.policy
				s.DataFrom = []esv1.ExternalSecretDataFromRemoteRef{{Extract: &esv1.ExternalSecretDataRemoteRef{Key: "x", Version: "2", MetadataPolicy: tt.policy}}}
			}))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := p.Sources[0].Data.Ref, (provider.Ref{Key: "remote", Version: "3", Metadata: tt.want}); got != want {
				t.Errorf("data ref = %+v, want %+v", got, want)
			}
			if got, want := p.Sources[1].Extract.Ref, (provider.Ref{Key: "x", Version: "2", Metadata: tt.want}); got != want {
				t.Errorf("extract ref = %+v, want %+v", got, want)
			}
		})
	}
}

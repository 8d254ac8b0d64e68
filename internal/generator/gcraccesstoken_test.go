package generator

import (
	"errors"
	"strings"
	"testing"
)

func TestParseGCRAccessToken(t *testing.T) {
	tests := []struct {
		name, in  string
		wantField string // "" when accepted
		check     func(*testing.T, *GCRAccessTokenSpec)
	}{
		{name: "service account key", in: `{"projectID": "p1", "auth": {"secretRef": {"secretAccessKeySecretRef": {"name": "gcp", "key": "sa.json"}}}}`,
			check: func(t *testing.T, s *GCRAccessTokenSpec) {
				if s.ProjectID != "p1" || s.Auth.SecretRef == nil || s.Auth.SecretRef.SecretAccessKey.Name != "gcp" || s.Auth.SecretRef.SecretAccessKey.Key != "sa.json" {
					t.Fatalf("spec = %+v", s)
				}
			}},
		{name: "workload identity", in: `{"projectID": "p1", "auth": {"workloadIdentity": {"serviceAccountRef": {"name": "sa", "audiences": ["a"]}, "clusterLocation": "europe-west1", "clusterName": "c", "clusterProjectID": "cp"}}}`,
			check: func(t *testing.T, s *GCRAccessTokenSpec) {
				wi := s.Auth.WorkloadIdentity
				if wi == nil || wi.ServiceAccountRef.Name != "sa" || wi.ClusterName != "c" || wi.ClusterProjectID != "cp" {
					t.Fatalf("spec = %+v", s)
				}
			}},
		{name: "no auth means default credentials", in: `{"projectID": "p1", "auth": {}}`,
			check: func(t *testing.T, s *GCRAccessTokenSpec) {
				if s.Auth.SecretRef != nil || s.Auth.WorkloadIdentity != nil {
					t.Fatalf("spec = %+v", s)
				}
			}},
		{name: "empty", in: ``, wantField: "spec"},
		{name: "null", in: `null`, wantField: "spec"},
		{name: "array", in: `[]`, wantField: "spec"},
		{name: "truncated", in: `{"projectID": "p1"`, wantField: "spec"},
		{name: "unknown field", in: `{"project": "p1"}`, wantField: "spec"},
		{name: "wrong type", in: `{"projectID": 1}`, wantField: "spec"},
		{name: "two values", in: `{} {}`, wantField: "spec"},
		{name: "too long", in: `{"projectID": "` + strings.Repeat("a", maxGCRSpecBytes) + `"}`, wantField: "spec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseGCRAccessToken([]byte(tt.in))
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("ParseGCRAccessToken: %v", err)
				}
				tt.check(t, s)
				return
			}
			var se *SpecError
			if !errors.As(err, &se) || se.Field != tt.wantField || !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("ParseGCRAccessToken = %v, want a SpecError for %s", err, tt.wantField)
			}
		})
	}
}

// The parser never panics, refuses only with a SpecError, and its messages
// never quote the spec (which names credentials).
func FuzzParseGCRAccessToken(f *testing.F) {
	for _, s := range []string{
		`{"projectID": "p1", "auth": {"secretRef": {"secretAccessKeySecretRef": {"name": "gcp", "key": "k"}}}}`,
		`{"auth": {"workloadIdentity": {"serviceAccountRef": {"name": "sa"}, "clusterLocation": "", "clusterName": ""}}}`,
		`{"auth": {"workloadIdentityFederation": {"audience": "x"}}}`,
		`{"projectID": 3}`, `[]`, `null`, ``, `{"x": "canary-value"}`, `{"projectID": "canary-value"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := ParseGCRAccessToken(raw)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("not a SpecError: %v", err)
			}
			if len(raw) >= 8 && strings.Contains(err.Error(), string(raw)) {
				t.Fatalf("the error quotes the spec: %v", err)
			}
			return
		}
		if s == nil {
			t.Fatal("nil spec without an error")
		}
	})
}

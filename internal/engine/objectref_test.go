package engine

import "testing"

func TestObjectRefForms(t *testing.T) {
	// Both forms are stored or exchanged elsewhere: the subscriber form in
	// the fetch layer, the writer form on existing Secrets. They never change.
	tests := []struct {
		name                string
		ref                 ObjectRef
		subscriber, managed string
	}{
		{"ExternalSecret", ObjectRef{Kind: "ExternalSecret", Namespace: "ns", Name: "app"}, "ExternalSecret/ns/app", "ExternalSecret/app"},
		{"SecretSync", ObjectRef{Kind: "SecretSync", Namespace: "team-a", Name: "sync"}, "SecretSync/team-a/sync", "SecretSync/sync"},
		{"cluster-scoped kind has an empty namespace", ObjectRef{Kind: "ClusterExternalSecret", Name: "all"}, "ClusterExternalSecret//all", "ClusterExternalSecret/all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ref.String(); got != tt.subscriber {
				t.Errorf("String() = %q, want %q", got, tt.subscriber)
			}
			if got := tt.ref.ManagedBy(); got != tt.managed {
				t.Errorf("ManagedBy() = %q, want %q", got, tt.managed)
			}
			if got, err := ParseObjectRef(tt.subscriber); err != nil || got != tt.ref {
				t.Errorf("ParseObjectRef(%q) = %+v, %v; want %+v", tt.subscriber, got, err, tt.ref)
			}
			if got, err := ParseManagedBy(tt.ref.Namespace, tt.managed); err != nil || got != tt.ref {
				t.Errorf("ParseManagedBy(%q, %q) = %+v, %v; want %+v", tt.ref.Namespace, tt.managed, got, err, tt.ref)
			}
		})
	}
}

func TestOwnerRef(t *testing.T) {
	o := Owner{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Namespace: "ns", Name: "app", UID: "u"}
	if got, want := o.Ref(), (ObjectRef{Kind: "ExternalSecret", Namespace: "ns", Name: "app"}); got != want {
		t.Fatalf("Ref() = %+v, want %+v", got, want)
	}
	if got := o.Subscriber(); got != "ExternalSecret/ns/app" {
		t.Fatalf("Subscriber() = %q", got)
	}
}

func TestParseObjectRefRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"no separator", "ExternalSecret"},
		{"writer form is not a subscriber", "ExternalSecret/app"},
		{"empty kind", "/ns/app"},
		{"empty name", "ExternalSecret/ns/"},
		{"name with a slash", "ExternalSecret/ns/a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ref, err := ParseObjectRef(tt.in); err == nil {
				t.Fatalf("ParseObjectRef(%q) = %+v, want an error", tt.in, ref)
			}
		})
	}
}

func TestParseManagedByRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"no separator", "ExternalSecret"},
		{"empty kind", "/app"},
		{"empty name", "ExternalSecret/"},
		{"subscriber form is not a writer", "ExternalSecret/ns/app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ref, err := ParseManagedBy("ns", tt.in); err == nil {
				t.Fatalf("ParseManagedBy(%q) = %+v, want an error", tt.in, ref)
			}
		})
	}
}

// FuzzParseObjectRef checks that parsing never panics and that whatever
// parses prints back to the same string, in both forms.
func FuzzParseObjectRef(f *testing.F) {
	for _, s := range []string{"ExternalSecret/ns/app", "SecretSync/ns/sync", "ClusterExternalSecret//all", "ExternalSecret/app", "", "/", "//", "a/b/c/d", "ExternalSecret/ns/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ref, err := ParseObjectRef(s); err == nil {
			if ref.String() != s {
				t.Fatalf("ParseObjectRef(%q).String() = %q", s, ref.String())
			}
			if ref.Kind == "" || ref.Name == "" {
				t.Fatalf("ParseObjectRef(%q) = %+v: kind and name must be set", s, ref)
			}
		}
		if ref, err := ParseManagedBy("ns", s); err == nil {
			if ref.ManagedBy() != s || ref.Namespace != "ns" {
				t.Fatalf("ParseManagedBy(%q) = %+v (ManagedBy %q)", s, ref, ref.ManagedBy())
			}
		}
	})
}

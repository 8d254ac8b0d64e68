package provider

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"testing"
)

func TestClassFileObjects(t *testing.T) {
	got := ClassFileObjects(maps.Keys(map[string]int{"b": 1, "a": 2}))
	want := []ClassObject{
		{File: "a", Ref: Ref{Key: "a"}, CertRef: Ref{Key: "a", Version: ClassPartCert}, KeyRef: Ref{Key: "a", Version: ClassPartKey}},
		{File: "b", Ref: Ref{Key: "b"}, CertRef: Ref{Key: "b", Version: ClassPartCert}, KeyRef: Ref{Key: "b", Version: ClassPartKey}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ClassFileObjects = %+v, want %+v", got, want)
	}
	if got := ClassFileObjects(maps.Keys(map[string]int{})); got == nil || len(got) != 0 {
		t.Fatalf("no files = %#v, want an empty list", got)
	}
}

func TestClassFiles(t *testing.T) {
	type obj struct{ file, id string }
	got := ClassFiles([]obj{{"a", "1"}, {"b", "2"}, {"a", "3"}}, func(o obj) string { return o.file })
	want := map[string]obj{"a": {"a", "3"}, "b": {"b", "2"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ClassFiles = %v, want %v (a later file replaces an earlier one)", got, want)
	}
}

func TestLookupClassFile(t *testing.T) {
	files := map[string]int{"a": 1}
	tests := []struct {
		name string
		ref  Ref
		want int
		ok   bool
	}{
		{name: "file", ref: Ref{Key: "a"}, want: 1, ok: true},
		{name: "cert part", ref: Ref{Key: "a", Version: ClassPartCert}, want: 1, ok: true},
		{name: "key part", ref: Ref{Key: "a", Version: ClassPartKey}, want: 1, ok: true},
		{name: "other version", ref: Ref{Key: "a", Version: "2"}},
		{name: "no such file", ref: Ref{Key: "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LookupClassFile(files, "spc", tt.ref)
			if !tt.ok {
				want := `invalid store configuration: "` + tt.ref.Key + `" is not an object of SecretProviderClass spc`
				if !errors.Is(err, ErrInvalidConfig) || err.Error() != want {
					t.Fatalf("err = %v, want %q wrapping ErrInvalidConfig", err, want)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestClassPart(t *testing.T) {
	cert := "-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n"
	key := "-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n"
	tests := []struct {
		part, in, want string
		wantErr        bool
	}{
		{part: "", in: "raw", want: "raw"},
		{part: ClassPartCert, in: key + cert, want: cert},
		{part: ClassPartKey, in: cert + key, want: key},
		{part: ClassPartCert, in: key, wantErr: true},
		{part: ClassPartKey, in: "raw", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ClassPart([]byte(tt.in), tt.part)
		if tt.wantErr {
			if !errors.Is(err, ErrBadResponse) {
				t.Errorf("ClassPart(%q) err = %v, want ErrBadResponse", tt.part, err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("ClassPart(%q) = %q, %v; want %q", tt.part, got, err, tt.want)
		}
	}
}

func TestCheckClassProvider(t *testing.T) {
	store := Store{Class: &Class{Provider: "azure"}}
	if err := CheckClassProvider(store, "azure"); err != nil {
		t.Fatalf("same provider: %v", err)
	}
	err := CheckClassProvider(store, "vault")
	if !errors.Is(err, ErrInvalidConfig) || err.Error() != `invalid store configuration: SecretProviderClass provider "azure" is not vault` {
		t.Fatalf("other provider: %v", err)
	}
}

// batch reads ref a, fails ref b and answers nothing for the others.
type batch struct{}

func (batch) GetSecrets(_ context.Context, refs []Ref) (map[Ref]Value, map[Ref]error) {
	vals, errs := map[Ref]Value{}, map[Ref]error{}
	for _, r := range refs {
		switch r.Key {
		case "a":
			vals[r] = Value{Data: []byte("va")}
		case "b":
			errs[r] = ErrBadResponse
		}
	}
	return vals, errs
}

func TestGetFromBatch(t *testing.T) {
	ctx := context.Background()
	if v, err := GetFromBatch(ctx, batch{}, Ref{Key: "a"}); err != nil || string(v.Data) != "va" {
		t.Fatalf("a = %q, %v", v.Data, err)
	}
	if _, err := GetFromBatch(ctx, batch{}, Ref{Key: "b"}); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("b: err = %v, want the batch's error", err)
	}
	if _, err := GetFromBatch(ctx, batch{}, Ref{Key: "c"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("c: err = %v, want ErrNotFound", err)
	}
}

// A missing ServiceAccount is tested against a real API server by the
// providers' class tests (gcpsm's pod-adc, aws's IRSA).
func TestClassServiceAccountWithoutKubernetesClient(t *testing.T) {
	opts := Options{Store: Store{Namespace: "ns", Class: &Class{ServiceAccount: "app"}}}
	_, err := ClassServiceAccount(context.Background(), opts)
	if !errors.Is(err, ErrInvalidConfig) || err.Error() != "invalid store configuration: reading service account ns/app: no Kubernetes client" {
		t.Fatalf("err = %v", err)
	}
}

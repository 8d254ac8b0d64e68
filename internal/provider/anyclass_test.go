package provider_test

import (
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/csiplugin"
	"github.com/keyferry/keyferry/internal/provider/fake"
)

// RegisterAnyClass serves every spec.provider no provider is registered
// for, never a blank one, and never in place of a registered one.
func TestRegisterAnyClass(t *testing.T) {
	withAny := provider.NewRegistry()
	withAny.Register("fake", fake.New())
	withAny.Register(csiplugin.Name, csiplugin.New(csiplugin.Options{Dir: "/run/plugins"}))
	withAny.RegisterAnyClass(csiplugin.Name)
	without := provider.NewRegistry()
	without.Register(csiplugin.Name, csiplugin.New(csiplugin.Options{Dir: "/run/plugins"}))
	without.RegisterClass("acme-native", csiplugin.Name)

	tests := []struct {
		name  string
		reg   *provider.Registry
		class string
		want  string
	}{
		{"an unregistered provider goes to the fallback", withAny, "acme", csiplugin.Name},
		{"a blank provider is served by none", withAny, " ", ""},
		{"an empty provider is served by none", withAny, "", ""},
		{"without a fallback an unregistered provider is served by none", without, "acme", ""},
		{"a registered provider keeps its provider", without, "acme-native", csiplugin.Name},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, p, ok := tt.reg.Class(tt.class)
			if name != tt.want || ok != (tt.want != "") || (ok && p == nil) {
				t.Fatalf("Class(%q) = %q, %v, %v; want %q", tt.class, name, p, ok, tt.want)
			}
			st := provider.Store{Kind: provider.ClassKind, Name: "spc", Class: &provider.Class{Provider: tt.class}}
			_, _, err := tt.reg.ProviderFor(st)
			if (err == nil) != ok {
				t.Fatalf("ProviderFor: %v", err)
			}
		})
	}
}

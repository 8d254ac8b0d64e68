package engine

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/fake"
	"github.com/keyferry/keyferry/internal/provider/webhook"
)

// TestCheckProviderFieldErrors: values ESO's schema accepts and keyferry's
// types decode leniently are checked here, so a store with one becomes
// InvalidStoreConfig naming the field instead of breaking the informer.
func TestCheckProviderFieldErrors(t *testing.T) {
	reg := provider.NewRegistry()
	reg.Register("fake", fake.New())
	reg.Register("webhook", webhook.New())
	tests := []struct {
		name string
		spec string // JSON of the store's spec
		want string // substring of the InvalidStoreConfig message; "" means valid
	}{
		{name: "refreshInterval as a Go duration", spec: `{"refreshInterval":"5m","provider":{"fake":{"data":[]}}}`},
		{name: "refreshInterval in seconds", spec: `{"refreshInterval":300,"provider":{"fake":{"data":[]}}}`},
		{name: "refreshInterval that is not a duration", spec: `{"refreshInterval":"5 minutes","provider":{"fake":{"data":[]}}}`, want: `spec.refreshInterval: "5 minutes" is neither`},
		{name: "negative refreshInterval", spec: `{"refreshInterval":-1,"provider":{"fake":{"data":[]}}}`, want: "spec.refreshInterval: -1 seconds is negative"},
		{name: "webhook timeout that is not a duration", spec: `{"provider":{"webhook":{"url":"https://example.com/x","timeout":"soon"}}}`, want: `spec.provider.webhook.timeout: "soon" is not a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spec esv1.SecretStoreSpec
			if err := json.Unmarshal([]byte(tt.spec), &spec); err != nil {
				t.Fatalf("decoding: %v (decoding must never fail)", err)
			}
			err := CheckProvider(reg, provider.Store{Kind: esv1.SecretStoreKind, Namespace: "ns", Name: "s", Spec: &spec})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckProvider = %v; want nil", err)
				}
				return
			}
			var ee *Error
			if !errors.As(err, &ee) || ee.Reason != ReasonInvalidStoreConfig || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckProvider = %v; want %s mentioning %q", err, ReasonInvalidStoreConfig, tt.want)
			}
		})
	}
}

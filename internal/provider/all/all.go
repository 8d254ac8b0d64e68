// Package all assembles the registry of every provider keyferry ships.
package all

import (
	"k8s.io/client-go/rest"

	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/fake"
)

// Options carry what some providers need from the operator.
type Options struct {
	// Config is the operator's own cluster configuration (the kubernetes
	// provider's same-cluster default).
	Config *rest.Config
}

// Registry returns a registry with every provider.
func Registry(opts Options) *provider.Registry {
	r := provider.NewRegistry()
	r.Register("fake", fake.New())
	return r
}

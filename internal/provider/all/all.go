// Package all assembles the registry of every provider keyferry ships.
package all

import (
	"k8s.io/client-go/rest"

	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/aws"
	"github.com/keyferry/keyferry/internal/provider/azurekv"
	"github.com/keyferry/keyferry/internal/provider/csiplugin"
	"github.com/keyferry/keyferry/internal/provider/fake"
	"github.com/keyferry/keyferry/internal/provider/file"
	"github.com/keyferry/keyferry/internal/provider/gcpsm"
	"github.com/keyferry/keyferry/internal/provider/kubernetes"
	"github.com/keyferry/keyferry/internal/provider/vault"
	"github.com/keyferry/keyferry/internal/provider/webhook"
)

// Options carry what some providers need from the operator.
type Options struct {
	// Config is the operator's own cluster configuration (the kubernetes
	// provider's same-cluster default).
	Config *rest.Config
	// WebhookAllowLinkLocal lets webhook stores reach link-local and cloud
	// metadata addresses (--webhook-allow-link-local).
	WebhookAllowLinkLocal bool
	// CSIPlugins configures the CSI provider plugins that serve every other
	// SecretProviderClass provider (--csi-provider-dir and related flags);
	// an empty Dir leaves them off.
	CSIPlugins csiplugin.Options
	// VaultClassAddress is the Vault address of SecretProviderClasses with
	// provider vault that set no vaultAddress (--secretsync-vault-address,
	// the Vault CSI provider's -vault-addr); empty makes vaultAddress
	// required.
	VaultClassAddress string
}

// Registry returns a registry with every provider, and the
// SecretProviderClass providers they serve.
func Registry(opts Options) *provider.Registry {
	r := provider.NewRegistry()
	r.Register("fake", fake.New())
	r.Register(azurekv.Name, azurekv.New())
	r.Register(gcpsm.Name, gcpsm.New())
	r.Register(aws.Name, aws.New())
	r.Register("kubernetes", kubernetes.New(opts.Config))
	r.Register("file", file.New())
	r.Register("vault", vault.NewWithOptions(vault.Options{ClassAddress: opts.VaultClassAddress}))
	r.Register("webhook", webhook.NewWithOptions(webhook.Options{AllowLinkLocal: opts.WebhookAllowLinkLocal}))
	// SecretProviderClasses (the SecretSync front-end), by spec.provider.
	r.RegisterClass(azurekv.ClassName, azurekv.Name)
	r.RegisterClass(gcpsm.ClassName, gcpsm.Name)
	r.RegisterClass(vault.ClassName, "vault")
	r.RegisterClass(aws.ClassName, aws.Name)
	if opts.CSIPlugins.Dir != "" {
		r.Register(csiplugin.Name, csiplugin.New(opts.CSIPlugins))
		r.RegisterAnyClass(csiplugin.Name)
	}
	return r
}

// Package csiplugin serves the SecretProviderClasses whose spec.provider
// has no native keyferry provider (anything but azure, aws, gcp and vault:
// Akeyless, Conjur, OpenBao, community plugins...) by calling that
// provider's Secrets Store CSI driver plugin over its gRPC socket, the way
// the Secrets Store Sync Controller does.
//
// The plugins run as sidecars of keyferry's pod and listen on
// <Dir>/<provider>.sock, a directory the pod shares between its containers
// (--csi-provider-dir). For each fetch of a class keyferry makes one
// v1alpha1.CSIDriverProvider Mount call (sigs.k8s.io/secrets-store-csi-driver
// provider/v1alpha1): the attributes are the class's parameters plus the
// pod and ServiceAccount attributes the CSI driver adds, with a token of the
// SecretSync's ServiceAccount for each configured audience in
// csi.storage.k8s.io/serviceAccount.tokens. The files of the response are
// mapped back by the SecretSync's sourcePath (the file path as the plugin
// returned it). Every ref of one fetch (all the sourcePaths of a SecretSync,
// and of every SecretSync of the same class and ServiceAccount syncing at
// that moment) is served by one Mount: the client batches
// (provider.BatchGetter), and calls that arrive while a Mount is in flight
// share its response.
//
// A Mount has a deadline (Options.Timeout); a plugin that does not answer,
// a socket nobody listens on and a missing socket are ErrUnreachable
// (transient: the fetch layer backs the class off and probes it); errors
// the plugin reports are classified by their gRPC code. Errors name the
// plugin, its socket and file paths, never a file's content or a token.
package csiplugin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/keyferry/keyferry/internal/provider"
)

// Name is the name the provider is registered under.
const Name = "csiplugin"

// Defaults of Options.
const (
	// DefaultTimeout bounds one Mount call.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxRecvMsgSize is the largest Mount response accepted, the
	// Sync Controller's default (--max-call-recv-msg-size).
	DefaultMaxRecvMsgSize = 4 << 20
)

// Options configure the provider.
type Options struct {
	// Dir is the directory of the plugins' sockets, <Dir>/<provider>.sock
	// (--csi-provider-dir). It must be set.
	Dir string
	// Audiences are the audiences of the ServiceAccount tokens sent to the
	// plugins, one token each (--csi-token-audiences, the Sync Controller's
	// --token-request-audience). None sends no token.
	Audiences []string
	// Timeout bounds one Mount call (default DefaultTimeout).
	Timeout time.Duration
	// MaxRecvMsgSize bounds a Mount response in bytes (default
	// DefaultMaxRecvMsgSize).
	MaxRecvMsgSize int
	// PodName and PodUID are keyferry's own pod, sent as
	// csi.storage.k8s.io/pod.name and pod.uid as the Sync Controller sends
	// its own.
	PodName, PodUID string
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Provider calls CSI provider plugins. It serves SecretProviderClasses
// only.
type Provider struct {
	opts Options
}

var (
	_ provider.ClassProvider     = (*Provider)(nil)
	_ provider.ClassFileResolver = (*Provider)(nil)
)

// New returns the provider.
func New(opts Options) *Provider {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxRecvMsgSize <= 0 {
		opts.MaxRecvMsgSize = DefaultMaxRecvMsgSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Audiences = slices.DeleteFunc(slices.Clone(opts.Audiences), func(a string) bool { return strings.TrimSpace(a) == "" })
	return &Provider{opts: opts}
}

// pluginName is what the CSI driver accepts as a plugin name: it becomes
// the socket's file name.
var pluginName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,30}$`)

// classCheck is one rule a class's provider and parameters pass before a
// Mount is made. It does no I/O; its error names the field.
type classCheck func(cls *provider.Class) error

// classChecks are ValidateSpec's rules, in order.
var classChecks = []classCheck{
	providerIsPluginName,
	parametersAreNotReserved,
}

// providerIsPluginName: spec.provider names a socket file in the plugin
// directory, as the CSI driver requires.
func providerIsPluginName(cls *provider.Class) error {
	if !pluginName.MatchString(cls.Provider) {
		return fmt.Errorf("spec.provider %q is not a CSI provider plugin name (1 to 30 letters, digits, '-' or '_')", cls.Provider)
	}
	return nil
}

// parametersAreNotReserved: the attributes the CSI driver sets itself
// (pod, ServiceAccount, tokens) cannot come from the class, so that a
// class never speaks for another pod or ServiceAccount.
func parametersAreNotReserved(cls *provider.Class) error {
	for _, k := range slices.Sorted(maps.Keys(cls.Parameters)) {
		if strings.HasPrefix(k, reservedAttributePrefix) {
			return fmt.Errorf("parameters.%s is reserved: keyferry sets the %s attributes itself", k, reservedAttributePrefix)
		}
	}
	return nil
}

// ValidateSpec checks a class store without I/O. A store that is not a
// SecretProviderClass is refused.
func (p *Provider) ValidateSpec(store provider.Store) error {
	if store.Class == nil {
		return fmt.Errorf("%w: the %s provider serves SecretProviderClasses only", provider.ErrInvalidConfig, Name)
	}
	for _, check := range classChecks {
		if err := check(store.Class); err != nil {
			return err
		}
	}
	return nil
}

// ClassObjects returns no object: which files a plugin provides is known
// only from its Mount response. Compile asks ClassFile for each file a
// SecretSync maps.
func (p *Provider) ClassObjects(map[string]string) ([]provider.ClassObject, error) {
	return []provider.ClassObject{}, nil
}

// ClassFile returns the object of a file the plugin is expected to return:
// file is the relative path as the plugin returns it (the driver refuses
// absolute paths and '..').
func (p *Provider) ClassFile(_ map[string]string, file string) (provider.ClassObject, error) {
	if !provider.ValidClassFilePath(file) {
		return provider.ClassObject{}, fmt.Errorf("%q is not a file path a CSI provider plugin can return (a relative path without '.', '..' or empty segments)", file)
	}
	return provider.ClassFileObjects(slices.Values([]string{file}))[0], nil
}

// socket is the path of the plugin's socket.
func (p *Provider) socket(plugin string) string {
	return filepath.Join(p.opts.Dir, plugin+".sock")
}

// NewClient builds the client of a class store. It does not connect: the
// first Mount does.
func (p *Provider) NewClient(_ context.Context, opts provider.Options) (provider.Client, error) {
	if err := p.ValidateSpec(opts.Store); err != nil {
		if errors.Is(err, provider.ErrInvalidConfig) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: SecretProviderClass %s: %v", provider.ErrInvalidConfig, opts.Store.Name, err)
	}
	if p.opts.Dir == "" {
		return nil, fmt.Errorf("%w: no CSI provider plugin directory (--csi-provider-dir)", provider.ErrInvalidConfig)
	}
	return newClient(p.opts, opts, p.socket(opts.Store.Class.Provider))
}

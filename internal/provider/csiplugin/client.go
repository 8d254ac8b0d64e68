// This file holds the client of one class store: a gRPC connection to the
// plugin's socket, one Mount per fetch shared by the calls that arrive
// while it is in flight, and the classification of the plugin's errors.

package csiplugin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/keyferry/keyferry/internal/provider"
)

// client reads the files of one class through its plugin. It is safe for
// concurrent use.
type client struct {
	opts   Options
	store  provider.Store
	tokens provider.TokenRequester
	log    logr.Logger
	plugin string
	socket string
	conn   *grpc.ClientConn
	api    v1alpha1.CSIDriverProviderClient

	mu sync.Mutex
	// versions are the object versions of the last successful Mount, sent
	// back as current_object_version.
	versions map[string]string
	// inflight is the Mount in flight, which later calls share.
	inflight *round
}

// round is one Mount call and its outcome.
type round struct {
	done chan struct{}
	m    mounted
	err  error
}

var (
	_ provider.Client      = (*client)(nil)
	_ provider.BatchGetter = (*client)(nil)
)

func newClient(popts Options, opts provider.Options, socket string) (*client, error) {
	conn, err := grpc.NewClient("unix://"+socket,
		// The socket is protected by the file system, as between the CSI
		// driver and its plugins.
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority("localhost"),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(popts.MaxRecvMsgSize)),
		// A plugin that restarts is reconnected to within seconds; the
		// fetch layer, not gRPC, backs a failing class off.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: popts.Timeout,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: CSI provider plugin socket %s: %v", provider.ErrInvalidConfig, socket, err)
	}
	log := opts.Log
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	return &client{
		opts: popts, store: opts.Store, tokens: opts.Tokens,
		log:    log.WithValues("secretProviderClass", opts.Store.Name, "plugin", opts.Store.Class.Provider),
		plugin: opts.Store.Class.Provider, socket: socket,
		conn: conn, api: v1alpha1.NewCSIDriverProviderClient(conn),
	}, nil
}

func (c *client) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	return provider.GetFromBatch(ctx, c, ref)
}

// GetSecrets serves every ref from one Mount: a ref's Key is a file path,
// its Version empty or a part (provider.ClassPartCert, ClassPartKey).
func (c *client) GetSecrets(ctx context.Context, refs []provider.Ref) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	vals := make(map[provider.Ref]provider.Value, len(refs))
	errs := map[provider.Ref]error{}
	m, err := c.mount(ctx)
	for _, r := range refs {
		if err != nil {
			errs[r] = err
			continue
		}
		v, ferr := m.file(c.plugin, c.store.Name, r)
		if ferr != nil {
			errs[r] = ferr
			continue
		}
		vals[r] = v
	}
	return vals, errs
}

// file returns the value of a ref from a Mount's files.
func (m mounted) file(plugin, class string, r provider.Ref) (provider.Value, error) {
	if r.Metadata {
		return provider.Value{}, fmt.Errorf("%w: CSI provider plugins return files, not metadata", provider.ErrMetadataNotSupported)
	}
	if r.Version != "" && r.Version != provider.ClassPartCert && r.Version != provider.ClassPartKey {
		return provider.Value{}, fmt.Errorf("%w: %q is not a file of SecretProviderClass %s", provider.ErrInvalidConfig, r.Key, class)
	}
	b, ok := m.files[r.Key]
	if !ok {
		return provider.Value{}, fmt.Errorf("%w: CSI provider plugin %q returned no file %q for SecretProviderClass %s (it returned %s)", provider.ErrNotFound, plugin, r.Key, class, listPaths(m.files))
	}
	b, err := provider.ClassPart(b, r.Version)
	if err != nil {
		return provider.Value{}, fmt.Errorf("file %q: %w", r.Key, err)
	}
	return provider.Value{Data: b, Version: m.versions[r.Key]}, nil
}

// listPaths names at most 10 paths, sorted.
func listPaths(files map[string][]byte) string {
	if len(files) == 0 {
		return "none"
	}
	names := slices.Sorted(maps.Keys(files))
	more := ""
	if len(names) > 10 {
		more = fmt.Sprintf(" and %d more", len(names)-10)
		names = names[:10]
	}
	for i, n := range names {
		names[i] = strconv.Quote(n)
	}
	return strings.Join(names, ", ") + more
}

// mount returns the files of a Mount: the one in flight, or a new one.
func (c *client) mount(ctx context.Context) (mounted, error) {
	c.mu.Lock()
	if r := c.inflight; r != nil {
		c.mu.Unlock()
		select {
		case <-r.done:
			return r.m, r.err
		case <-ctx.Done():
			return mounted{}, fmt.Errorf("waiting for CSI provider plugin %q: %w", c.plugin, ctx.Err())
		}
	}
	r := &round{done: make(chan struct{})}
	c.inflight = r
	versions := maps.Clone(c.versions)
	c.mu.Unlock()

	r.m, r.err = c.call(ctx, versions)

	c.mu.Lock()
	c.inflight = nil
	if r.err == nil {
		c.versions = r.m.versions
	}
	c.mu.Unlock()
	close(r.done)
	return r.m, r.err
}

// call makes one Mount call.
func (c *client) call(ctx context.Context, versions map[string]string) (mounted, error) {
	if err := c.socketExists(); err != nil {
		return mounted{}, err
	}
	tokens, err := c.requestTokens(ctx)
	if err != nil {
		return mounted{}, err
	}
	req, err := buildRequest(mountInput{
		Params:  c.store.Class.Parameters,
		PodName: c.opts.PodName, PodUID: c.opts.PodUID,
		Namespace: c.store.Namespace, ServiceAccount: c.store.Class.ServiceAccount,
		Tokens: tokens, Versions: versions,
	})
	if err != nil {
		return mounted{}, err
	}
	start := c.opts.Now()
	callCtx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	resp, err := c.api.Mount(callCtx, req)
	if err != nil {
		err = c.rpcError(ctx, err)
		c.log.V(1).Info("Mount failed", "error", err.Error(), "duration", c.opts.Now().Sub(start).String())
		return mounted{}, err
	}
	m, err := readResponse(c.plugin, resp)
	if err != nil {
		return mounted{}, err
	}
	c.log.V(1).Info("Mount", "files", len(m.files), "objects", len(m.versions), "duration", c.opts.Now().Sub(start).String())
	return m, nil
}

// socketExists says clearly when no plugin is listening at all.
func (c *client) socketExists() error {
	if _, err := os.Stat(c.socket); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: no CSI provider plugin socket %s: is the %q plugin running beside keyferry and listening in the plugin directory (--csi-provider-dir)?", provider.ErrUnreachable, c.socket, c.plugin)
		}
		return fmt.Errorf("%w: CSI provider plugin socket %s: %v", provider.ErrUnreachable, c.socket, err)
	}
	return nil
}

// requestTokens requests a token of the SecretSync's ServiceAccount for
// each audience.
func (c *client) requestTokens(ctx context.Context) (map[string]Token, error) {
	if len(c.opts.Audiences) == 0 {
		return nil, nil
	}
	ns, sa := c.store.Namespace, c.store.Class.ServiceAccount
	if c.tokens == nil {
		return nil, fmt.Errorf("%w: no token requester for service account %s/%s", provider.ErrInvalidConfig, ns, sa)
	}
	out := make(map[string]Token, len(c.opts.Audiences))
	for _, aud := range c.opts.Audiences {
		tok, exp, err := c.tokens.ServiceAccountToken(ctx, ns, sa, []string{aud}, provider.TokenExpiry)
		if err != nil {
			return nil, fmt.Errorf("requesting a token of service account %s/%s for audience %q: %w", ns, sa, aud, err)
		}
		out[aud] = Token{Token: tok, Expires: exp}
	}
	return out, nil
}

// rpcError classifies a failed Mount call by its gRPC code: a plugin that
// does not answer (in time) is unreachable, which the fetch layer retries
// with backoff; the plugin's own answers keep their meaning. The plugin's
// message is repeated, bounded; plugins put no secret values in them.
func (c *client) rpcError(ctx context.Context, err error) error {
	st := status.Convert(err)
	msg := clean(st.Message())
	what := fmt.Sprintf("CSI provider plugin %q (%s)", c.plugin, c.socket)
	switch st.Code() {
	case codes.DeadlineExceeded:
		if ctx.Err() == nil {
			return fmt.Errorf("%w: %s did not answer the Mount within %s", provider.ErrUnreachable, what, c.opts.Timeout)
		}
		return fmt.Errorf("%w: %s: %w", provider.ErrUnreachable, what, ctx.Err())
	case codes.Canceled:
		return fmt.Errorf("%s: the Mount was cancelled: %w", what, context.Canceled)
	case codes.Unavailable:
		return fmt.Errorf("%w: %s is not answering: %s", provider.ErrUnreachable, what, msg)
	case codes.PermissionDenied:
		return fmt.Errorf("%w: %s: %s", provider.ErrForbidden, what, msg)
	case codes.Unauthenticated:
		return fmt.Errorf("%w: %s: %s", provider.ErrUnauthenticated, what, msg)
	case codes.NotFound:
		return fmt.Errorf("%w: %s: %s", provider.ErrNotFound, what, msg)
	case codes.InvalidArgument, codes.FailedPrecondition:
		return fmt.Errorf("%w: %s refused the SecretProviderClass's parameters: %s", provider.ErrInvalidConfig, what, msg)
	case codes.Unimplemented:
		return fmt.Errorf("%w: %s does not implement v1alpha1.CSIDriverProvider/Mount: %s", provider.ErrNotSupported, what, msg)
	case codes.ResourceExhausted:
		if strings.Contains(msg, "received message larger than max") {
			return fmt.Errorf("%w: %s returned more than %d bytes", provider.ErrBadResponse, what, c.opts.MaxRecvMsgSize)
		}
		return &provider.ThrottledError{Err: fmt.Errorf("%s: %s", what, msg)}
	}
	return fmt.Errorf("%s failed the Mount (%s): %s", what, st.Code(), msg)
}

// Validate asks the plugin for its version.
func (c *client) Validate(ctx context.Context) error {
	if err := c.socketExists(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	if _, err := c.api.Version(ctx, &v1alpha1.VersionRequest{Version: "v1alpha1"}); err != nil {
		return c.rpcError(ctx, err)
	}
	return nil
}

// Close closes the connection.
func (c *client) Close(context.Context) error { return c.conn.Close() }

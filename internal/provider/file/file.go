// Package file implements the file provider, a keyferry extension: values
// are the files under a directory on the operator's pod, typically a volume
// that the Secrets Store CSI driver (or a projected Secret) mounts there.
// Each regular file is a remote key named by its path relative to the root
// ("tls.crt", "team-a/db/password"); its content is the value.
//
// This is the "distributor" pattern: mount a vault into keyferry's pod once,
// and fan the files out, with ClusterExternalSecrets, to Secrets in as many
// namespaces as need them.
//
// Only ClusterSecretStores may use it: a namespaced store would let anyone
// allowed to create one read any file on keyferry's pod.
//
// Keys never leave the root: ".." segments, absolute keys and symbolic links
// that point outside are refused with ErrEscapesRoot. The links the
// Kubernetes atomic writer makes inside the root (name -> ..data/name,
// ..data -> ..<timestamp>) are followed. Listing skips names starting with a
// dot, such as ..data and the timestamped directories.
//
// The client implements provider.Watcher: an fsnotify watch on the root and
// its directories notices writes and the atomic writer's swap of ..data, and
// a periodic re-read (pollInterval) catches what the watch cannot see.
package file

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

const (
	// DefaultPollInterval is the re-read interval when the store sets none.
	DefaultPollInterval = time.Minute
	// MinPollInterval is the shortest pollInterval accepted.
	MinPollInterval = 100 * time.Millisecond
	// MaxFileBytes is the largest file read; larger files are refused (a
	// Secret holds at most 1 MiB).
	MaxFileBytes = 4 << 20
	// maxDepth bounds the directory levels listed below the root.
	maxDepth = 32
)

// Provider builds file clients.
type Provider struct {
	opts Options
}

// New returns the file provider.
func New() provider.Provider { return &Provider{} }

var _ provider.Provider = &Provider{}

func specOf(store provider.Store) (*esv1.FileProvider, error) {
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.File == nil {
		return nil, fmt.Errorf("%w: spec.provider.file is not set", provider.ErrInvalidConfig)
	}
	return store.Spec.Provider.File, nil
}

// ValidateSpec checks the file configuration without any I/O.
func (p *Provider) ValidateSpec(store provider.Store) error {
	spec, err := specOf(store)
	if err != nil {
		return err
	}
	if !store.IsCluster() {
		// A namespaced store would let anyone who may create one read any
		// file on keyferry's pod, its ServiceAccount token included.
		return fmt.Errorf("%w: the file provider is only available to ClusterSecretStores (it reads files on keyferry's own pod)", provider.ErrInvalidConfig)
	}
	_, err = pollInterval(spec)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(spec.Path) {
		return fmt.Errorf("%w: path must be an absolute directory, got %q", provider.ErrInvalidConfig, spec.Path)
	}
	return nil
}

func pollInterval(spec *esv1.FileProvider) (time.Duration, error) {
	if spec.PollInterval == "" {
		return DefaultPollInterval, nil
	}
	d, err := time.ParseDuration(spec.PollInterval)
	if err != nil {
		return 0, fmt.Errorf("%w: pollInterval %q is not a duration such as 30s or 1m", provider.ErrInvalidConfig, spec.PollInterval)
	}
	if d < MinPollInterval {
		return 0, fmt.Errorf("%w: pollInterval must be at least %s, got %s", provider.ErrInvalidConfig, MinPollInterval, d)
	}
	return d, nil
}

// NewClient opens the root and records the content hashes that the watch
// compares against.
func (p *Provider) NewClient(_ context.Context, opts provider.Options) (provider.Client, error) {
	if err := p.ValidateSpec(opts.Store); err != nil {
		return nil, err
	}
	spec, _ := specOf(opts.Store)
	poll, _ := pollInterval(spec)
	dir := p.root(spec.Path)
	fi, err := os.Stat(dir)
	switch {
	case isNotFound(err):
		return nil, fmt.Errorf("%w: the store root %s does not exist (is the volume mounted?)", provider.ErrUnreachable, dir)
	case err != nil:
		return nil, fmt.Errorf("%w: the store root %s: %w", provider.ErrUnreachable, dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("%w: the store root %s is not a directory", provider.ErrInvalidConfig, dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: opening the store root %s: %w", provider.ErrUnreachable, dir, err)
	}
	c := &Client{dir: dir, root: root, poll: poll, log: opts.Log}
	hashes, err := c.scan()
	if err != nil {
		_ = root.Close()
		return nil, err
	}
	c.hashes = hashes
	return c, nil
}

// Client reads the files under one root. It is safe for concurrent use.
type Client struct {
	dir  string
	root *os.Root
	poll time.Duration
	log  logr.Logger

	mu     sync.Mutex
	hashes map[string][sha256.Size]byte // key -> content hash, as last seen
}

var (
	_ provider.Client  = &Client{}
	_ provider.Lister  = &Client{}
	_ provider.Watcher = &Client{}
)

// GetSecret returns the content of the file key names.
func (c *Client) GetSecret(_ context.Context, ref provider.Ref) (provider.Value, error) {
	if ref.Metadata {
		return provider.Value{}, provider.RefuseMetadata(ref, "files have no tags or labels")
	}
	if ref.Version != "" {
		return provider.Value{}, fmt.Errorf("%w: files have no versions (remoteRef.version %q for %q)", provider.ErrNotSupported, ref.Version, ref.Key)
	}
	data, err := c.read(ref.Key)
	if err != nil {
		return provider.Value{}, err
	}
	return provider.Value{Data: data}, nil
}

// read returns the content of the regular file key names.
func (c *Client) read(key string) ([]byte, error) {
	rel, err := resolve(c.dir, key)
	switch {
	case errors.Is(err, ErrEscapesRoot):
		return nil, fmt.Errorf("reading %q: %w", key, err)
	case isNotFound(err):
		return nil, fmt.Errorf("%w: no file %q under %s", provider.ErrNotFound, key, c.dir)
	case err != nil:
		return nil, fmt.Errorf("reading %q under %s: %w", key, c.dir, err)
	case rel == "":
		return nil, fmt.Errorf("%w: %q is the store root, not a file", provider.ErrNotFound, key)
	}
	// O_NONBLOCK: opening a FIFO must not hang; regular files ignore it.
	f, err := c.root.OpenFile(filepath.FromSlash(rel), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("%w: no file %q under %s", provider.ErrNotFound, key, c.dir)
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("%w: reading %q under %s: %w", provider.ErrForbidden, key, c.dir, err)
		}
		// os.Root refuses links that lead out of the root even when they
		// changed after resolve looked at them; its error is not exported.
		if strings.Contains(err.Error(), "escapes") {
			return nil, fmt.Errorf("reading %q: %w", key, ErrEscapesRoot)
		}
		return nil, fmt.Errorf("reading %q under %s: %w", key, c.dir, err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading %q under %s: %w", key, c.dir, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %q under %s is not a regular file", provider.ErrNotFound, key, c.dir)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %q under %s: %w", key, c.dir, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %q under %s is larger than %d bytes", provider.ErrBadResponse, key, c.dir, MaxFileBytes)
	}
	return data, nil
}

// ListSecrets lists the files whose key starts with list.Path, with their
// content: the listing walks the local directory and reads the files the
// find's name selects (list.Match) in the same pass. A file that cannot be
// read is listed without a value, so a find that selects it fails with
// GetSecret's error; one removed since the walk is left out. Tags are not
// supported.
func (c *Client) ListSecrets(_ context.Context, list provider.List) provider.ListPager {
	if len(list.Tags) > 0 {
		return provider.FailedPages(fmt.Errorf("%w: files have no tags (dataFrom.find.tags)", provider.ErrNotSupported))
	}
	return provider.SinglePage(func(context.Context) ([]provider.Listed, error) {
		keys, err := c.list()
		if err != nil {
			return nil, err
		}
		prefix := strings.TrimPrefix(list.Path, "/")
		var out []provider.Listed
		for _, key := range keys {
			if !strings.HasPrefix(key, prefix) || (list.Match != nil && !list.Match(key)) {
				continue
			}
			l := provider.Listed{Name: key, Ref: provider.Ref{Key: key}}
			data, err := c.read(key)
			if errors.Is(err, provider.ErrNotFound) {
				continue // removed since it was listed
			}
			if err == nil {
				l.Value = &provider.Value{Data: data}
			}
			out = append(out, l)
		}
		return out, nil
	})
}

// list returns the keys of every regular file under the root, following
// links that stay inside it and skipping names that start with a dot.
func (c *Client) list() ([]string, error) {
	var keys []string
	ancestors := map[string]bool{}
	var walk func(dirKey, dirRel string, depth int) error
	walk = func(dirKey, dirRel string, depth int) error {
		// A directory that is its own ancestor (through a link) is a loop;
		// the same directory under two names is listed under both.
		if depth > maxDepth || ancestors[dirRel] {
			return nil
		}
		ancestors[dirRel] = true
		defer delete(ancestors, dirRel)
		entries, err := os.ReadDir(filepath.Join(c.dir, filepath.FromSlash(dirRel)))
		if err != nil {
			if depth > 0 && isNotFound(err) {
				return nil // removed while listing
			}
			return fmt.Errorf("%w: listing %s: %w", provider.ErrUnreachable, filepath.Join(c.dir, filepath.FromSlash(dirRel)), err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			key := path.Join(dirKey, e.Name())
			rel, err := resolve(c.dir, key)
			if err != nil {
				if errors.Is(err, ErrEscapesRoot) {
					c.log.V(1).Info("skipping a link that leads out of the store root", "key", key)
				}
				continue
			}
			fi, err := os.Stat(filepath.Join(c.dir, filepath.FromSlash(rel)))
			if err != nil {
				continue
			}
			switch {
			case fi.IsDir():
				if err := walk(key, rel, depth+1); err != nil {
					return err
				}
			case fi.Mode().IsRegular():
				keys = append(keys, key)
			}
		}
		return nil
	}
	if err := walk("", "", 0); err != nil {
		return nil, err
	}
	sort.Strings(keys)
	return keys, nil
}

// scan hashes the content of every listed file.
func (c *Client) scan() (map[string][sha256.Size]byte, error) {
	keys, err := c.list()
	if err != nil {
		return nil, err
	}
	out := make(map[string][sha256.Size]byte, len(keys))
	for _, key := range keys {
		data, err := c.read(key)
		if err != nil {
			// Gone or unreadable since it was listed; a read error shows
			// when the key is fetched.
			continue
		}
		out[key] = sha256.Sum256(data)
	}
	return out, nil
}

// Validate checks that the root can still be listed.
func (c *Client) Validate(context.Context) error {
	if _, err := os.ReadDir(c.dir); err != nil {
		return fmt.Errorf("%w: listing the store root %s: %w", provider.ErrUnreachable, c.dir, err)
	}
	return nil
}

// Close releases the root.
func (c *Client) Close(context.Context) error {
	if err := c.root.Close(); err != nil {
		return fmt.Errorf("closing the store root %s: %w", c.dir, err)
	}
	return nil
}

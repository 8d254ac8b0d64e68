// Package csiplugin is a Secrets Store CSI driver provider plugin for
// tests: it serves the real v1alpha1.CSIDriverProvider gRPC API
// (sigs.k8s.io/secrets-store-csi-driver provider/v1alpha1) on a unix
// socket <dir>/<name>.sock, as a plugin sidecar does, and returns the files
// and object versions a test sets. A test can make it fail with an error
// code or a gRPC status, answer slowly, stop (a dead plugin, its socket
// left behind or removed) and start again, and behave like a plugin that
// writes its files into the target path itself and returns none (the
// behaviour before the driver wrote files, still the default of some
// plugins: the v1alpha1 MountRequest has no field that asks for the files;
// each plugin has its own flag). It records every request, with its
// attributes decoded, so tests can check what keyferry sent.
package csiplugin

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// Request is one Mount request the server received.
type Request struct {
	// Attributes are the decoded attributes.
	Attributes map[string]string
	Secrets    string
	TargetPath string
	Permission string
	// Versions are the current_object_version sent, by id.
	Versions map[string]string
}

// Server is a running plugin.
type Server struct {
	v1alpha1.UnimplementedCSIDriverProviderServer

	// Socket is the socket's path.
	Socket string

	t testing.TB

	mu          sync.Mutex
	files       map[string][]byte
	versions    map[string]string
	errCode     string
	rpcErr      error
	delay       time.Duration
	writesFiles bool
	writeRoot   string
	requests    []Request
	grpc        *grpc.Server
	served      chan struct{}
}

// Start starts a plugin named name listening on <dir>/<name>.sock until the
// test ends.
func Start(t testing.TB, dir, name string) *Server {
	t.Helper()
	s := &Server{
		Socket: filepath.Join(dir, name+".sock"), t: t,
		files: map[string][]byte{}, versions: map[string]string{},
	}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// SocketDir returns a directory for plugin sockets short enough for a unix
// socket path (at most 107 bytes), removed when the test ends.
func SocketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kfcsi")
	if err != nil {
		t.Fatalf("creating the socket directory: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// SetFile makes the plugin return a file at path with contents, and an
// object of id path with version.
func (s *Server) SetFile(path string, contents []byte, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = slices.Clone(contents)
	s.versions[path] = version
}

// DeleteFile stops returning the file at path.
func (s *Server) DeleteFile(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, path)
	delete(s.versions, path)
}

// SetErrorCode makes every Mount answer with this error code in its
// response (the plugins' way to report a failure); "" stops.
func (s *Server) SetErrorCode(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errCode = code
}

// SetStatus makes every Mount fail with a gRPC status; codes.OK stops.
func (s *Server) SetStatus(code codes.Code, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rpcErr = nil
	if code != codes.OK {
		s.rpcErr = status.Error(code, msg)
	}
}

// SetDelay makes every Mount answer after d (a slow plugin), or when the
// caller gives up, whichever comes first.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetWritesFiles makes the plugin write its files under root joined with
// the request's target path and return none, as a plugin does that was not
// told (by its own flag) to return them; root "" returns to normal.
func (s *Server) SetWritesFiles(root string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writesFiles, s.writeRoot = root != "", root
}

// Requests returns the Mount requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Mounts is how many Mount requests the server received.
func (s *Server) Mounts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Stop stops the plugin: the socket file stays, nobody listens on it
// (a crashed sidecar). It is safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	g, served := s.grpc, s.served
	s.grpc = nil
	s.mu.Unlock()
	if g == nil {
		return
	}
	g.Stop()
	<-served
	// grpc removes the socket file of a listener it closes; put back a
	// file nobody listens on, as a killed process leaves it.
	if l, err := net.Listen("unix", s.Socket); err == nil {
		if ul, ok := l.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
		_ = l.Close()
	}
}

// RemoveSocket removes the socket file (a plugin that is not deployed).
func (s *Server) RemoveSocket() {
	s.Stop()
	_ = os.Remove(s.Socket)
}

// Restart starts serving again on the same socket.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grpc != nil {
		return
	}
	_ = os.Remove(s.Socket)
	l, err := net.Listen("unix", s.Socket)
	if err != nil {
		s.t.Fatalf("listening on %s: %v", s.Socket, err)
	}
	g := grpc.NewServer()
	v1alpha1.RegisterCSIDriverProviderServer(g, s)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = g.Serve(l)
	}()
	s.grpc, s.served = g, served
}

// Version implements the plugin's Version RPC.
func (s *Server) Version(context.Context, *v1alpha1.VersionRequest) (*v1alpha1.VersionResponse, error) {
	return &v1alpha1.VersionResponse{Version: "v1alpha1", RuntimeName: "keyferry-test-plugin", RuntimeVersion: "0.0.1"}, nil
}

// Mount implements the plugin's Mount RPC.
func (s *Server) Mount(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	rec := Request{Secrets: req.GetSecrets(), TargetPath: req.GetTargetPath(), Permission: req.GetPermission(), Versions: map[string]string{}}
	if err := json.Unmarshal([]byte(req.GetAttributes()), &rec.Attributes); err != nil {
		return nil, status.Error(codes.InvalidArgument, "attributes are not a JSON object of strings")
	}
	for _, v := range req.GetCurrentObjectVersion() {
		rec.Versions[v.GetId()] = v.GetVersion()
	}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	delay, rpcErr, code := s.delay, s.rpcErr, s.errCode
	files, versions := maps.Clone(s.files), maps.Clone(s.versions)
	writes, root := s.writesFiles, s.writeRoot
	s.mu.Unlock()

	if delay > 0 {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if rpcErr != nil {
		return nil, rpcErr
	}
	resp := &v1alpha1.MountResponse{ObjectVersion: []*v1alpha1.ObjectVersion{}}
	if code != "" {
		resp.Error = &v1alpha1.Error{Code: code}
		return resp, nil
	}
	for _, id := range slices.Sorted(maps.Keys(versions)) {
		resp.ObjectVersion = append(resp.ObjectVersion, &v1alpha1.ObjectVersion{Id: id, Version: versions[id]})
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if writes {
			if err := writeFile(filepath.Join(root, req.GetTargetPath(), p), files[p]); err != nil {
				return nil, status.Error(codes.Internal, "writing a file to the target path failed")
			}
			continue
		}
		resp.Files = append(resp.Files, &v1alpha1.File{Path: p, Mode: 0o644, Contents: files[p]})
	}
	return resp, nil
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return errors.Join(err, os.Remove(path))
	}
	return nil
}

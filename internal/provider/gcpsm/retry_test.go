package gcpsm

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testserver/dropproxy"
)

// droppingSM is a real Secret Manager gRPC server whose first `drop` calls
// lose their connection while in flight (the proxy in front of it closes
// the connection), and which answers the others with `code` or a value.
type droppingSM struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	calls atomic.Int64
	drop  int64
	code  codes.Code
	kill  func() // closes the connection the current call came on
}

func (s *droppingSM) AccessSecretVersion(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	if n := s.calls.Add(1); n <= s.drop {
		s.kill()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if s.code != codes.OK {
		return nil, status.Error(s.code, "quota exceeded for this project")
	}
	return &secretmanagerpb.AccessSecretVersionResponse{Name: req.Name, Payload: &secretmanagerpb.SecretPayload{Data: []byte(canary)}}, nil
}

// startDroppingSM starts the server behind a TCP proxy and returns the
// proxy's address.
func startDroppingSM(t *testing.T, drop int64, code codes.Code) (string, *droppingSM) {
	t.Helper()
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	t.Cleanup(gs.Stop) // after the proxy's cleanup closed every connection
	proxy := dropproxy.StartProxy(t, backend.Addr().String(), dropproxy.ProxyOptions{})
	sm := &droppingSM{drop: drop, code: code, kill: proxy.CloseAll}
	secretmanagerpb.RegisterSecretManagerServiceServer(gs, sm)
	go func() { _ = gs.Serve(backend) }()
	return proxy.Addr(), sm
}

func droppingClient(t *testing.T, addr string) provider.Client {
	t.Helper()
	return newClient(t, &esv1.GCPSMProvider{ProjectID: "p1"},
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
}

// TestDroppedConnectionIsRetriedOnce: a call whose connection drops while
// in flight is repeated once, at once, on a new connection, and succeeds:
// exactly two calls reach the server.
func TestDroppedConnectionIsRetriedOnce(t *testing.T) {
	addr, sm := startDroppingSM(t, 1, codes.OK)
	c := droppingClient(t, addr)
	v, err := c.GetSecret(testContext(t), provider.Ref{Key: "db", Version: "1"})
	if err != nil {
		t.Fatalf("GetSecret: %v (want success after one retry)", err)
	}
	if string(v.Data) != canary {
		t.Fatal("wrong value after the retry")
	}
	if n := sm.calls.Load(); n != 2 {
		t.Fatalf("%d calls, want exactly 2", n)
	}
}

// TestThrottlingIsOneCall: ResourceExhausted is one call and a
// ThrottledError for the engine's backoff.
func TestThrottlingIsOneCall(t *testing.T) {
	addr, sm := startDroppingSM(t, 0, codes.ResourceExhausted)
	c := droppingClient(t, addr)
	_, err := c.GetSecret(testContext(t), provider.Ref{Key: "db", Version: "1"})
	var te *provider.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want a ThrottledError", err)
	}
	if n := sm.calls.Load(); n != 1 {
		t.Fatalf("%d calls, want exactly 1", n)
	}
}

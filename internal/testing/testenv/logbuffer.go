package testenv

import (
	"net"
	"testing"

	"github.com/keyferry/keyferry/internal/testing/testlog"
)

// LogBuffer is an io.Writer that goroutines may write to while a test reads
// it: what an operator under test logs (testlog.Buffer).
type LogBuffer = testlog.Buffer

// FreeAddr returns a loopback address ("127.0.0.1:port") whose port was free
// when it was asked for.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// Package dropproxy starts loopback servers that lose connections in the
// middle of an answer, as a load balancer closing a keep-alive connection
// under a request does, for tests of how providers retry such a request:
//
//   - Proxy, a TCP proxy in front of a real server that cuts answers short
//     or closes every connection on demand (the bytes pass through
//     untouched, so TLS and gRPC work through it);
//   - Server, an HTTP/1.1 server on a raw listener that cuts its first
//     answers off after their headers and half their body.
//
// Both count what reached them, so tests can assert exactly how many
// attempts a client made, and both close everything when the test ends.
package dropproxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// tracker remembers the open connections of a listener so that they can
// be closed at once, and waits for the goroutines serving them.
type tracker struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func (tr *tracker) add(c ...net.Conn) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.conns = append(tr.conns, c...)
}

func (tr *tracker) closeAll() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, c := range tr.conns {
		_ = c.Close()
	}
	tr.conns = nil
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening on a loopback port: %v", err)
	}
	return l
}

// ProxyOptions configure a Proxy.
type ProxyOptions struct {
	// CutFirst is how many connections, counted from the first, have the
	// target's answer cut right after its HTTP headers and five bytes of its
	// body, both ends then closed. It needs plain HTTP/1.x from the target.
	CutFirst int64
}

// Proxy is a TCP proxy on a loopback port in front of one target address.
type Proxy struct {
	addr  string
	opts  ProxyOptions
	conns atomic.Int64
	armed atomic.Bool
	tr    tracker
}

// StartProxy starts a proxy to target (host:port) that runs until the test
// ends.
func StartProxy(t testing.TB, target string, opts ProxyOptions) *Proxy {
	t.Helper()
	l := listen(t)
	p := &Proxy{addr: l.Addr().String(), opts: opts}
	t.Cleanup(func() {
		_ = l.Close()
		p.tr.closeAll()
		p.tr.wg.Wait()
	})
	p.tr.wg.Add(1)
	go func() {
		defer p.tr.wg.Done()
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			n := p.conns.Add(1)
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = down.Close()
				continue
			}
			p.tr.add(down, up)
			p.tr.wg.Add(2)
			go func() { defer p.tr.wg.Done(); _, _ = io.Copy(up, down); _ = up.Close() }()
			go func() {
				defer p.tr.wg.Done()
				defer func() { _ = down.Close(); _ = up.Close() }()
				if n <= p.opts.CutFirst {
					cutAfterHeaders(down, up)
					return
				}
				p.relay(down, up)
			}()
		}
	}()
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

// Conns is how many connections the proxy accepted.
func (p *Proxy) Conns() int64 { return p.conns.Load() }

// CutNext arms the proxy: the next bytes the target sends on any
// connection are cut in half and that connection is closed.
func (p *Proxy) CutNext() { p.armed.Store(true) }

// Armed reports whether CutNext has not cut anything yet.
func (p *Proxy) Armed() bool { return p.armed.Load() }

// CloseAll closes every connection open through the proxy now.
func (p *Proxy) CloseAll() { p.tr.closeAll() }

// relay copies the target's bytes to the client until either side closes
// or CutNext takes effect.
func (p *Proxy) relay(down, up net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 && p.armed.CompareAndSwap(true, false) {
			_, _ = down.Write(buf[:n/2])
			return
		}
		if n > 0 {
			if _, werr := down.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cutAfterHeaders relays the target's answer up to the end of its HTTP
// headers and five bytes of body.
func cutAfterHeaders(down, up net.Conn) {
	var buf []byte
	chunk := make([]byte, 4096)
	for {
		k, err := up.Read(chunk)
		buf = append(buf, chunk[:k]...)
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 && len(buf) >= i+4+5 {
			_, _ = down.Write(buf[:i+4+5])
			return
		}
		if err != nil {
			return
		}
	}
}

// ServerOptions configure a Server.
type ServerOptions struct {
	// Drop is how many requests, counted from the first, get a 200 with
	// the headers and half of Body before their connection closes.
	Drop int64
	// Status, Header and Body are the answer to every other request.
	// Header is raw header lines, each ending in "\r\n".
	Status int
	Header string
	Body   string
}

// Server is an HTTP/1.1 server on a raw loopback listener.
type Server struct {
	addr     string
	attempts atomic.Int64
}

// StartServer starts a server that runs until the test ends.
func StartServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	l := listen(t)
	s := &Server{addr: l.Addr().String()}
	var tr tracker
	t.Cleanup(func() {
		_ = l.Close()
		tr.closeAll() // idle keep-alive connections of the client
		tr.wg.Wait()
	})
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			tr.add(conn)
			tr.wg.Add(1)
			go func() {
				defer tr.wg.Done()
				defer func() { _ = conn.Close() }()
				s.serve(conn, opts)
			}()
		}
	}()
	return s
}

func (s *Server) serve(conn net.Conn, opts ServerOptions) {
	r := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if s.attempts.Add(1) <= opts.Drop {
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(opts.Body), opts.Body[:len(opts.Body)/2])
			return
		}
		fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\n%sContent-Length: %d\r\n\r\n%s", opts.Status, http.StatusText(opts.Status), opts.Header, len(opts.Body), opts.Body)
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is the server's base URL, "http://host:port".
func (s *Server) URL() string { return "http://" + s.addr }

// Attempts is how many requests reached the server.
func (s *Server) Attempts() int64 { return s.attempts.Load() }
